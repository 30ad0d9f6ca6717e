/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "diff.h"
#include "afile.h"
#include "cli.h"
#include "extent.h"
#include "hostlock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * What is read and compared at a time: big enough that syscalls cost
 * little next to the copy into memory, small enough to stay in cache.
 * A multiple of every sector size (at most 64 KiB).
 */
#define BLOCK (1U << 20)

/* One input: its data extents, walked along with the comparison. */
struct side {
	const char *name;
	int fd;
	struct extent_iter it;
	uint64_t off, end;           /* current or next data extent */
	char *buf;
	struct stat before;          /* when locked, before the walk */
};

enum { IMG, BAK };

struct state {
	const struct diff_job *job;
	struct diff_stats *st;
	struct ubdk_cow *cow;
	char cow_path[PATH_MAX];     /* what the library calls the COW */
	uint64_t ss, size;
	struct side side[2];         /* [IMG] and [BAK] */
	char *zeros;                 /* BLOCK bytes: a hole's content */
	unsigned long runs_left;     /* test hook, 0 = off */
	int hook_signal;
	struct ubdk_err *err;
};

/*
 * Move s's extent so that it ends past pos.  No extent left: the next
 * data is at "infinity".  Where the file system cannot tell holes from
 * data, the rest is data (extent_next says so): read, never assumed.
 */
static void side_seek(struct side *s, uint64_t pos)
{
	while (s->end <= pos) {
		uint64_t off, len;

		if (extent_next(&s->it, &off, &len) == 0) {
			s->off = s->end = UINT64_MAX;
			return;
		}
		s->off = off;
		s->end = off + len;
	}
}

static int read_full(struct side *s, uint64_t off, size_t n,
		     struct ubdk_err *err)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(s->fd, s->buf + got, n - got,
				  (off_t)(off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return cli_fail_sys(err, errno, s->name, "reading");
		if (r == 0)
			break;
		got += (size_t)r;
	}
	/* A file that shrank under us reads as zeros past its end; the
	 * sizes were checked equal before. */
	memset(s->buf + got, 0, n - got);
	return 0;
}

/* An input changed during the diff: the COW would not hold the image. */
static int changed(struct state *s, const struct side *d)
{
	s->err->code = UBDK_E_SYS;
	s->err->errnum = ESTALE;
	s->err->file = UBDK_FILE_NONE;
	snprintf(s->err->msg, sizeof(s->err->msg), "%s %s: changed during the "
		 "diff (size, mtime or ctime differ, or it was replaced): the "
		 "COW would not hold the image; none made, run it again",
		 d == &s->side[IMG] ? "image" : "backing file", d->name);
	return -ESTALE;
}

static bool all_zero(const struct state *s, const char *p, size_t n)
{
	return memcmp(p, s->zeros, n) == 0;
}

/*
 * The library's error about the COW, with the COW's own name for the path
 * the library opened it by (a /proc/self/fd link or a temporary name).
 */
static int cow_fail(struct state *s, const struct ubdk_err *lerr, int ret,
		    const char *what)
{
	size_t n = strlen(s->cow_path);

	if (!lerr->msg[0] || !n || strncmp(lerr->msg, s->cow_path, n))
		return cli_fail_sys(s->err, lerr->errnum ? lerr->errnum : -ret,
				    s->job->cow, what);
	*s->err = *lerr;
	snprintf(s->err->msg, sizeof(s->err->msg), "%s%s", s->job->cow,
		 lerr->msg + n);
	return ret;
}

/* Put the image's bytes of [off, off + n) into the COW. */
static int write_run(struct state *s, const char *data, uint64_t off,
		     uint64_t n)
{
	struct ubdk_err lerr = { 0 };
	int ret = -EOPNOTSUPP;

	/* Zeros as a hole in the COW's data area: it stays sparse. */
	if (all_zero(s, data, (size_t)n))
		ret = ubdk_cow_discard(s->cow, off, n, false, &lerr);
	if (ret == -EOPNOTSUPP)
		ret = ubdk_cow_pwrite(s->cow, data, (size_t)n, off, &lerr);
	if (ret < 0)
		return cow_fail(s, &lerr, ret, "writing");
	s->st->sectors_written += (n + s->ss - 1) / s->ss;
	if (s->runs_left && --s->runs_left == 0)
		raise(s->hook_signal);
	return 0;
}

/*
 * [off, off + n) differs somewhere: compare it a sector at a time and
 * write each run of differing sectors.
 */
static int write_changed(struct state *s, const char *a, const char *b,
			 uint64_t off, size_t n)
{
	size_t run = 0, i;
	bool in_run = false;
	int ret;

	for (i = 0; i < n; i += (size_t)s->ss) {
		size_t len = n - i < s->ss ? n - i : (size_t)s->ss;
		bool differs = memcmp(a + i, b + i, len) != 0;

		if (differs && !in_run)
			run = i;
		if (!differs && in_run) {
			ret = write_run(s, a + run, off + run, i - run);
			if (ret < 0)
				return ret;
		}
		in_run = differs;
	}
	return in_run ? write_run(s, a + run, off + run, n - run) : 0;
}

