/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * point.c - a chain point's files: the stream of a device (full or
 * incremental) and its chunk table, written in one pass over the data.
 */
#define _GNU_SOURCE
#include "point.h"
#include "extent.h"
#include "xstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int emit_fail(struct emit_result *r, int err, const char *what)
{
	if (!r->msg[0])
		snprintf(r->msg, sizeof(r->msg), "%s: %s", what, strerror(-err));
	return err;
}

/* Read chunk i of fd into buf; false after setting r->msg. */
static int read_chunk(int fd, const char *name, const struct chunk_grid *g, uint64_t i,
		      uint8_t *buf, struct emit_result *r, uint64_t *off, uint64_t *len)
{
	ssize_t got;

	grid_chunk(g, i, off, len);
	got = pread(fd, buf, (size_t)*len, (off_t)*off);
	if (got < 0) {
		char n[256];

		snprintf(r->msg, sizeof(r->msg), "%s: reading: %s",
			 quote_elide(n, sizeof(n), name), strerror(errno));
		return -errno;
	}
	memset(buf + got, 0, (size_t)*len - (size_t)got);
	r->read_bytes += *len;
	return 0;
}

int point_emit(int fd, const char *fd_name, const struct chunk_grid *g,
	       const uint8_t point[16], const struct chunk_table *parent,
	       const struct scan *s, unit_fn sink, void *sink_ctx, struct emit_result *r)
{
	struct xs_header h = { .flags = s ? XS_FLAG_INCREMENTAL : 0,
			       .chunk_size = g->chunk_size, .file_size = g->file_size,
			       .data_offset = g->data_offset };
	struct xs_writer *w = NULL;
	uint8_t *buf = malloc(g->chunk_size), dig[16];
	uint64_t pi = 0, off, len;
	int ret;

	memset(r, 0, sizeof(*r));
	memcpy(h.point, point, 16);
	/* What the stream applies over: a reader of a chain on a pipe checks it. */
	if (s)
		memcpy(h.parent, parent->point, 16);
	table_init(&r->tab, g, point);
	if (!buf)
		return emit_fail(r, -ENOMEM, "writing the stream");
	ret = xs_writer_open(&w, &h, sink, sink_ctx);
	if (ret < 0) {
		free(buf);
		return emit_fail(r, ret, "writing the stream");
	}
	if (!s) {
		/* Full: every chunk with data, in the order of the file. */
		struct extent_iter it;
		uint64_t d, n, next = 0;

		extent_iter_init(&it, fd, 0, g->file_size);
		while (ret == 0 && extent_next(&it, &d, &n) != 0) {
			for (uint64_t i = grid_index(g, d > next ? d : next);
			     ret == 0 && i < g->count; i++) {
				grid_chunk(g, i, &off, &len);
				if (off >= d + n)
					break;
				ret = read_chunk(fd, fd_name, g, i, buf, r, &off, &len);
				next = off + len;
				if (ret < 0 || unit_is_zero(buf, (size_t)len))
					continue;
				chunk_digest(buf, (size_t)len, dig);
				ret = table_add(&r->tab, off, dig);
				if (ret == 0)
					ret = xs_data(w, off, buf, (size_t)len);
				r->chunks_stored++;
			}
			if (interrupted)
				ret = -EINTR;
		}
	} else {
		/*
		 * Incremental: the changed chunks, whole (zeros in them become
		 * ZERO records); the table is the parent's, merged in order
		 * with the new digests.
		 */
		for (uint64_t i = 0; ret == 0 && i < g->count; i++) {
			const struct chunk_entry *pe;

			if ((i & 63) == 0 && s->changed[i / 64] == 0) {
				i += 63;
				continue;
			}
			if (!(s->changed[i / 64] >> (i % 64) & 1))
				continue;
			grid_chunk(g, i, &off, &len);
			while (ret == 0 && pi < parent->n && parent->e[pi].off < off)
				ret = table_add(&r->tab, parent->e[pi].off, parent->e[pi].digest), pi++;
			if (pi < parent->n && parent->e[pi].off == off)
				pi++;
			r->chunks_stored++;
			if (s->zero[i / 64] >> (i % 64) & 1) {
				if (ret == 0)
					ret = xs_zero(w, off, len);
				continue;
			}
			if (ret == 0)
				ret = read_chunk(fd, fd_name, g, i, buf, r, &off, &len);
			if (ret < 0)
				break;
			/* The copy may have turned zero since (a later scan): still a change. */
			pe = table_find(parent, off);
			if (unit_is_zero(buf, (size_t)len)) {
				ret = pe ? xs_zero(w, off, len) : 0;
				continue;
			}
			chunk_digest(buf, (size_t)len, dig);
			ret = table_add(&r->tab, off, dig);
			if (ret == 0)
				ret = xs_data(w, off, buf, (size_t)len);
			if (interrupted)
				ret = -EINTR;
		}
		while (ret == 0 && pi < parent->n)
			ret = table_add(&r->tab, parent->e[pi].off, parent->e[pi].digest), pi++;
	}
	if (ret == 0)
		ret = xs_writer_finish(w, &r->stream_bytes, r->digest);
	xs_writer_free(w);
	free(buf);
	if (ret < 0) {
		table_free(&r->tab);
		return ret == -EINTR ? ret : emit_fail(r, ret, "writing the stream");
	}
	return 0;
}
