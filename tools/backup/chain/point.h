/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * point.h - writing one device of a chain point: its extent stream (full,
 * or the changed chunks over the parent) and its chunk table.
 */
#ifndef UBDK_POINT_H
#define UBDK_POINT_H

#include <stdint.h>

#include "chain/chain.h"
#include "format/chunks.h"
#include "format/stream.h"
#include "tool.h"

struct emit_result {
	struct chunk_table tab;         /* the point's table (end digest filled by encode) */
	uint64_t stream_bytes, payload, read_bytes, chunks_stored;
	uint8_t digest[16];             /* the stream's */
	char msg[512];
};

/*
 * Write the stream of a point to sink: with s NULL a full stream of every
 * non-zero chunk of fd; else an incremental one over parent, of the chunks
 * s marked as changed, their bytes read from fd (the source scan read, or
 * the sparse copy it wrote).  r->tab is the new table (parent's with the
 * changed chunks replaced).  0 or -errno with r->msg.
 */
int point_emit(int fd, const char *fd_name, const struct chunk_grid *g,
	       const uint8_t point[16], const struct chunk_table *parent,
	       const struct scan *s, unit_fn sink, void *sink_ctx, struct emit_result *r);

/*
 * The chunk table of a file given as data at increasing offsets (zeros
 * between and after): a full stream's records, a COW file's units.  Costs
 * a chunk's buffer; chunks no data touches are never looked at.
 */
struct table_builder {
	const struct chunk_grid *g;
	struct chunk_table *t;
	uint8_t *buf;
	uint64_t cur;                   /* chunk in buf, UINT64_MAX none */
};

/* t gets a new table (table_free it); 0 or -ENOMEM. */
int tb_init(struct table_builder *b, const struct chunk_grid *g, const uint8_t point[16],
	    struct chunk_table *t);
/* len bytes at off (data NULL: zeros); offsets increase.  0 or -ENOMEM. */
int tb_data(struct table_builder *b, uint64_t off, const uint8_t *data, uint64_t len);
/* The last chunk into the table; frees the buffer.  0 or -ENOMEM. */
int tb_finish(struct table_builder *b);

/*
 * A point's chunk table, DIR/d->chunks, checked against what the manifest
 * says of it (chunks_xxh128, the point id, the file's size).  false with
 * the problem in msg.
 */
bool point_table(const char *dir, const struct manifest *m, const struct manifest_device *d,
		 struct chunk_table *t, char *msg, size_t msglen);

#endif
