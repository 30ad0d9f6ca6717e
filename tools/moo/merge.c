/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "merge.h"
#include "extent.h"
#include "ubdk_static.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What a verification compares at a time. */
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

/* Progress for copy_range: which counter a copy feeds besides done. */
struct tally {
	struct merge_progress *p;
	uint64_t *counter;
};

static int tally(void *arg, uint64_t n)
{
	struct tally *t = arg;

	*t->counter += n;
	advance(t->p, n);
	return 0;
}

/* Pieces of a merge are durable at the final fsync: start their writeback
 * now so that it only waits for the tail. */
static void copy_init(struct copy_ctx *c, struct tally *t,
		      struct merge_progress *p, uint64_t *counter)
{
	*t = (struct tally){ .p = p, .counter = counter };
	*c = (struct copy_ctx){ .writeback = true, .tick = tally, .arg = t };
}

static int copy(struct copy_ctx *c, int src, uint64_t soff, int dst,
		uint64_t doff, uint64_t len, const char *src_name,
		const char *dst_name, struct ubdk_err *err)
{
	enum copy_side side;
	int ret = copy_range(c, src, soff, dst, doff, len, &side);

	if (ret == 0)
		return 0;
	if (ret == -ENOMEM)
		return fail(err, ENOMEM, dst_name, "copying");
	if (side == COPY_SRC)
		return fail(err, -ret, src_name, "reading");
	return fail(err, -ret, dst_name, "writing");
}

/*
 * Copy [start, end) of the backing into dst, except the sectors the COW
 * holds: the overlay writes those, and writing them twice costs I/O.
 */
static int copy_uncovered(struct ubdk_cow *cow, int src, int dst,
			  uint64_t start, uint64_t end, struct copy_ctx *c,
			  const char *src_name, const char *dst_name,
			  struct ubdk_err *err)
{
	uint64_t ss = ubdk_cow_header(cow)->sectorsize;
	uint64_t pos = start / ss, last = (end + ss - 1) / ss;
	struct ubdk_run run;
	int ret = 0;

	while (ret == 0 &&
	       (ret = ubdk_cow_next_run(cow, &pos, last, &run, err)) > 0) {
		ret = 0;
		uint64_t a = run.start * ss, b = (run.start + run.count) * ss;

		if (run.src == UBDK_RUN_COW)
			continue;
		if (a < start)
			a = start;
		if (b > end)
			b = end;
		if (a < b)
			ret = copy(c, src, a, dst, a, b - a, src_name, dst_name,
				   err);
	}
	return ret;
}

int merge_copy_extents(struct ubdk_cow *cow, int src, int dst, uint64_t size,
		       struct merge_progress *p, const char *src_name,
		       const char *dst_name, struct ubdk_err *err)
{
	struct copy_ctx c;
	struct tally t;
	struct extent_iter it;
	uint64_t off, len;
	int ret = 0;

	/* The apparent size first: what is not copied stays a hole. */
	if (ftruncate(dst, (off_t)size) < 0)
		return fail(err, errno, dst_name, "setting its size");
	copy_init(&c, &t, p, &p->from_backing);
	extent_iter_init(&it, src, 0, size);
	/* An extent walk that fails gives the rest as data: copy it all. */
	while (ret == 0 && extent_next(&it, &off, &len) != 0)
		ret = copy_uncovered(cow, src, dst, off, off + len, &c,
				     src_name, dst_name, err);
	copy_ctx_free(&c);
	return ret;
}

/* The next run the COW holds, in bytes of the device: 1, 0 at the end. */
static int next_cow_run(struct ubdk_cow *cow, uint64_t *pos, uint64_t *off,
			uint64_t *len, struct ubdk_err *err)
{
	const struct ubdk_header *h = ubdk_cow_header(cow);
	struct ubdk_run run;
	int ret;

	while ((ret = ubdk_cow_next_run(cow, pos, UINT64_MAX, &run, err)) > 0) {
		if (run.src != UBDK_RUN_COW)
			continue;
		*off = run.start * h->sectorsize;
		*len = run.count * h->sectorsize;
		/* The last sector may be partial. */
		if (*off + *len > h->size)
			*len = h->size - *off;
		return 1;
	}
	return ret;
}

int merge_overlay(struct ubdk_cow *cow, int dst, const char *dst_name,
		  struct merge_progress *p, struct ubdk_err *err)
{
	uint64_t pos = 0, off, len, data, bits, bits_len;
	struct copy_ctx c;
	struct tally t;
	int ret;

	copy_init(&c, &t, p, &p->from_cow);
	while ((ret = next_cow_run(cow, &pos, &off, &len, err)) > 0) {
		ubdk_geometry_locate(ubdk_cow_header(cow), ubdk_cow_geometry(cow), off,
				     len, &data, &bits, &bits_len);
		ret = copy(&c, ubdk_cow_fd(cow), data, dst, off, len,
			   ubdk_cow_path(cow), dst_name, err);
		if (ret < 0)
			break;
	}
	copy_ctx_free(&c);
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
	uint64_t pos = 0, off, len;
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
	while ((ret = next_cow_run(cow, &pos, &off, &len, err)) > 0) {
		ret = compare_range(cow, dst, dst_name, off, len, a, b, err);
		if (ret < 0)
			break;
	}
out:
	free(a);
	free(b);
	return ret;
}
