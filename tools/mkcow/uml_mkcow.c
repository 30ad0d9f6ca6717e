/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * uml_mkcow - create COW files for a UML backing file.
 *
 * A drop-in for uml-utilities' tool (uml_mkcow [-f] COW BACKING) that also
 * makes thousands of clones in one call, each appearing only complete, and
 * rebases existing COW files after their master was moved or touched, and
 * turns an image back into a COW over its master (--diff).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "clone.h"
#include "diff.h"
#include "hostlock.h"
#include "input.h"
#include "names.h"
#include "quote.h"
#include "samefile.h"
#include "ubdk_static.h"

/* Documented in uml_mkcow(1). */
enum {
	EXIT_FAILED = 1,        /* I/O error (clones made before it are valid),
	                           or --diff's inputs changed during it */
	EXIT_USAGE = 2,
	EXIT_BACKING = 3,       /* backing file missing, unreadable, unusable */
	EXIT_EXISTS = 4,        /* a COW name exists, repeats or is the backing */
	EXIT_SIZES_DIFFER = 5,  /* the new backing's (--rebase) or the
	                           image's (--diff) size differs */
	/* 6, as in uml_moo and uml_backup: a file cannot be used now. */
	EXIT_IMAGE = 6,         /* --diff: image missing, unreadable, unusable */
	EXIT_IN_USE = 6,        /* a guest or server holds a lock on a COW
	                           (-f, --rebase) or a writer on --diff's inputs */
};

struct options {
	struct ubdk_create_opts create;
	const char *backing;
	const char *rebase;
	const char *diff;
	const char *name_template;
	unsigned long start;
	size_t count;
	bool force, json, quiet;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [OPTIONS] COW BACKING\n"
		"       %s [OPTIONS] COW... BACKING\n"
		"       %s [OPTIONS] -b BACKING COW...\n"
		"       %s [OPTIONS] --count N --name TEMPLATE BACKING\n"
		"       %s --rebase NEWBACKING COW...\n"
		"       %s [OPTIONS] --diff IMAGE COW BACKING\n"
		"Create copy-on-write files for UML guests on top of BACKING.\n\n"
		"  -f, --force             replace COW files that exist\n"
		"  -b, --backing FILE      the backing file; all arguments are COWs\n"
		"  -n, --count N           make N clones named by --name\n"
		"  -N, --name TEMPLATE     clone names, one %%d: 'guest-%%04d.cow'\n"
		"      --start K           first number for the template (default 0)\n"
		"  -V, --format-version N  COW format version 1, 2 or 3 (default 3)\n"
		"  -s, --sector-size N     sector size in bytes (default 512)\n"
		"  -a, --alignment N       v3 alignment of bitmap and data (default 4096)\n"
		"  -r, --rebase NEWBACKING point each COW at NEWBACKING (same size)\n"
		"      --diff IMAGE        make COW hold the sectors where IMAGE\n"
		"                          differs from BACKING (same size)\n"
		"  -j, --json              print what was done as JSON\n"
		"  -q, --quiet             no progress on stderr\n"
		"  -h, --help              show this help\n"
		"      --version           show the version\n\n"
		"Exit status: 0 done; 1 I/O error (clones made before it are complete);\n"
		"2 usage; 3 backing file unusable; 4 a COW exists, repeats or is the\n"
		"backing or the image; 5 sizes differ (rebase or diff refused);\n"
		"6 the image to diff is unusable, or in use (a running guest or NBD\n"
		"server holds a lock on the COW, or writes the image or backing).\n",
		cli_prog, cli_prog, cli_prog, cli_prog, cli_prog, cli_prog);
}

