/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chunks.h - the chunk grid of a COW file and its chunk table (`ubdN.chunks`,
 * docs/backup-format.md): the XXH3-128 of every chunk that is not all zeros.
 *
 * A table is what an incremental backup compares the COW with, what the
 * next point's table is derived from, and what restore and verify check
 * a point against.  Entries live sorted by offset in one array: a table
 * costs 24 bytes per non-zero chunk (64 KiB), nothing for the holes of a
 * huge sparse device.
 */
#ifndef UBDK_CHUNKS_H
#define UBDK_CHUNKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHUNK_SIZE (64U << 10)
#define CHUNKS_MAGIC "UBDKCHK1"
#define CHUNKS_HEADER 64
#define CHUNKS_ENTRY 24
#define CHUNKS_END 16
#define XXH_HEX 33              /* 32 hex digits and a NUL */

struct chunk_grid {
	uint64_t file_size, data_offset;
	uint32_t chunk_size;
	uint64_t nmeta;         /* metadata chunks: ceil(data_offset / chunk_size) */
	uint64_t count;         /* all chunks */
};

/* false if the numbers make no grid (chunk_size 0, data_offset > file_size). */
bool grid_init(struct chunk_grid *g, uint64_t file_size, uint64_t data_offset,
	       uint32_t chunk_size);
/* Chunk i's bytes: [*off, *off + *len). */
void grid_chunk(const struct chunk_grid *g, uint64_t i, uint64_t *off, uint64_t *len);
/* The chunk holding byte off (off < file_size). */
uint64_t grid_index(const struct chunk_grid *g, uint64_t off);

struct chunk_entry {
	uint64_t off;
	uint8_t digest[16];     /* XXH3-128, canonical (big-endian) */
};

struct chunk_table {
	struct chunk_grid g;
	uint8_t point[16];
	struct chunk_entry *e;
	uint64_t n;
	size_t cap;
	uint8_t end[16];        /* the file's closing digest: manifest chunks_xxh128 */
};

/* The XXH3-128 of len bytes, canonical. */
void chunk_digest(const void *p, size_t len, uint8_t out[16]);
/* 32 lowercase hex digits. */
void digest_hex(const uint8_t d[16], char out[XXH_HEX]);

void table_init(struct chunk_table *t, const struct chunk_grid *g, const uint8_t point[16]);
/* Append an entry; offsets must increase.  0 or -ENOMEM. */
int table_add(struct chunk_table *t, uint64_t off, const uint8_t digest[16]);
/* The entry of the chunk at off, or NULL (an all-zero chunk). */
const struct chunk_entry *table_find(const struct chunk_table *t, uint64_t off);
void table_free(struct chunk_table *t);

/*
 * The table as a file's bytes (malloc'ed, *len set), t->end filled in;
 * NULL if out of memory.
 */
uint8_t *table_encode(struct chunk_table *t, size_t *len);
/*
 * Parse a table file's bytes; false with a reason in msg (naming the byte
 * offset) if it is not a valid table.  Untrusted input: tests/fuzz.
 */
bool table_decode(const uint8_t *p, size_t len, struct chunk_table *t, char *msg,
		  size_t msglen);
/* Read DIR/NAME; false with a message (the file named) in msg. */
bool table_read(const char *path, struct chunk_table *t, char *msg, size_t msglen);

/*
 * Each chunk of fd that holds data (SEEK_DATA extents), in order: fn gets
 * its index, place and bytes (holes inside it as zeros, never read: a
 * sector dirty in a chunk costs a 4 KiB read, not 64 KiB).  A negative
 * return from fn stops the walk with it.  0 or -errno; *read_bytes (if
 * not NULL) gets the bytes read.
 */
typedef int (*chunk_fn)(void *ctx, uint64_t i, uint64_t off, uint64_t len,
			const uint8_t *buf);
int chunk_walk(int fd, const struct chunk_grid *g, chunk_fn fn, void *ctx,
	       uint64_t *read_bytes);

/*
 * Chunk i of fd into buf ([*off, *off + *len)): its data extents only,
 * the holes in it zeros, not read, as chunk_walk does for one chunk that
 * is asked for (a changed one: it may be a hole now).  *read_bytes grows
 * by the bytes read.  0 or -errno.
 */
int chunk_read(int fd, const struct chunk_grid *g, uint64_t i, uint8_t *buf, uint64_t *off,
	       uint64_t *len, uint64_t *read_bytes);

/*
 * As chunk_read, for a caller that walks the extents itself and knows that
 * [d, d + n) is data: a chunk inside it is read with one pread, without
 * seeking its extents again (two lseeks a chunk).
 */
int chunk_read_in(int fd, const struct chunk_grid *g, uint64_t i, uint8_t *buf, uint64_t *off,
		  uint64_t *len, uint64_t *read_bytes, uint64_t d, uint64_t n);

/*
 * Hash a whole file's chunks (holes not read): the table of a COW file or
 * of a restored one.  0 or -errno (-ENOMEM, a read error); *read_bytes gets
 * the bytes read.
 */
int table_of_fd(int fd, const struct chunk_grid *g, const uint8_t point[16],
		struct chunk_table *t, uint64_t *read_bytes);

/* Whether two tables list the same chunks with the same digests. */
bool table_same(const struct chunk_table *a, const struct chunk_table *b, uint64_t *first_diff);

#endif
