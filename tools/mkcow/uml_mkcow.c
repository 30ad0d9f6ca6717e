/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * uml_mkcow - create a COW file for a UML backing file.
 * Drop-in for uml-utilities' tool: uml_mkcow [-f] COW BACKING.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "ubdk_cow.h"

enum { EXIT_USAGE = 2 };

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [OPTIONS] COW BACKING\n"
		"Create the copy-on-write file COW on top of BACKING.\n\n"
		"  -f, --force             replace COW if it exists\n"
		"  -V, --format-version N  COW format version 1, 2 or 3 (default 3)\n"
		"  -s, --sector-size N     sector size in bytes (default 512)\n"
		"  -a, --alignment N       v3 alignment of bitmap and data (default 4096)\n"
		"  -j, --json              print what was created as JSON\n"
		"  -h, --help              show this help\n"
		"      --version           show the version\n\n"
		"Exit status: 0 created, 1 failed (nothing left behind), 2 usage error.\n",
		cli_prog);
}

/* Directory part of path, for the temporary file. */
static void dir_of(const char *path, char *out, size_t len)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	snprintf(out, len, "%s", dirname(tmp));
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0 && errno != EINVAL) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

/*
 * Write the COW under a temporary name in the target directory and move it
 * into place only when complete, so that no real name ever holds a
 * truncated header.
 */
static int create_atomic(const char *path, const struct ubdk_header *hdr,
			 bool force, struct ubdk_err *err)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 32];
	mode_t mask;
	int fd, ret;

	dir_of(path, dir, sizeof(dir));
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir,
		     strrchr(path, '/') ? strrchr(path, '/') + 1 : path) >=
	    (int)sizeof(tmp)) {
		snprintf(err->msg, sizeof(err->msg), "%s: name too long", path);
		return -ENAMETOOLONG;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err->msg, sizeof(err->msg), "%s: cannot create: %s",
			 path, strerror(errno));
		return ret;
	}
	/* mkostemp makes 0600; give the mode a plain creat(0644) would. */
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0644 & ~mask) < 0) {
		ret = -errno;
		snprintf(err->msg, sizeof(err->msg), "%s: chmod: %s", path,
			 strerror(errno));
	} else {
		ret = ubdk_create_fd(fd, path, hdr, err);
	}
	if (ret == 0 && fsync(fd) < 0) {
		ret = -errno;
		snprintf(err->msg, sizeof(err->msg), "%s: fsync: %s", path,
			 strerror(errno));
	}
	if (close(fd) < 0 && ret == 0) {
		ret = -errno;
		snprintf(err->msg, sizeof(err->msg), "%s: close: %s", path,
			 strerror(errno));
	}
	if (ret == 0) {
		/* link() refuses an existing name; rename() replaces it. */
		if (force ? rename(tmp, path) : link(tmp, path)) {
			ret = -errno;
			snprintf(err->msg, sizeof(err->msg), "%s: %s", path,
				 errno == EEXIST ?
				 "already exists (use -f to replace it)" :
				 strerror(errno));
		}
	}
	if (ret < 0 || !force)
		unlink(tmp);
	if (ret == 0)
		sync_dir(dir);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "format-version", required_argument, NULL, 'V' },
		{ "sector-size", required_argument, NULL, 's' },
		{ "alignment", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct ubdk_create_opts o = { 0 };
	struct ubdk_err err = { 0 };
	struct ubdk_header hdr;
	bool force = false, json = false;
	unsigned v;
	int c;

	cli_init(argv[0]);
	while ((c = getopt_long(argc, argv, "fV:s:a:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = true;
			break;
		case 'V':
			if (!cli_parse_u32(optarg, &v) || v < 1 || v > 3) {
				cli_error("--format-version must be 1, 2 or 3, not '%s'",
					  optarg);
				return EXIT_USAGE;
			}
			o.version = v;
			break;
		case 's':
			if (!cli_parse_u32(optarg, &v) || v == 0 || (v & (v - 1)) ||
			    v > (1U << 30)) {
				cli_error("--sector-size must be a power of two, not '%s'",
					  optarg);
				return EXIT_USAGE;
			}
			o.sectorsize = v;
			break;
		case 'a':
			if (!cli_parse_u32(optarg, &v) || v == 0) {
				cli_error("--alignment must be a positive number, not '%s'",
					  optarg);
				return EXIT_USAGE;
			}
			o.alignment = v;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'v':
			cli_version();
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (o.alignment && o.version && o.version < 3) {
		cli_error("--alignment applies to version 3 only");
		return EXIT_USAGE;
	}
	if (ubdk_create_header(argv[optind + 1], &o, &hdr, &err) < 0 ||
	    create_atomic(argv[optind], &hdr, force, &err) < 0) {
		cli_report(&err);
		return EXIT_FAILURE;
	}
	if (json) {
		printf("{\"cow\":");
		cli_json_string(stdout, argv[optind]);
		printf(",\"backing\":");
		cli_json_string(stdout, hdr.backing);
		printf(",\"version\":%u,\"size\":%llu,\"mtime\":%u,"
		       "\"sectorsize\":%u,\"alignment\":%u}\n", hdr.version,
		       (unsigned long long)hdr.size, hdr.mtime, hdr.sectorsize,
		       hdr.alignment);
	}
	return 0;
}