static int parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_VERSION = 256, OPT_START, OPT_DIFF };
	static const struct option longopts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "backing", required_argument, NULL, 'b' },
		{ "count", required_argument, NULL, 'n' },
		{ "name", required_argument, NULL, 'N' },
		{ "start", required_argument, NULL, OPT_START },
		{ "format-version", required_argument, NULL, 'V' },
		{ "sector-size", required_argument, NULL, 's' },
		{ "alignment", required_argument, NULL, 'a' },
		{ "rebase", required_argument, NULL, 'r' },
		{ "diff", required_argument, NULL, OPT_DIFF },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	unsigned v;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "fb:n:N:V:s:a:r:jqh", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'f':
			o->force = true;
			break;
		case 'b':
			o->backing = optarg;
			break;
		case 'n':
			if (!cli_parse_u32(optarg, &v) || v == 0) {
				cli_error("--count must be a positive number, not '%s'",
					  quote_name(optarg));
				return -1;
			}
			o->count = v;
			break;
		case 'N':
			o->name_template = optarg;
			break;
		case OPT_START:
			if (!cli_parse_u32(optarg, &v)) {
				cli_error("--start must be a number, not '%s'", quote_name(optarg));
				return -1;
			}
			o->start = v;
			break;
		case 'V':
			if (!cli_parse_u32(optarg, &v) || v < 1 || v > 3) {
				cli_error("--format-version must be 1, 2 or 3, not '%s'",
					  quote_name(optarg));
				return -1;
			}
			o->create.version = v;
			break;
		case 's':
			if (!cli_parse_u32(optarg, &v) || v < 512 || (v & (v - 1)) ||
			    v > (1U << 16)) {
				cli_error("--sector-size must be a power of two from "
					  "512 to 65536, not '%s'", quote_name(optarg));
				return -1;
			}
			o->create.sectorsize = v;
			break;
		case 'a':
			if (!cli_parse_u32(optarg, &v) || v == 0 || v > (1U << 30)) {
				cli_error("--alignment must be a number from 1 to "
					  "2^30, not '%s'", quote_name(optarg));
				return -1;
			}
			o->create.alignment = v;
			break;
		case 'r':
			o->rebase = optarg;
			break;
		case OPT_DIFF:
			o->diff = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'q':
			o->quiet = true;
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
	if (o->create.alignment && o->create.version && o->create.version < 3) {
		cli_error("--alignment applies to format version 3 only");
		return -1;
	}
	if (!o->count != !o->name_template) {
		cli_error("--count and --name go together");
		return -1;
	}
	if (o->diff && (o->count || o->rebase)) {
		cli_error("--diff makes one COW: not with --count or --rebase");
		return -1;
	}
	return 0;
}

/* Backing and COW names from the arguments left after the options. */
static int split_operands(int argc, char **argv, struct options *o,
			  char ***names, size_t *count)
{
	int nargs = argc - optind;
	char msg[256];

	if (o->rebase) {
		if (nargs < 1 || o->backing || o->count) {
			cli_error("--rebase takes only COW files");
			return -1;
		}
		*names = argv + optind;
		*count = (size_t)nargs;
		return 0;
	}
	if (!o->backing) {
		/* Like cp: the last operand is the one everything refers to. */
		if (nargs < (o->count ? 1 : 2)) {
			cli_error("expected %s (see --help)", o->count ?
				  "BACKING" : "COW... BACKING");
			return -1;
		}
		o->backing = argv[argc - 1];
		nargs--;
	}
	if (o->count) {
		if (nargs != 0) {
			cli_error("with --count, give only the backing file");
			return -1;
		}
		*names = names_expand(o->name_template, o->start, o->count, msg,
				      sizeof(msg));
		if (!*names) {
			cli_error("%s", msg);
			return -1;
		}
		*count = o->count;
		return 0;
	}
	if (nargs < 1 || (o->diff && nargs != 1)) {
		cli_error(o->diff ? "--diff takes one COW name and the backing "
			  "file (see --help)" : "expected at least one COW name "
			  "(see --help)");
		return -1;
	}
	*names = argv + optind;
	*count = (size_t)nargs;
	return 0;
}

/*
 * With -f, a COW that a running guest or server has open (and locked, as
 * the kernel does) must not be replaced: it would go on writing a deleted
 * file.  Checked for every name before anything is created; each is then
 * locked from its creation until its replacement is in place (clone.c,
 * diff.c), which also catches a guest started in between.
 */
static bool in_use(const char *name)
{
	struct ubdk_err err = { 0 };
	/* O_NONBLOCK: a FIFO under that name must not block us. */
	int fd = open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	long pid;

	if (fd < 0)
		return false;
	pid = hostlock_holder(fd, true);
	close(fd);
	if (!pid)
		return false;
	hostlock_fail(&err, name, pid, "not replaced");
	cli_report(&err);
	return true;
}