/* Where s has data at pos, rounded to whole sectors. */
static bool has_data(const struct state *s, const struct side *d,
		     uint64_t pos)
{
	return d->off / s->ss * s->ss <= pos;
}

/*
 * The end of the block at pos: at most BLOCK bytes, and no further than
 * where either side turns from data to hole or back, so that each side
 * is either read or known to be zeros over the whole block.
 */
static uint64_t block_end(const struct state *s, uint64_t pos)
{
	uint64_t next = s->size - pos > BLOCK ? pos + BLOCK : s->size;

	for (int k = IMG; k <= BAK; k++) {
		const struct side *d = &s->side[k];
		uint64_t edge;

		if (has_data(s, d, pos))
			edge = d->end > UINT64_MAX - s->ss ? UINT64_MAX :
			       (d->end + s->ss - 1) / s->ss * s->ss;
		else
			edge = d->off / s->ss * s->ss;
		if (edge < next)
			next = edge;
	}
	return next;
}

/* Read (or take as zeros) and compare one block; write what changed. */
static int compare_block(struct state *s, uint64_t pos, uint64_t next)
{
	size_t n = (size_t)(next - pos);
	const char *p[2] = { s->zeros, s->zeros };

	for (int k = IMG; k <= BAK; k++) {
		int ret;

		if (!has_data(s, &s->side[k], pos))
			continue;
		ret = read_full(&s->side[k], pos, n, s->err);
		if (ret < 0)
			return ret;
		p[k] = s->side[k].buf;
		s->st->bytes_read += n;
	}
	if (memcmp(p[IMG], p[BAK], n) == 0)
		return 0;
	return write_changed(s, p[IMG], p[BAK], pos, n);
}

static int walk(struct state *s)
{
	uint64_t pos = 0;
	int ret;

	while (pos < s->size) {
		side_seek(&s->side[IMG], pos);
		side_seek(&s->side[BAK], pos);
		if (!has_data(s, &s->side[IMG], pos) &&
		    !has_data(s, &s->side[BAK], pos)) {
			/* A hole in both: equal, never read. */
			uint64_t a = s->side[IMG].off / s->ss * s->ss;
			uint64_t b = s->side[BAK].off / s->ss * s->ss;

			pos = a < b ? a : b;
			if (pos > s->size)
				pos = s->size;
		} else {
			uint64_t next = block_end(s, pos);

			ret = compare_block(s, pos, next);
			if (ret < 0)
				return ret;
			pos = next;
		}
		s->st->done = pos;
		if (s->job->progress)
			s->job->progress(s->st, s->size);
	}
	return 0;
}

