/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * uml_moo - merge a UML COW file with its backing file.
 *
 * A drop-in for uml-utilities' tool whose cost grows with the data, not
 * the image: only the backing's allocated extents and the COW's runs are
 * copied, the new image stays sparse and appears only when complete, and
 * an in-place merge (-d) is locked against running guests and can be
 * re-run to completion after a crash.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "afile.h"
#include "cli.h"
#include "quote.h"
#include "extent.h"
#include "hostlock.h"
#include "samefile.h"
#include "merge.h"
#include "resume.h"
#include "ubdk_cow.h"

/* Documented in uml_moo(1). */
enum {
	EXIT_FAILED = 1,        /* I/O error or verification failure */
	EXIT_USAGE = 2,
	EXIT_COW = 3,           /* COW missing, not a COW, damaged */
	EXIT_BACKING = 4,       /* backing missing, or size/mtime mismatch */
	EXIT_OUTPUT = 5,        /* output exists, or is one of the inputs */
	EXIT_LOCKED = 6,        /* a running guest or server holds the files,
	                           or (-f) the NEWIMAGE to replace */
};

struct options {
	const char *cow, *backing, *output;
	bool in_place, force, quiet, verify, json;
	unsigned long crash_after;
};

struct result {
	struct merge_progress prog;
	double seconds;
	bool verified;
	const char *backing;
	uint64_t size;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [OPTIONS] [-b BACKING] COW NEWIMAGE\n"
		"       %s [OPTIONS] [-b BACKING] -d COW\n"
		"Merge a COW file with its backing file, into a new image or in place.\n\n"
		"  -b, --backing FILE  use FILE as the backing file, not the header's\n"
		"  -d, --in-place      merge into the backing file itself\n"
		"  -f, --force         replace NEWIMAGE if it exists\n"
		"  -q, --quiet         no progress bar, no summary\n"
		"      --verify        read the result back and compare it\n"
		"  -j, --json          print the summary as JSON on stdout\n"
		"  -h, --help          show this help\n"
		"      --version       show the version\n\n"
		"Exit status: 0 merged; 1 I/O error or verification failed; 2 usage;\n"
		"3 COW unusable; 4 backing unusable or changed; 5 NEWIMAGE exists or is\n"
		"an input; 6 in use by a running guest or server (the inputs, or with\n"
		"-f the NEWIMAGE to replace).\n",
		cli_prog, cli_prog);
}