/*
 * Refuse before creating anything: a name given twice, a name that is the
 * backing file or the image to diff (NULL if none), (without -f) a name
 * that exists, or (with -f) a COW in use.
 */
static int check_names(char *const *names, size_t count, const char *backing,
		       const char *image, bool force)
{
	struct stat st;
	long dup = names_find_duplicate(names, count);

	if (dup >= 0) {
		cli_error("%s: named twice", quote_name(names[dup]));
		return EXIT_EXISTS;
	}
	for (size_t i = 0; i < count; i++) {
		if (lstat(names[i], &st) < 0)
			continue;
		if (same_file(backing, &st, true) || same_file(image, &st, true)) {
			cli_error("%s: is the %s itself", quote_name(names[i]),
				  same_file(backing, &st, true) ? "backing file" :
				  "image to diff");
			return EXIT_EXISTS;
		}
		if (!force) {
			cli_error("%s: already exists (use -f to replace it)",
				  quote_name(names[i]));
			return EXIT_EXISTS;
		}
		if (S_ISREG(st.st_mode) && in_use(names[i]))
			return EXIT_IN_USE;
	}
	return 0;
}

/*
 * Refuse what the library could not open: an invalid geometry, or a COW
 * whose apparent size does not fit a file offset.  (The bitmap's size is
 * no limit: it is loaded sparsely, as the sectors written need it.)
 */
static int check_geometry(const struct ubdk_header *hdr)
{
	struct ubdk_err err = { 0 };
	struct ubdk_geometry geo;

	if (ubdk_header_geometry(hdr, hdr->backing, &geo, &err) < 0) {
		cli_report(&err);
		return EXIT_BACKING;
	}
	if (geo.file_size > (uint64_t)INT64_MAX) {
		cli_error("backing file %s: %llu bytes need a COW file of %llu "
			  "bytes, past the largest file offset", quote_name(hdr->backing),
			  (unsigned long long)hdr->size,
			  (unsigned long long)geo.file_size);
		return EXIT_BACKING;
	}
	return 0;
}

static bool show_progress;

static void progress(size_t done, size_t total)
{
	if (show_progress)
		fprintf(stderr, "\r%s: %zu/%zu clones", cli_prog, done, total);
}

static void print_created(const struct ubdk_header *hdr, char *const *names,
			  size_t made, const struct ubdk_err *err)
{
	struct ubdk_geometry geo;

	ubdk_header_geometry(hdr, NULL, &geo, NULL);
	printf("{\"backing\":");
	quote_json(stdout, hdr->backing);
	printf(",\"size\":%llu,\"mtime\":%u,\"version\":%u,\"sectorsize\":%u,"
	       "\"alignment\":%u,\"data_offset\":%llu,\"apparent_size\":%llu,"
	       "\"count\":%zu,\"created\":[", (unsigned long long)hdr->size,
	       hdr->mtime, hdr->version, hdr->sectorsize, hdr->alignment,
	       (unsigned long long)geo.data_offset,
	       (unsigned long long)geo.file_size, made);
	for (size_t i = 0; i < made; i++) {
		if (i)
			putchar(',');
		quote_json(stdout, names[i]);
	}
	printf("]");
	if (err) {
		printf(",\"error\":");
		quote_json(stdout, err->msg);
	}
	printf("}\n");
}

/*
 * The header of the new COW files: the backing file is resolved, stat'ed
 * and checked once.  Opened to check it is readable; the descriptor is
 * returned through *fd when fd is not NULL, closed otherwise.
 */
static int new_header(const struct options *o, struct ubdk_header *hdr,
		      int *fd)
{
	struct ubdk_err err = { 0 };
	struct stat st;
	int bfd, status;

	if (ubdk_create_header(o->backing, &o->create, hdr, &err) < 0) {
		cli_report(&err);
		return err.code == UBDK_E_SECTORSIZE ||
		       err.code == UBDK_E_ALIGNMENT ? EXIT_USAGE : EXIT_BACKING;
	}
	/* Not waiting on a FIFO put there since. */
	bfd = input_open(hdr->backing, &st);
	if (bfd < 0) {
		cli_error("backing file %s: cannot open for reading: %s",
			  quote_name(hdr->backing), input_strerror(bfd));
		return EXIT_BACKING;
	}
	status = check_geometry(hdr);
	if (status || !fd)
		close(bfd);
	else
		*fd = bfd;
	return status;
}

