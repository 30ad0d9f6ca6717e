/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "merge.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Large enough for full disk speed, small enough for frequent progress. */
#define CHUNK (4U << 20)

static int fail(struct ubdk_err *err, int errnum, const char *name,
		const char *what)
{
	err->code = UBDK_E_SYS;
	err->errnum = errnum;
	snprintf(err->msg, sizeof(err->msg), "%s: %s: %s", name, what,
		 strerror(errnum));
	return -errnum;
}

static void advance(struct merge_progress *p, uint64_t n)
{
	p->done += n;
	if (p->report)
		p->report(p);
	if (p->crash_after && --p->crash_after == 0)
		raise(SIGKILL);
}

int merge_data_bytes(int fd, uint64_t size, uint64_t *bytes)
{
	off_t pos = 0, data, hole;

	*bytes = 0;
	while ((uint64_t)pos < size) {
		data = lseek(fd, pos, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break;
			/* No SEEK_DATA: count everything as data. */
			*bytes = size;
			return 0;
		}
		if ((uint64_t)data >= size)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = (off_t)size;
		*bytes += (uint64_t)(hole - data);
		pos = hole;
	}
	return 0;
}

uint64_t merge_cow_bytes(struct ubdk_cow *cow)
{
	const struct ubdk_geometry *g = ubdk_cow_geometry(cow);
	uint64_t ss = ubdk_cow_header(cow)->sectorsize;
	uint64_t size = ubdk_cow_header(cow)->size, n;

	/* Only for progress: a bitmap that cannot be read counts nothing
	 * here and fails the copy itself. */
	if (ubdk_cow_count(cow, 0, g->sectors, &n, NULL) < 0)
		return 0;
	n *= ss;
	/* The last sector may be partial. */
	if (g->sectors && ubdk_cow_test(cow, g->sectors - 1, NULL) == 1)
		n -= g->sectors * ss - size;
	return n;
}

/*
 * Copy len bytes from src at soff to dst at doff: in the kernel where it
 * can (copy_file_range, which also reflinks on filesystems that share
 * extents), with read and write where it cannot.
 */
static int copy_range(int src, uint64_t soff, int dst, uint64_t doff,
		      uint64_t len, char **buf, struct merge_progress *p,
		      uint64_t *counter, const char *src_name,
		      const char *dst_name, struct ubdk_err *err)
{
	static bool no_cfr;

	while (len > 0) {
		size_t n = len > CHUNK ? CHUNK : (size_t)len;
		ssize_t r = -1;

		if (!no_cfr) {
			loff_t so = (loff_t)soff, dof = (loff_t)doff;

			r = copy_file_range(src, &so, dst, &dof, n, 0);
			if (r < 0 && (errno == EXDEV || errno == EINVAL ||
				      errno == ENOSYS || errno == EOPNOTSUPP)) {
				no_cfr = true;
				r = -1;
			} else if (r < 0) {
				return fail(err, errno, dst_name, "writing");
			} else if (r == 0) {
				/* Source shorter than expected: read it. */
				no_cfr = true;
				r = -1;
			}
		}
		if (r < 0) {
			ssize_t got, put;

			if (!*buf && !(*buf = malloc(CHUNK)))
				return fail(err, ENOMEM, dst_name, "copying");
			got = pread(src, *buf, n, (off_t)soff);
			if (got < 0)
				return fail(err, errno, src_name, "reading");
			/* Past the end of a short file reads as zeros. */
			memset(*buf + got, 0, n - (size_t)got);
			put = pwrite(dst, *buf, n, (off_t)doff);
			if (put < 0)
				return fail(err, errno, dst_name, "writing");
			if ((size_t)put != n)
				return fail(err, ENOSPC, dst_name, "writing");
			r = put;
		}
		/*
		 * Start writeback now, without waiting: the disk works while
		 * we copy, and the final fsync only waits for the tail.
		 */
		sync_file_range(dst, (off64_t)doff, r, SYNC_FILE_RANGE_WRITE);
		soff += (uint64_t)r;
		doff += (uint64_t)r;
		len -= (uint64_t)r;
		*counter += (uint64_t)r;
		advance(p, (uint64_t)r);
	}
	return 0;
}

/*
 * Copy [start, end) of the backing into dst, except the sectors the COW
 * holds: the overlay writes those, and writing them twice costs I/O.
 */
