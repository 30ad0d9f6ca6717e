/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "extent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void extent_iter_init(struct extent_iter *it, int fd, uint64_t start,
		      uint64_t end)
{
	it->fd = fd;
	it->pos = start;
	it->end = end;
}

int extent_next(struct extent_iter *it, uint64_t *off, uint64_t *len)
{
	off_t d, h;

	if (it->pos >= it->end)
		return 0;
	d = lseek(it->fd, (off_t)it->pos, SEEK_DATA);
	if (d < 0 && errno == ENXIO) {
		it->pos = it->end;
		return 0;
	}
	if (d < 0) {
		int err = errno;

		/* No hole information here: everything left is data. */
		*off = it->pos;
		*len = it->end - it->pos;
		it->pos = it->end;
		if (err != EINVAL && err != EOPNOTSUPP && err != ESPIPE)
			return -err;
		return 1;
	}
	if ((uint64_t)d >= it->end) {
		it->pos = it->end;
		return 0;
	}
	h = lseek(it->fd, d, SEEK_HOLE);
	if (h < 0 || (uint64_t)h > it->end)
		h = (off_t)it->end;
	*off = (uint64_t)d;
	*len = (uint64_t)(h - d);
	it->pos = (uint64_t)h;
	return 1;
}

uint64_t extent_data_bytes(int fd, uint64_t size)
{
	struct extent_iter it;
	uint64_t off, len, n = 0;
	int ret;

	extent_iter_init(&it, fd, 0, size);
	while ((ret = extent_next(&it, &off, &len)) > 0)
		n += len;
	/* Cannot tell: count it all, the safe side for sizes and progress. */
	return ret < 0 ? size : n;
}

/* One piece through copy_file_range: bytes copied, 0 to fall back, -errno. */
static ssize_t copy_kernel(struct copy_ctx *c, int src, uint64_t soff,
			   int dst, uint64_t doff, size_t n)
{
	loff_t so = (loff_t)soff, dof = (loff_t)doff;
	ssize_t r = copy_file_range(src, &so, dst, &dof, n, 0);

	if (r > 0)
		return r;
	if (r == 0 || errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
	    errno == EOPNOTSUPP) {
		/* r == 0: the source is shorter than asked; the fallback
		 * writes the zeros.  The others: never again. */
		if (r < 0)
			c->no_cfr = true;
		return 0;
	}
	return -errno;
}

static ssize_t copy_user(struct copy_ctx *c, int src, uint64_t soff, int dst,
			 uint64_t doff, size_t n, enum copy_side *side)
{
	ssize_t got;
	size_t put = 0;

	if (!c->buf && !(c->buf = malloc(COPY_CHUNK))) {
		*side = COPY_DST;
		return -ENOMEM;
	}
	do {
		got = pread(src, c->buf, n, (off_t)soff);
	} while (got < 0 && errno == EINTR);
	if (got < 0) {
		*side = COPY_SRC;
		return -errno;
	}
	memset(c->buf + got, 0, n - (size_t)got);
	while (put < n) {
		ssize_t w = pwrite(dst, c->buf + put, n - put,
				   (off_t)(doff + put));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			*side = COPY_DST;
			return w < 0 ? -errno : -ENOSPC;
		}
		put += (size_t)w;
	}
	return (ssize_t)n;
}

int copy_range(struct copy_ctx *c, int src, uint64_t soff, int dst,
	       uint64_t doff, uint64_t len, enum copy_side *side)
{
	while (len > 0) {
		size_t n = len > COPY_CHUNK ? COPY_CHUNK : (size_t)len;
		ssize_t r = 0;
		int ret;

		if (!c->no_cfr) {
			r = copy_kernel(c, src, soff, dst, doff, n);
			if (r < 0) {
				/* copy_file_range does not say which file. */
				*side = COPY_DST;
				return (int)r;
			}
		}
		if (r == 0) {
			r = copy_user(c, src, soff, dst, doff, n, side);
			if (r < 0)
				return (int)r;
		}
		/* Start writeback without waiting: the disk works while we
		 * copy, and a final fsync only waits for the tail. */
		if (c->writeback)
			sync_file_range(dst, (off_t)doff, r,
					SYNC_FILE_RANGE_WRITE);
		soff += (uint64_t)r;
		doff += (uint64_t)r;
		len -= (uint64_t)r;
		if (c->tick) {
			ret = c->tick(c->arg, (uint64_t)r);
			if (ret) {
				*side = COPY_DST;
				return ret;
			}
		}
	}
	return 0;
}

void copy_ctx_free(struct copy_ctx *c)
{
	free(c->buf);
	c->buf = NULL;
}
