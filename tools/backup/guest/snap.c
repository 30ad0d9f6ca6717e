/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "guest/snap.h"
#include "quote.h"
#include "extent.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define CHUNK (4U << 20)
#define PIECE (64U << 10)

static int fail(struct snap_ctx *c, int err, const char *name, const char *what)
{
	char shortname[256];

	/* A long path must not push the reason out of c->msg. */
	snprintf(c->msg, sizeof(c->msg), "%s: %s: %s",
		 quote_elide(shortname, sizeof(shortname), name), what, strerror(err));
	return -err;
}

static int check(struct snap_ctx *c)
{
	if (c->intr && *c->intr)
		return -EINTR;
	if (c->tick)
		c->tick(c->arg);
	return c->intr && *c->intr ? -EINTR : 0;
}

bool snap_no_reflink(int err)
{
	return err == -EOPNOTSUPP || err == -EXDEV || err == -EINVAL ||
	       err == -ENOTTY || err == -ENOSYS || err == -EPERM;
}

int snap_reflink(struct snap_file *f, struct snap_ctx *c)
{
	if (ftruncate(f->dst, 0) < 0)
		return fail(c, errno, f->dst_name, "truncating");
	if (ioctl(f->dst, FICLONE, f->src) < 0) {
		int e = errno;

		if (snap_no_reflink(-e))
			return -e;
		return fail(c, e, f->dst_name, "cloning");
	}
	c->written += f->size;
	return 0;
}

/*
 * One verdict on copy_file_range and one buffer for the whole run: every
 * device is copied to the same destination.
 */
static struct copy_ctx copier;

static int copied(void *arg, uint64_t n)
{
	struct snap_ctx *c = arg;

	c->written += n;
	return check(c);
}

/* Copy [off, off + len) of data, in the kernel if it can. */
static int copy_data(struct snap_file *f, uint64_t off, uint64_t len, struct snap_ctx *c,
		     void *arg)
{
	enum copy_side side;
	int ret;

	(void)arg;
	copier.writeback = c->writeback;
	copier.tick = copied;
	copier.arg = c;
	ret = copy_range(&copier, f->src, off, f->dst, off, len, &side);
	/* Stopped by check(): an interruption, not a failure to report. */
	if (ret == 0 || (ret == -EINTR && c->intr && *c->intr))
		return ret;
	if (ret == -ENOMEM)
		return fail(c, ENOMEM, f->dst_name, "copying");
	if (side == COPY_SRC)
		return fail(c, -ret, f->src_name, "reading");
	return fail(c, -ret, f->dst_name, "writing");
}

static int punch(struct snap_file *f, uint64_t off, uint64_t len, struct snap_ctx *c)
{
	struct extent_iter it;
	uint64_t data, data_len;

	/* Nothing there already: leave it alone. */
	extent_iter_init(&it, f->dst, off, off + len);
	if (extent_next(&it, &data, &data_len) == 0)
		return 0;
	if (fallocate(f->dst, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return fail(c, errno, f->dst_name, "punching a hole");
	/* No hole punching: write the zeros. */
	{
		static char *z;
		uint64_t done = 0;

		if (!z && !(z = calloc(1, PIECE)))
			return fail(c, ENOMEM, f->dst_name, "copying");
		while (done < len) {
			size_t n = len - done > PIECE ? PIECE : (size_t)(len - done);

			if (pwrite(f->dst, z, n, (off_t)(off + done)) != (ssize_t)n)
				return fail(c, errno ? errno : ENOSPC, f->dst_name, "writing");
			done += n;
			c->written += n;
		}
	}
	return 0;
}

typedef int data_fn(struct snap_file *f, uint64_t off, uint64_t len, struct snap_ctx *c,
		    void *arg);

/*
 * Walk [off, end) as it is in the source: each data extent to fn, the
 * holes between punched in dst when `holes` (an empty dst needs none).
 */
static int walk(struct snap_file *f, uint64_t off, uint64_t end, bool holes, data_fn *fn,
		void *arg, struct snap_ctx *c)
{
	struct extent_iter it;
	uint64_t d, n;
	int ret = 0;

	if (end > f->size)
		end = f->size;
	extent_iter_init(&it, f->src, off, end);
	/* A walk that fails gives the rest as data: copying is the safe side. */
	while (ret == 0 && extent_next(&it, &d, &n) != 0) {
		if (holes && d > off)
			ret = punch(f, off, d - off, c);
		if (ret == 0)
			ret = fn(f, d, n, c, arg);
		off = d + n;
	}
	if (ret == 0 && holes && off < end)
		ret = punch(f, off, end - off, c);
	return ret;
}

int snap_copy(struct snap_file *f, struct snap_ctx *c)
{
	if (ftruncate(f->dst, (off_t)f->size) < 0)
		return fail(c, errno, f->dst_name, "setting its size");
	return walk(f, 0, f->size, false, copy_data, NULL, c);
}

int snap_ranges(struct snap_file *f, const uint64_t *bits, uint64_t nblocks,
		uint32_t blk, struct snap_ctx *c)
{
	uint64_t b = 0;
	int ret = 0;

	while (b < nblocks && ret == 0) {
		uint64_t e;

		/* Skip clear words fast. */
		if ((b & 63) == 0 && bits[b / 64] == 0) {
			b += 64;
			continue;
		}
		if (!(bits[b / 64] >> (b & 63) & 1)) {
			b++;
			continue;
		}
		e = b;
		while (e < nblocks && (bits[e / 64] >> (e & 63) & 1))
			e++;
		ret = walk(f, b * blk, e * blk, true, copy_data, NULL, c);
		b = e;
	}
	return ret;
}

/* Make [off, off + len) of dst equal to the source's data there. */
static int compare_data(struct snap_file *f, uint64_t off, uint64_t len, struct snap_ctx *c,
			void *arg)
{
	char *a = arg, *b = a + CHUNK;
	int ret;

	while (len > 0) {
		size_t n = len > CHUNK ? CHUNK : (size_t)len;
		ssize_t ga = pread(f->src, a, n, (off_t)off), gb;

		if (ga < 0)
			return fail(c, errno, f->src_name, "reading");
		memset(a + ga, 0, n - (size_t)ga);
		gb = pread(f->dst, b, n, (off_t)off);
		if (gb < 0)
			return fail(c, errno, f->dst_name, "reading back");
		memset(b + gb, 0, n - (size_t)gb);
		c->read += n;
		for (size_t p = 0; p < n; p += PIECE) {
			size_t m = n - p < PIECE ? n - p : PIECE;

			if (memcmp(a + p, b + p, m) == 0)
				continue;
			if (pwrite(f->dst, a + p, m, (off_t)(off + p)) != (ssize_t)m)
				return fail(c, errno ? errno : ENOSPC, f->dst_name, "writing");
			c->written += m;
		}
		off += n;
		len -= n;
		ret = check(c);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int snap_compare(struct snap_file *f, struct snap_ctx *c)
{
	/* The source's piece, then the copy's. */
	char *ab = malloc(2 * (size_t)CHUNK);
	int ret;

	if (!ab)
		return fail(c, ENOMEM, f->dst_name, "comparing");
	if (ftruncate(f->dst, (off_t)f->size) < 0)
		ret = fail(c, errno, f->dst_name, "setting its size");
	else
		ret = walk(f, 0, f->size, true, compare_data, ab, c);
	free(ab);
	return ret;
}