static int copy_uncovered(struct ubdk_cow *cow, int src, int dst,
			  uint64_t start, uint64_t end, char **buf,
			  struct merge_progress *p, const char *src_name,
			  const char *dst_name, struct ubdk_err *err)
{
	uint64_t ss = ubdk_cow_header(cow)->sectorsize;
	uint64_t pos = start / ss, last = (end + ss - 1) / ss;
	struct ubdk_run run;
	int ret = 0;

	while (ret == 0 &&
	       (ret = ubdk_cow_next_run(cow, &pos, last, &run, err)) > 0) {
		ret = 0;
		uint64_t a = run.start * ss, b = (run.start + run.count) * ss;

		if (run.in_cow)
			continue;
		if (a < start)
			a = start;
		if (b > end)
			b = end;
		if (a < b)
			ret = copy_range(src, a, dst, a, b - a, buf, p,
					 &p->from_backing, src_name, dst_name,
					 err);
	}
	return ret;
}

int merge_copy_extents(struct ubdk_cow *cow, int src, int dst, uint64_t size,
		       struct merge_progress *p, const char *src_name,
		       const char *dst_name, struct ubdk_err *err)
{
	char *buf = NULL;
	off_t pos = 0, data, hole;
	int ret = 0;

	/* The apparent size first: what is not copied stays a hole. */
	if (ftruncate(dst, (off_t)size) < 0)
		return fail(err, errno, dst_name, "setting its size");
	while ((uint64_t)pos < size && ret == 0) {
		data = lseek(src, pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0) {
			/* No SEEK_DATA here: one extent of everything. */
			data = pos;
			hole = (off_t)size;
		} else {
			if ((uint64_t)data >= size)
				break;
			hole = lseek(src, data, SEEK_HOLE);
			if (hole < 0 || (uint64_t)hole > size)
				hole = (off_t)size;
		}
		ret = copy_uncovered(cow, src, dst, (uint64_t)data,
				     (uint64_t)hole, &buf, p, src_name,
				     dst_name, err);
		pos = hole;
	}
	free(buf);
	return ret;
}

int merge_overlay(struct ubdk_cow *cow, int dst, const char *dst_name,
		  struct merge_progress *p, struct ubdk_err *err)
{
	const struct ubdk_header *h = ubdk_cow_header(cow);
	const struct ubdk_geometry *g = ubdk_cow_geometry(cow);
	uint64_t pos = 0, ss = h->sectorsize;
	struct ubdk_run run;
	char *buf = NULL;
	int ret = 0;

	while (ret == 0 &&
	       (ret = ubdk_cow_next_run(cow, &pos, g->sectors, &run, err)) > 0) {
		ret = 0;
		uint64_t off = run.start * ss, len = run.count * ss;

		if (!run.in_cow)
			continue;
		if (off + len > h->size)
			len = h->size - off;
		ret = copy_range(ubdk_cow_fd(cow), g->data_offset + off, dst,
				 off, len, &buf, p, &p->from_cow,
				 ubdk_cow_path(cow), dst_name, err);
	}
	free(buf);
	return ret;
}

static int compare_range(struct ubdk_cow *cow, int dst, const char *dst_name,
			 uint64_t off, uint64_t len, char *a, char *b,
			 struct ubdk_err *err)
{
	while (len > 0) {
		size_t n = len > CHUNK ? CHUNK : (size_t)len;
		ssize_t got;
		int ret = ubdk_cow_pread(cow, a, n, off, err);

		if (ret < 0)
			return ret;
		got = pread(dst, b, n, (off_t)off);
		if (got < 0)
			return fail(err, errno, dst_name, "reading back");
		if ((size_t)got != n || memcmp(a, b, n) != 0) {
			err->code = UBDK_E_SYS;
			err->errnum = EIO;
			snprintf(err->msg, sizeof(err->msg),
				 "%s: verification failed: bytes %llu..%llu "
				 "differ from the merged view", dst_name,
				 (unsigned long long)off,
				 (unsigned long long)(off + n - 1));
			return -EIO;
		}
		off += n;
		len -= n;
	}
	return 0;
}

int merge_verify(struct ubdk_cow *cow, int dst, const char *dst_name,
		 bool cow_only, struct ubdk_err *err)
{
	const struct ubdk_header *h = ubdk_cow_header(cow);
	uint64_t pos = 0, ss = h->sectorsize;
	struct ubdk_run run;
	char *a = malloc(CHUNK), *b = malloc(CHUNK);
	int ret = 0;

	if (!a || !b) {
		ret = fail(err, ENOMEM, dst_name, "verifying");
		goto out;
	}
	if (!cow_only) {
		ret = compare_range(cow, dst, dst_name, 0, h->size, a, b, err);
		goto out;
	}
	while (ret == 0 &&
	       (ret = ubdk_cow_next_run(cow, &pos, UINT64_MAX, &run, err)) > 0) {
		ret = 0;
		uint64_t off = run.start * ss, len = run.count * ss;

		if (!run.in_cow)
			continue;
		if (off + len > h->size)
			len = h->size - off;
		ret = compare_range(cow, dst, dst_name, off, len, a, b, err);
	}
out:
	free(a);
	free(b);
	return ret;
}
