/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * point.c - a chain point's files: the stream of a device (full or
 * incremental) and its chunk table, written in one pass over the data.
 */
#define _GNU_SOURCE
#include "chain/point.h"
#include "extent.h"
#include "input.h"
#include "format/xstream.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	int ret = chunk_read(fd, g, i, buf, off, len, &r->read_bytes);

	if (ret < 0) {
		char n[256];

		snprintf(r->msg, sizeof(r->msg), "%s: reading: %s",
			 quote_elide(n, sizeof(n), name), strerror(-ret));
	}
	return ret;
}

/* A full stream's chunks, as chunk_walk gives them: table entry and records. */
struct full_ctx {
	struct emit_result *r;
	struct xs_writer *w;
	bool failed;                    /* by the writer or table, not a read */
};

static int full_chunk(void *ctx, uint64_t i, uint64_t off, uint64_t len, const uint8_t *buf)
{
	struct full_ctx *fc = ctx;
	uint8_t dig[16];
	int ret;

	(void)i;
	if (tool_interrupted)
		return -EINTR;
	if (unit_is_zero(buf, (size_t)len))
		return 0;
	chunk_digest(buf, (size_t)len, dig);
	ret = table_add(&fc->r->tab, off, dig);
	if (ret == 0)
		ret = xs_data(fc->w, off, buf, (size_t)len);
	fc->r->chunks_stored++;
	fc->failed = ret < 0;
	return ret;
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
		struct full_ctx fc = { .r = r, .w = w };

		ret = chunk_walk(fd, g, full_chunk, &fc, &r->read_bytes);
		if (ret < 0 && ret != -EINTR && !fc.failed) {
			char n[256];

			snprintf(r->msg, sizeof(r->msg), "%s: reading: %s",
				 quote_elide(n, sizeof(n), fd_name), strerror(-ret));
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
			if (tool_interrupted)
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

/* --- chunk tables of data given in order ------------------------------------ */

int tb_init(struct table_builder *b, const struct chunk_grid *g, const uint8_t point[16],
	    struct chunk_table *t)
{
	b->g = g;
	b->t = t;
	b->cur = UINT64_MAX;
	table_init(t, g, point);
	b->buf = malloc(g->chunk_size);
	return b->buf ? 0 : -ENOMEM;
}

static int tb_flush(struct table_builder *b)
{
	uint64_t off, len;
	uint8_t dig[16];

	if (b->cur == UINT64_MAX)
		return 0;
	grid_chunk(b->g, b->cur, &off, &len);
	b->cur = UINT64_MAX;
	/* An all-zero chunk has no entry, as in a table of the file itself. */
	if (unit_is_zero(b->buf, (size_t)len))
		return 0;
	chunk_digest(b->buf, (size_t)len, dig);
	return table_add(b->t, off, dig);
}

int tb_data(struct table_builder *b, uint64_t off, const uint8_t *data, uint64_t len)
{
	while (len > 0 && off < b->g->file_size) {
		uint64_t i = grid_index(b->g, off), coff, clen, n;
		int ret;

		grid_chunk(b->g, i, &coff, &clen);
		if (i != b->cur) {
			ret = tb_flush(b);
			if (ret < 0)
				return ret;
			/* A chunk of zeros given as NULL needs no buffer work at all. */
			if (!data && off == coff && len >= clen) {
				off += clen;
				len -= clen;
				continue;
			}
			b->cur = i;
			memset(b->buf, 0, (size_t)clen);
		}
		n = coff + clen - off < len ? coff + clen - off : len;
		if (data) {
			memcpy(b->buf + (off - coff), data, (size_t)n);
			data += n;
		} else {
			memset(b->buf + (off - coff), 0, (size_t)n);
		}
		off += n;
		len -= n;
	}
	return 0;
}

int tb_finish(struct table_builder *b)
{
	int ret = tb_flush(b);

	free(b->buf);
	b->buf = NULL;
	return ret;
}

bool point_table(const char *dir, const struct manifest *m, const struct manifest_device *d,
		 struct chunk_table *t, char *msg, size_t msglen)
{
	char path[PATH_MAX + 80], why[256], hex[XXH_HEX], idhex[XXH_HEX];

	if (!d->chunks || strchr(d->chunks, '/') || !d->chunks_xxh128) {
		snprintf(msg, msglen, "incomplete entry in the manifest (chunks)");
		return false;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, d->chunks);
	if (!table_read(path, t, why, sizeof(why))) {
		snprintf(msg, msglen, "%s: %s", d->chunks, why);
		return false;
	}
	digest_hex(t->end, hex);
	digest_hex(t->point, idhex);
	if (strcmp(hex, d->chunks_xxh128) || !m->point || strcmp(idhex, m->point) ||
	    t->g.file_size != d->cow_bytes) {
		snprintf(msg, msglen, "%s: not the table its manifest names (%s)", d->chunks,
			 strcmp(hex, d->chunks_xxh128) ? "digest differs from chunks_xxh128" :
			 t->g.file_size != d->cow_bytes ? "of a file of another size" :
			 "of another point");
		table_free(t);
		return false;
	}
	return true;
}