static int create_clones(const struct options *o, char *const *names,
			 size_t count)
{
	struct ubdk_err err = { 0 };
	struct ubdk_header hdr;
	struct clone_job job = { .hdr = &hdr, .names = names, .count = count,
				 .force = o->force, .progress = progress };
	size_t made;
	int ret, status;

	status = new_header(o, &hdr, NULL);
	if (!status)
		status = check_names(names, count, hdr.backing, NULL, o->force);
	if (status)
		return status;

	show_progress = !o->quiet && count >= 1000 && isatty(STDERR_FILENO);
	ret = clone_all(&job, &made, &err);
	if (show_progress)
		fputc('\n', stderr);
	if (o->json)
		print_created(&hdr, names, made, ret < 0 ? &err : NULL);
	if (ret < 0) {
		if (count > 1)
			cli_error("%s (%zu of %zu clones made, each complete)",
				  err.msg, made, count);
		else
			cli_report(&err);
		return ret == -EEXIST ? EXIT_EXISTS : err.code == UBDK_E_LOCKED ?
		       EXIT_IN_USE : EXIT_FAILED;
	}
	return 0;
}

static int rebase_all(const struct options *o, char *const *names,
		      size_t count)
{
	struct stat st;
	int fd, status = 0;

	/*
	 * The new backing is checked once, before any COW is touched; not
	 * waiting for a writer if it is a FIFO.
	 */
	fd = open(o->rebase, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		cli_error("backing file %s: %s", quote_name(o->rebase), strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_BACKING;
	}
	close(fd);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		cli_error("backing file %s: not a regular file or block device",
			  quote_name(o->rebase));
		return EXIT_BACKING;
	}
	if (o->json)
		printf("{\"rebased\":[");
	for (size_t i = 0; i < count; i++) {
		struct ubdk_err err = { 0 };
		struct ubdk_cow *cow;
		char old[UBDK_PATH_MAX];
		int ret;

		/* The lock makes a running guest's COW fail, not change under it. */
		ret = ubdk_cow_open(names[i], NULL, UBDK_OPEN_RDWR | UBDK_OPEN_LOCK |
				    UBDK_OPEN_NO_BACKING | UBDK_OPEN_NO_CHECK,
				    &cow, &err);
		if (ret == 0) {
			snprintf(old, sizeof(old), "%s", ubdk_cow_header(cow)->backing);
			ret = ubdk_cow_rebase(cow, o->rebase, &err);
			if (ret == 0 && o->json) {
				printf("%s{\"cow\":", status || i == 0 ? "" : ",");
				quote_json(stdout, names[i]);
				printf(",\"old_backing\":");
				quote_json(stdout, old);
				printf(",\"backing\":");
				quote_json(stdout, ubdk_cow_header(cow)->backing);
				printf(",\"mtime\":%u}", ubdk_cow_header(cow)->mtime);
			}
			if (ubdk_cow_close(cow) < 0 && ret == 0) {
				cli_error("%s: closing failed", quote_name(names[i]));
				status = EXIT_FAILED;
			}
		}
		if (ret < 0) {
			cli_report(&err);
			if (err.code == UBDK_E_SIZE_MISMATCH)
				status = EXIT_SIZES_DIFFER;
			else if (err.code == UBDK_E_LOCKED)
				status = EXIT_IN_USE;
			else if (!status)
				status = EXIT_FAILED;
		}
	}
	if (o->json)
		printf("]}\n");
	return status;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* At most ten lines a second, and always the last. */
static void diff_progress(const struct diff_stats *st, uint64_t total)
{
	static double last;
	double t;

	if (!show_progress)
		return;
	t = now();
	if (st->done < total && t - last < 0.1)
		return;
	last = t;
	fprintf(stderr, "\r%s: compared %llu of %llu MiB, %llu sectors differ",
		cli_prog, (unsigned long long)(st->done >> 20),
		(unsigned long long)(total >> 20),
		(unsigned long long)st->sectors_written);
}

static void print_diff(const struct diff_job *job, const struct diff_stats *st,
		       double seconds, const struct ubdk_err *err)
{
	printf("{\"cow\":");
	quote_json(stdout, job->cow);
	printf(",\"image\":");
	quote_json(stdout, job->image);
	printf(",\"backing\":");
	quote_json(stdout, job->backing);
	printf(",\"size\":%llu,\"sectorsize\":%u,\"sectors_compared\":%llu,"
	       "\"sectors_written\":%llu,\"bytes_read\":%llu,\"seconds\":%.3f",
	       (unsigned long long)job->hdr->size, job->hdr->sectorsize,
	       (unsigned long long)st->sectors_compared,
	       (unsigned long long)st->sectors_written,
	       (unsigned long long)st->bytes_read, seconds);
	if (err) {
		printf(",\"error\":");
		quote_json(stdout, err->msg);
	}
	printf("}\n");
}

/* Bytes of an open file or block device (st_size is 0 for a device). */
static int64_t input_size(int fd)
{
	off_t end = lseek(fd, 0, SEEK_END);

	return end < 0 ? -1 : (int64_t)end;
}

/* --diff IMAGE COW BACKING: checks, then the engine (diff.c). */
static int diff_image(const struct options *o, char *const *names)
{
	struct ubdk_err err = { 0 };
	struct ubdk_header hdr;
	struct diff_stats st;
	struct diff_job job = { .hdr = &hdr, .cow = names[0], .image = o->diff,
				.image_fd = -1, .backing_fd = -1,
				.force = o->force, .progress = diff_progress };
	const char *crash = getenv("UBDK_MKCOW_CRASH_AFTER");
	const char *stop = getenv("UBDK_MKCOW_STOP_AFTER");
	struct stat ist;
	int64_t isize;
	double t0;
	int ret, status;

	status = new_header(o, &hdr, &job.backing_fd);
	if (status)
		return status;
	job.backing = hdr.backing;
	job.image_fd = input_open(o->diff, &ist);
	if (job.image_fd < 0) {
		cli_error("image %s: cannot open for reading: %s", quote_name(o->diff),
			  input_strerror(job.image_fd));
		status = EXIT_IMAGE;
		goto out;
	}
	isize = input_size(job.image_fd);
	if (isize < 0) {
		cli_error("image %s: cannot find its size: %s", quote_name(o->diff),
			  strerror(errno));
		status = EXIT_IMAGE;
		goto out;
	}
	if ((uint64_t)isize != hdr.size) {
		cli_error("image %s: %lld bytes, but backing file %s has %llu: "
			  "a COW holds an image of its backing file's size",
			  quote_name(o->diff), (long long)isize, quote_name(hdr.backing),
			  (unsigned long long)hdr.size);
		status = EXIT_SIZES_DIFFER;
		goto out;
	}
	status = check_names(names, 1, hdr.backing, o->diff, o->force);
	if (status)
		goto out;
	/*
	 * Test hooks: die by SIGKILL, or stop (SIGSTOP, for a test to change
	 * an input mid-diff), after that many runs written.
	 */
	if (crash || stop) {
		job.signal_after = strtoul(crash ? crash : stop, NULL, 10);
		job.signal = crash ? SIGKILL : SIGSTOP;
	}
	show_progress = !o->quiet && isatty(STDERR_FILENO);
	t0 = now();
	ret = diff_make(&job, &st, &err);
	if (show_progress)
		fputc('\n', stderr);
	if (o->json)
		print_diff(&job, &st, now() - t0, ret < 0 ? &err : NULL);
	if (ret < 0) {
		cli_report(&err);
		status = ret == -EEXIST ? EXIT_EXISTS : err.code == UBDK_E_LOCKED ?
			 EXIT_IN_USE : EXIT_FAILED;
	}
out:
	if (job.image_fd >= 0)
		close(job.image_fd);
	close(job.backing_fd);
	return status;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	char **names = NULL;
	size_t count = 0;
	int status;

	cli_init(argv[0]);
	/* Past RLIMIT_FSIZE, report EFBIG instead of dying half-way. */
	signal(SIGXFSZ, SIG_IGN);
	if (parse_args(argc, argv, &o) < 0 ||
	    split_operands(argc, argv, &o, &names, &count) < 0)
		return EXIT_USAGE;
	if (o.rebase)
		status = rebase_all(&o, names, count);
	else if (o.diff)
		status = diff_image(&o, names);
	else
		status = create_clones(&o, names, count);
	if (o.count)
		names_free(names);
	return status;
}
