/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "snap.h"
#include "quote.h"

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

uint64_t snap_allocated(int fd, uint64_t size)
{
	off_t pos = 0, data, hole;
	uint64_t n = 0;

	while ((uint64_t)pos < size) {
		data = lseek(fd, pos, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? n : size;
		if ((uint64_t)data >= size)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = (off_t)size;
		n += (uint64_t)(hole - data);
		pos = hole;
	}
	return n;
}

/* Copy [off, off + len) of data, in the kernel if it can. */
static int copy_data(struct snap_file *f, uint64_t off, uint64_t len, struct snap_ctx *c)
{
	static bool no_cfr;
	static char *buf;
	int ret;

	while (len > 0) {
		size_t n = len > CHUNK ? CHUNK : (size_t)len;
		ssize_t r = -1;

		if (!no_cfr) {
			loff_t so = (loff_t)off, dof = (loff_t)off;

			r = copy_file_range(f->src, &so, f->dst, &dof, n, 0);
			if (r < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
				      errno == EOPNOTSUPP)) {
				no_cfr = true;
				r = -1;
			} else if (r < 0) {
				return fail(c, errno, f->dst_name, "writing");
			} else if (r == 0) {
				r = -1;         /* source shorter: read it */
			}
		}
		if (r < 0) {
			ssize_t got, put;

			if (!buf && !(buf = malloc(CHUNK)))
				return fail(c, ENOMEM, f->dst_name, "copying");
			got = pread(f->src, buf, n, (off_t)off);
			if (got < 0)
				return fail(c, errno, f->src_name, "reading");
			memset(buf + got, 0, n - (size_t)got);
			put = pwrite(f->dst, buf, n, (off_t)off);
			if (put < 0)
				return fail(c, errno, f->dst_name, "writing");
			if ((size_t)put != n)
				return fail(c, ENOSPC, f->dst_name, "writing");
			r = put;
		}
		if (c->writeback)
			sync_file_range(f->dst, (off64_t)off, r, SYNC_FILE_RANGE_WRITE);
		off += (uint64_t)r;
		len -= (uint64_t)r;
		c->written += (uint64_t)r;
		ret = check(c);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int punch(struct snap_file *f, uint64_t off, uint64_t len, struct snap_ctx *c)
{
	off_t d = lseek(f->dst, (off_t)off, SEEK_DATA);

	/* Nothing there already: leave it alone. */
	if ((d < 0 && errno == ENXIO) || (d >= 0 && (uint64_t)d >= off + len))
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

/*
 * Copy [off, off + len) as it is in the source: data as data, holes as
 * holes (punched in dst when `holes`, which an empty dst does not need).
 */
static int copy_region(struct snap_file *f, uint64_t off, uint64_t len, bool holes,
		       struct snap_ctx *c)
{
	uint64_t end = off + len;
	int ret = 0;

	if (end > f->size)
		end = f->size;
	while (off < end && ret == 0) {
		off_t d = lseek(f->src, (off_t)off, SEEK_DATA), h;

		if (d < 0 && errno != ENXIO) {
			/* No SEEK_DATA: everything is data. */
			return copy_data(f, off, end - off, c);
		}
		if (d < 0 || (uint64_t)d >= end) {
			if (holes)
				ret = punch(f, off, end - off, c);
			break;
		}
		if ((uint64_t)d > off && holes) {
			ret = punch(f, off, (uint64_t)d - off, c);
			if (ret < 0)
				break;
		}
		h = lseek(f->src, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h > end)
			h = (off_t)end;
		ret = copy_data(f, (uint64_t)d, (uint64_t)(h - d), c);
		off = (uint64_t)h;
	}
	return ret;
}

int snap_copy(struct snap_file *f, struct snap_ctx *c)
{
	if (ftruncate(f->dst, (off_t)f->size) < 0)
		return fail(c, errno, f->dst_name, "setting its size");
	return copy_region(f, 0, f->size, false, c);
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
		ret = copy_region(f, b * blk, (e - b) * blk, true, c);
		b = e;
	}
	return ret;
}

/* Make [off, off + len) of dst equal to the source's data there. */
static int compare_data(struct snap_file *f, uint64_t off, uint64_t len,
			char *a, char *b, struct snap_ctx *c)
{
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
	char *a = malloc(CHUNK), *b = malloc(CHUNK);
	uint64_t off = 0;
	int ret = 0;

	if (!a || !b) {
		free(a);
		free(b);
		return fail(c, ENOMEM, f->dst_name, "comparing");
	}
	if (ftruncate(f->dst, (off_t)f->size) < 0) {
		ret = fail(c, errno, f->dst_name, "setting its size");
		goto out;
	}
	while (off < f->size && ret == 0) {
		off_t d = lseek(f->src, (off_t)off, SEEK_DATA), h;

		if (d < 0 && errno != ENXIO) {
			ret = compare_data(f, off, f->size - off, a, b, c);
			break;
		}
		if (d < 0 || (uint64_t)d >= f->size) {
			ret = punch(f, off, f->size - off, c);
			break;
		}
		if ((uint64_t)d > off)
			ret = punch(f, off, (uint64_t)d - off, c);
		h = lseek(f->src, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h > f->size)
			h = (off_t)f->size;
		if (ret == 0)
			ret = compare_data(f, (uint64_t)d, (uint64_t)(h - d), a, b, c);
		off = (uint64_t)h;
	}
out:
	free(a);
	free(b);
	return ret;
}