static void side_init(struct side *d, const char *name, int fd,
		      uint64_t size)
{
	d->name = name;
	d->fd = fd;
	d->off = d->end = 0;
	d->buf = malloc(BLOCK);
	extent_iter_init(&d->it, fd, 0, size);
	/* Read once, front to back: ask for more read-ahead. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
}

/*
 * The unnamed COW: header and apparent size, then opened through the
 * library (by /proc/self/fd, or by its temporary name in the fallback),
 * which writes data and bits in the kernel's order.
 */
static int create_cow(struct state *s, struct afile *af)
{
	const struct diff_job *job = s->job;
	struct ubdk_err lerr = { 0 };
	char dir[PATH_MAX], path[64];
	int dirfd, ret;

	afile_dir_of(job->cow, dir, sizeof(dir));
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return cli_fail_sys(s->err, errno, job->cow, "cannot open its directory");
	ret = afile_open(af, dirfd, job->cow, 0644, true);
	close(dirfd);
	if (ret < 0)
		return cli_fail_sys(s->err, -ret, job->cow, "cannot create");
	/* Held until the new COW is in place: no guest takes the old one. */
	if (job->force) {
		long holder;

		ret = afile_lock_target(af, job->cow, &holder);
		if (ret == -EAGAIN)
			return hostlock_fail(s->err, job->cow, holder, "not replaced");
		if (ret < 0)
			return cli_fail_sys(s->err, -ret, job->cow,
					    "cannot lock it to replace it");
	}
	ret = ubdk_create_fd(af->fd, job->cow, job->hdr, 0, &lerr);
	if (ret == 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", af->fd);
		snprintf(s->cow_path, sizeof(s->cow_path), "%s",
			 af->tmp ? af->tmp : path);
		ret = ubdk_cow_open(s->cow_path, NULL,
				    UBDK_OPEN_RDWR | UBDK_OPEN_NO_BACKING |
				    UBDK_OPEN_NO_CHECK, &s->cow, &lerr);
	}
	if (ret < 0)
		return cow_fail(s, &lerr, ret, "writing");
	return 0;
}

/*
 * Read-lock both inputs as the kernel locks a backing file (a guest that
 * writes one holds a write lock: refused), and note what a write changes.
 */
static int lock_inputs(struct state *s)
{
	for (int k = IMG; k <= BAK; k++) {
		struct side *d = &s->side[k];
		long holder;
		int ret = hostlock_take(d->fd, false, &holder);

		if (ret == -EAGAIN)
			return hostlock_fail(s->err, d->name, holder, "it could "
					     "change during the diff: not compared");
		if (ret < 0)
			return cli_fail_sys(s->err, -ret, d->name, "locking");
		if (fstat(d->fd, &d->before) < 0)
			return cli_fail_sys(s->err, errno, d->name, "stat");
	}
	/* Written to since the header took its size and mtime: stale. */
	if ((uint32_t)s->side[BAK].before.st_mtim.tv_sec != s->job->hdr->mtime ||
	    (S_ISREG(s->side[BAK].before.st_mode) &&
	     (uint64_t)s->side[BAK].before.st_size != s->job->hdr->size))
		return changed(s, &s->side[BAK]);
	return 0;
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/*
 * The inputs are what they were before the walk: a write by a process
 * that takes no lock changes the size or the mtime (which it can set
 * back) and the ctime (which it cannot); a file renamed over a name
 * changes what the name is.
 */
static int inputs_unchanged(struct state *s)
{
	for (int k = IMG; k <= BAK; k++) {
		struct side *d = &s->side[k];
		struct stat now, named;

		if (fstat(d->fd, &now) < 0)
			return cli_fail_sys(s->err, errno, d->name, "stat");
		if (!same_stat(&d->before, &now) ||
		    stat(d->name, &named) < 0 || !same_stat(&d->before, &named))
			return changed(s, d);
	}
	return 0;
}

/* Bits to the file and everything durable, then the name. */
static int finish_cow(struct state *s, struct afile *af)
{
	const struct diff_job *job = s->job;
	struct ubdk_err lerr = { 0 };
	char dir[PATH_MAX];
	int ret = ubdk_cow_flush(s->cow, &lerr), dirfd;

	if (ret == 0)
		ret = ubdk_cow_close(s->cow);
	else
		ubdk_cow_close(s->cow);
	s->cow = NULL;
	if (ret < 0)
		return cow_fail(s, &lerr, ret, "writing");
	/* Last, so that a change during the sync is seen too. */
	ret = inputs_unchanged(s);
	if (ret < 0)
		return ret;
	ret = afile_publish(af, job->cow, job->force);
	if (ret == -EEXIST) {
		cli_fail_sys(s->err, EEXIST, job->cow, "cannot create");
		snprintf(s->err->msg, sizeof(s->err->msg),
			 "%s: already exists (use -f to replace it)", job->cow);
		return ret;
	}
	if (ret < 0)
		return cli_fail_sys(s->err, -ret, job->cow, "cannot create");
	/* The new name itself must survive a crash too. */
	afile_dir_of(job->cow, dir, sizeof(dir));
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd >= 0) {
		if (fsync(dirfd) < 0 && errno != EINVAL)
			ret = cli_fail_sys(s->err, errno, job->cow,
				   "syncing its directory");
		close(dirfd);
	}
	return ret;
}

int diff_make(const struct diff_job *job, struct diff_stats *st,
	      struct ubdk_err *err)
{
	struct state s = { .job = job, .st = st, .err = err,
			   .ss = job->hdr->sectorsize, .size = job->hdr->size,
			   .runs_left = job->signal_after,
			   .hook_signal = job->signal };
	struct afile af = { .fd = -1 };
	int ret;

	*st = (struct diff_stats){
		.sectors_compared = (s.size + s.ss - 1) / s.ss };
	side_init(&s.side[IMG], job->image, job->image_fd, s.size);
	side_init(&s.side[BAK], job->backing, job->backing_fd, s.size);
	s.zeros = calloc(1, BLOCK);
	if (!s.zeros || !s.side[IMG].buf || !s.side[BAK].buf)
		ret = cli_fail_sys(err, ENOMEM, job->cow, "out of memory");
	else
		ret = lock_inputs(&s);
	if (ret == 0)
		ret = create_cow(&s, &af);
	if (ret == 0)
		ret = walk(&s);
	if (ret == 0)
		ret = finish_cow(&s, &af);
	if (s.cow)
		ubdk_cow_close(s.cow);
	afile_discard(&af);
	free(s.zeros);
	free(s.side[IMG].buf);
	free(s.side[BAK].buf);
	return ret;
}
