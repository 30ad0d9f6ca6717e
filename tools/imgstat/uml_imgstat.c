/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * uml_imgstat - describe UML disk images and COW files without booting:
 * what a COW is and whether it still fits its backing file, how much the
 * guest changed and where (--map), whether the file is consistent
 * (--check), what is on the disk (libblkid, libext2fs), and which files of
 * an ext2/3/4 filesystem the guest added, changed or deleted (--files).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <et/com_err.h>
#include <ext2fs/ext2fs.h>

#include "cli.h"
#include "quote.h"
#include "imgstat.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [OPTIONS] FILE...\n"
		"Describe UML COW files and disk images without booting them.\n\n"
		"With no mode option, the full description (--stat) of each FILE.\n"
		"  -s, --stat          header, geometry, backing check, usage, content\n"
		"  -m, --map           the runs of sectors stored in the COW\n"
		"      --align BYTES   --map: round runs out to multiples of BYTES\n"
		"      --gap BYTES     --map: merge runs less than BYTES apart\n"
		"  -c, --check         consistency check (exit 0 clean, 1 problems)\n"
		"      --strict        --check: warnings are problems too\n"
		"  -f, --files         files the guest added, changed, deleted (ext2/3/4)\n"
		"      --ignore-checksums  --files: read metadata whose checksum is wrong\n"
		"  -b, --backing FILE  use FILE as the backing file, not the header's\n"
		"  -j, --json          one JSON document per FILE, one per line\n"
		"  -h, --help          show this help\n"
		"      --version       show the version\n\n"
		"BYTES may end in K, M, G or T (powers of 1024).\n"
		"Exit status: 0 done (--check: no problem); 1 --check found problems;\n"
		"2 usage error, or a FILE could not be read or examined.\n",
		cli_prog);
}

static bool parse_bytes(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno)
		return false;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	enum { OPT_VERSION = 256, OPT_ALIGN, OPT_GAP, OPT_STRICT, OPT_IGNORE_CSUM };
	static const struct option longopts[] = {
		{ "stat", no_argument, NULL, 's' },
		{ "map", no_argument, NULL, 'm' },
		{ "align", required_argument, NULL, OPT_ALIGN },
		{ "gap", required_argument, NULL, OPT_GAP },
		{ "check", no_argument, NULL, 'c' },
		{ "strict", no_argument, NULL, OPT_STRICT },
		{ "files", no_argument, NULL, 'f' },
		{ "ignore-checksums", no_argument, NULL, OPT_IGNORE_CSUM },
		{ "backing", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "smcfb:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->stat = true;
			break;
		case 'm':
			o->map = true;
			break;
		case 'c':
			o->check = true;
			break;
		case 'f':
			o->files = true;
			break;
		case 'b':
			o->backing = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case OPT_STRICT:
			o->strict = true;
			break;
		case OPT_IGNORE_CSUM:
			o->ignore_csum = true;
			break;
		case OPT_ALIGN:
			if (!parse_bytes(optarg, &o->align) || o->align == 0) {
				cli_error("--align: '%s' is not a positive byte count",
					  optarg);
				return -1;
			}
			break;
		case OPT_GAP:
			if (!parse_bytes(optarg, &o->gap)) {
				cli_error("--gap: '%s' is not a byte count", optarg);
				return -1;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case OPT_VERSION:
			cli_version();
			exit(0);
		default:
			cli_bad_option(argv, optopt);
			return -1;
		}
	}
	if (optind >= argc) {
		cli_error("no FILE given (see --help)");
		return -1;
	}
	if (o->backing && argc - optind > 1) {
		cli_error("--backing applies to one COW file; %d files given",
			  argc - optind);
		return -1;
	}
	if ((o->align || o->gap) && !o->map) {
		cli_error("--align and --gap go with --map");
		return -1;
	}
	if (o->strict && !o->check) {
		cli_error("--strict goes with --check");
		return -1;
	}
	if (o->ignore_csum && !o->files) {
		cli_error("--ignore-checksums goes with --files");
		return -1;
	}
	if (!o->map && !o->check && !o->files)
		o->stat = true;
	return 0;
}


static int worst(int a, int b)
{
	return a > b ? a : b;
}

static int one_file(struct out *o, const char *path, const struct opts *op)
{
	struct img im;
	char msg[1024];
	int status = ST_OK;

	out_doc_begin(o);
	out_str(o, "file", NULL, path);
	if (img_open(&im, path, op->backing, msg, sizeof(msg)) < 0) {
		file_error(o, "%s", msg);
		out_doc_end(o);
		return ST_FAILED;
	}
	out_str(o, "kind", NULL, im.kind == IMG_COW ? "cow" : "raw");
	/*
	 * A backing that is a FIFO or a character device is an error in
	 * every mode (--check reports it as a finding); --files, which
	 * needs it, is not run, so that the error is one line.
	 */
	if (im.backing_notreg && !op->check) {
		file_error(o, "%s: backing file %s: not a regular file or block "
			   "device", quote_name(path),
			   quote_name(im.backing));
		status = ST_FAILED;
	}
	if (op->stat)
		status = worst(status, mode_stat(o, &im, op));
	if (op->map)
		status = worst(status, mode_map(o, &im, op));
	if (op->check)
		status = worst(status, mode_check(o, &im, op));
	if (op->files && !im.backing_notreg)
		status = worst(status, mode_files(o, &im, op));
	img_close(&im);
	out_doc_end(o);
	return status;
}

int main(int argc, char **argv)
{
	struct opts op = { 0 };
	struct out o;
	int status = ST_OK;

	cli_init(argv[0]);
	initialize_ext2_error_table();
	if (parse_args(argc, argv, &op) < 0)
		return ST_FAILED;
	out_init(&o, stdout, op.json);
	for (int i = optind; i < argc; i++) {
		if (i > optind && !op.json)
			fputc('\n', stdout);
		status = worst(status, one_file(&o, argv[i], &op));
	}
	if (fflush(stdout) == EOF || ferror(stdout)) {
		cli_error("standard output: %s", strerror(errno));
		return ST_FAILED;
	}
	return status;
}