static int parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_VERSION = 256, OPT_VERIFY };
	static const struct option longopts[] = {
		{ "backing", required_argument, NULL, 'b' },
		{ "in-place", no_argument, NULL, 'd' },
		{ "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *crash = getenv("UBDK_MOO_CRASH_AFTER");
	int c, nargs;

	opterr = 0;
	/* Options anywhere, in any order: the old tool's order bug is gone. */
	while ((c = getopt_long(argc, argv, "b:dfqjh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->backing = optarg;
			break;
		case 'd':
			o->in_place = true;
			break;
		case 'f':
			o->force = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case OPT_VERIFY:
			o->verify = true;
			break;
		case 'j':
			o->json = true;
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
	nargs = argc - optind;
	if (nargs != (o->in_place ? 1 : 2)) {
		cli_error(o->in_place ? "-d takes one COW file (see --help)" :
			  "expected COW and NEWIMAGE (see --help)");
		return -1;
	}
	o->cow = argv[optind];
	o->output = o->in_place ? NULL : argv[optind + 1];
	/* A test hook: die by SIGKILL after that many data writes. */
	if (crash)
		o->crash_after = strtoul(crash, NULL, 10);
	return 0;
}

static bool show_progress;
static struct timespec last_report;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const struct merge_progress *p)
{
	struct timespec ts;
	int pct;

	if (!show_progress || !p->total)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (p->done < p->total &&
	    (ts.tv_sec - last_report.tv_sec) * 1000000000L +
	    (ts.tv_nsec - last_report.tv_nsec) < 100000000L)
		return;
	last_report = ts;
	pct = (int)(p->done * 100 / p->total);
	fprintf(stderr, "\r%s: [%-40.*s] %3d%% %llu/%llu MiB", cli_prog,
		pct * 40 / 100, "########################################", pct,
		(unsigned long long)(p->done >> 20),
		(unsigned long long)(p->total >> 20));
}

/* Exit status for an error from ubdk_cow_open or ubdk_cow_check_data. */
static int open_status(const struct ubdk_err *err)
{
	if (err->code == UBDK_E_LOCKED)
		return EXIT_LOCKED;
	if (err->code == UBDK_E_NOMEM)
		return EXIT_FAILED;
	/* The library says which file: a bad backing is not a bad COW. */
	if (err->file == UBDK_FILE_BACKING || err->code == UBDK_E_SIZE_MISMATCH ||
	    err->code == UBDK_E_MTIME_MISMATCH)
		return EXIT_BACKING;
	return EXIT_COW;
}

static bool interrupted_merge(const char *cow)
{
	struct resume_record r;
	char path[4096];

	return resume_path(cow, path, sizeof(path)) == 0 &&
	       resume_read(path, &r) == 0;
}

/*
 * Open the pair and check that every sector the COW marks present is in
 * it: a COW cut inside its data area would otherwise merge as zeros.
 * Nothing is written or created before this returns 0.
 */
static int open_cow(const struct options *o, int flags, struct ubdk_cow **cow)
{
	struct ubdk_err err = { 0 };
	char shell[QUOTE_SHELL_SIZE(UBDK_PATH_MAX)];
	/*
	 * O_NONBLOCK: a FIFO must not wait for a writer here; the library
	 * then refuses what is not a regular file or block device.
	 */
	int fd = open(o->cow, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		cli_error("%s: cannot open COW file: %s", quote_name(o->cow), strerror(errno));
		return EXIT_COW;
	}
	close(fd);
	if (ubdk_cow_open(o->cow, o->backing, flags, cow, &err) == 0) {
		if (ubdk_cow_check_data(*cow, &err) == 0)
			return 0;
		ubdk_cow_close(*cow);
		*cow = NULL;
		cli_error("%s; refusing to merge it: the merge would hold zeros "
			  "there", cli_err_text(&err, (char[CLI_ERR_TEXT]){ 0 },
						 CLI_ERR_TEXT));
		return EXIT_COW;
	}
	quote_shell(shell, sizeof(shell), o->cow);
	if (err.code == UBDK_E_MTIME_MISMATCH && interrupted_merge(o->cow))
		cli_error("%s: an in-place merge of it was interrupted and "
			  "changed its backing file; finish it with: uml_moo -d "
			  "%s", quote_name(o->cow), shell);
	else if (err.code == UBDK_E_SIZE_MISMATCH ||
		 err.code == UBDK_E_MTIME_MISMATCH)
		cli_error("%s; if its content is unchanged, name it with -b or "
			  "record it with: uml_mkcow --rebase BACKING %s",
			  cli_err_text(&err, (char[CLI_ERR_TEXT]){ 0 }, CLI_ERR_TEXT),
			  shell);
	else
		cli_report(&err);
	return open_status(&err);
}

/* The output must not exist (unless -f) and must not be an input. */
static int check_output(const struct options *o, struct ubdk_cow *cow)
{
	struct stat st;

	if (stat(o->output, &st) < 0)
		return 0;
	if (same_file(o->cow, &st, true) || same_file(ubdk_cow_backing_path(cow), &st, true)) {
		cli_error("%s: is an input of the merge; choose another name",
			  quote_name(o->output));
		return EXIT_OUTPUT;
	}
	if (!o->force) {
		cli_error("%s: already exists (use -f to replace it)", quote_name(o->output));
		return EXIT_OUTPUT;
	}
	return 0;
}

/*
 * With -f, the file NEWIMAGE names now is write-locked as the kernel does
 * until the merge replaced it: a guest or server using it (an image is
 * also served or booted) would go on writing a deleted file.
 */
static int lock_output(const struct options *o, struct afile *af)
{
	int ret = o->force ? hostlock_replace(af, o->output) : 0;

	return ret == -EAGAIN ? EXIT_LOCKED : ret < 0 ? EXIT_FAILED : 0;
}

static int merge_new(const struct options *o, struct result *res)
{
	struct ubdk_err err = { 0 };
	struct ubdk_cow *cow;
	struct afile af = { .fd = -1 };
	char dir[4096];
	int dirfd, ret, status;

	/* Read locks: a guest writing the pair makes us refuse, not copy junk. */
	status = open_cow(o, UBDK_OPEN_LOCK, &cow);
	if (status)
		return status;
	res->backing = strdup(ubdk_cow_backing_path(cow));
	res->size = ubdk_cow_header(cow)->size;
	status = check_output(o, cow);
	if (status)
		goto out;
	afile_dir_of(o->output, dir, sizeof(dir));
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = dirfd < 0 ? -errno : afile_open(&af, dirfd, o->output, 0644, true);
	if (dirfd >= 0)
		close(dirfd);
	if (ret < 0) {
		cli_error("%s: cannot create: %s", quote_name(o->output), strerror(-ret));
		status = EXIT_FAILED;
		goto out;
	}
	status = lock_output(o, &af);
	if (status)
		goto out;
	res->prog.total = extent_data_bytes(ubdk_cow_backing_fd(cow),
					    ubdk_cow_header(cow)->size) +
			  merge_cow_bytes(cow);
	ret = merge_copy_extents(cow, ubdk_cow_backing_fd(cow), af.fd,
				 ubdk_cow_header(cow)->size, &res->prog,
				 ubdk_cow_backing_path(cow), o->output, &err);
	if (ret == 0)
		ret = merge_overlay(cow, af.fd, o->output, &res->prog, &err);
	if (ret == 0 && fsync(af.fd) < 0)
		ret = -errno, snprintf(err.msg, sizeof(err.msg), "%s: fsync: %s",
				       o->output, strerror(errno));
	if (ret == 0 && o->verify) {
		ret = merge_verify(cow, af.fd, o->output, false, &err);
		res->verified = ret == 0;
	}
	if (ret == 0) {
		ret = afile_publish(&af, o->output, o->force);
		if (ret < 0)
			snprintf(err.msg, sizeof(err.msg), "%s: %s", o->output,
				 ret == -EEXIST ? "already exists (use -f to "
				 "replace it)" : strerror(-ret));
		else {
			afile_dir_of(o->output, dir, sizeof(dir));
			dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dirfd >= 0) {
				fsync(dirfd);
				close(dirfd);
			}
		}
	}
	if (ret < 0) {
		if (show_progress)
			fputc('\n', stderr);
		cli_error("%s", err.msg[0] ? err.msg : strerror(-ret));
		status = ret == -EEXIST ? EXIT_OUTPUT : EXIT_FAILED;
	}
out:
	afile_discard(&af);
	ubdk_cow_close(cow);
	return status;
}

/*
 * Merge into the backing file.  The write lock on it fails while any guest
 * has it open; the resume record makes a killed merge restartable.
 */
static int merge_in_place(const struct options *o, struct result *res)
{
	struct ubdk_err err = { 0 };
	struct ubdk_cow *cow;
	struct resume_record rec, found;
	struct ubdk_backing_check chk;
	struct stat st;
	char record[4096];
	bool resuming;
	int ret, status;

	status = open_cow(o, UBDK_OPEN_LOCK | UBDK_OPEN_BACKING_RDWR |
			  UBDK_OPEN_NO_CHECK, &cow);
	if (status)
		return status;
	res->backing = strdup(ubdk_cow_backing_path(cow));
	res->size = ubdk_cow_header(cow)->size;
	if (resume_path(o->cow, record, sizeof(record)) < 0 ||
	    fstat(ubdk_cow_backing_fd(cow), &st) < 0) {
		cli_error("%s: %s", quote_name(o->cow), strerror(ENAMETOOLONG));
		status = EXIT_FAILED;
		goto out;
	}
	rec.dev = st.st_dev;
	rec.ino = st.st_ino;
	rec.size = ubdk_cow_header(cow)->size;
	rec.header_mtime = ubdk_cow_header(cow)->mtime;
	resuming = resume_read(record, &found) == 0 && found.dev == rec.dev &&
		   found.ino == rec.ino && found.size == rec.size &&
		   found.header_mtime == rec.header_mtime;
	ret = ubdk_backing_check(ubdk_cow_header(cow), ubdk_cow_backing_path(cow),
				 &chk, &err);
	/* An interrupted merge changed the mtime; the size never changes. */
	if (ret < 0 && !(resuming && err.code == UBDK_E_MTIME_MISMATCH)) {
		char shell[QUOTE_SHELL_SIZE(UBDK_PATH_MAX)];

		quote_shell(shell, sizeof(shell), o->cow);
		if (err.code == UBDK_E_SIZE_MISMATCH ||
		    err.code == UBDK_E_MTIME_MISMATCH)
			cli_error("%s: %s; if its content is unchanged, name it "
				  "with -b or record it with: uml_mkcow --rebase "
				  "BACKING %s", quote_name(o->cow), cli_err_text(&err,
				  (char[CLI_ERR_TEXT]){ 0 }, CLI_ERR_TEXT), shell);
		else
			cli_report(&err);
		status = EXIT_BACKING;
		goto out;
	}
	if (resuming && !o->quiet)
		cli_error("resuming the interrupted in-place merge recorded in %s",
			  quote_name(record));
	ret = resume_write(record, &rec);
	if (ret < 0) {
		cli_error("%s: cannot record the merge's progress: %s", quote_name(record),
			  strerror(-ret));
		status = EXIT_FAILED;
		goto out;
	}
	res->prog.total = merge_cow_bytes(cow);
	ret = merge_overlay(cow, ubdk_cow_backing_fd(cow),
			    ubdk_cow_backing_path(cow), &res->prog, &err);
	if (ret == 0 && fsync(ubdk_cow_backing_fd(cow)) < 0)
		ret = -errno, snprintf(err.msg, sizeof(err.msg), "%s: fsync: %s",
				       ubdk_cow_backing_path(cow), strerror(errno));
	if (ret == 0 && o->verify) {
		ret = merge_verify(cow, ubdk_cow_backing_fd(cow),
				   ubdk_cow_backing_path(cow), true, &err);
		res->verified = ret == 0;
	}
	if (ret == 0)
		ret = resume_remove(record);
	if (ret < 0) {
		if (show_progress)
			fputc('\n', stderr);
		cli_error("%s (re-run the same command to finish the merge)",
			  err.msg[0] ? err.msg : strerror(-ret));
		status = EXIT_FAILED;
		goto out;
	}
	if (!o->quiet)
		cli_error("note: %s changed, so other COW files on it are no "
			  "longer valid (mtime check); %s is left as it was and "
			  "is no longer needed", quote_name(ubdk_cow_backing_path(cow)),
			  quote_name(o->cow));
out:
	ubdk_cow_close(cow);
	return status;
}

static void print_summary(const struct options *o, const struct result *r)
{
	const char *out = o->in_place ? r->backing : o->output;

	if (o->json) {
		printf("{\"mode\":\"%s\",\"cow\":", o->in_place ? "in-place" : "new");
		quote_json(stdout, o->cow);
		printf(",\"backing\":");
		quote_json(stdout, r->backing ? r->backing : "");
		printf(",\"output\":");
		quote_json(stdout, out ? out : "");
		printf(",\"size\":%llu,\"bytes_from_backing\":%llu,\"bytes_from_cow\":%llu,"
		       "\"seconds\":%.3f,\"verified\":%s}\n",
		       (unsigned long long)r->size,
		       (unsigned long long)r->prog.from_backing,
		       (unsigned long long)r->prog.from_cow, r->seconds,
		       r->verified ? "true" : "false");
	}
	if (!o->quiet)
		fprintf(stderr, "%s: merged %s into %s: %.1f MiB from the "
			"backing file, %.1f MiB from the COW, %.2f s%s\n",
			cli_prog, o->cow, out,
			(double)r->prog.from_backing / 1048576.0,
			(double)r->prog.from_cow / 1048576.0, r->seconds,
			r->verified ? ", verified" : "");
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct result res = { 0 };
	double t0;
	int status;

	cli_init(argv[0]);
	/* Past RLIMIT_FSIZE, report EFBIG instead of dying half-way. */
	signal(SIGXFSZ, SIG_IGN);
	if (parse_args(argc, argv, &o) < 0)
		return EXIT_USAGE;
	show_progress = !o.quiet && isatty(STDERR_FILENO);
	res.prog.report = report;
	res.prog.crash_after = o.crash_after;
	t0 = now();
	status = o.in_place ? merge_in_place(&o, &res) : merge_new(&o, &res);
	res.seconds = now() - t0;
	if (show_progress && status == 0 && res.prog.total)
		fputc('\n', stderr);
	if (status == 0)
		print_summary(&o, &res);
	free((void *)res.backing);
	return status;
}
