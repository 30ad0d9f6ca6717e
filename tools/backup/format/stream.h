/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stream.h - a backup file as a stream of units, and its formats.
 *
 * A file is processed as a stream of 1 MiB units (the last one shorter).
 * A unit that is a hole or all zeros is passed as NULL, so that sparse
 * COW files (gigabytes of holes) cost nothing to checksum, compress or
 * restore.  Compressed formats are standard (pack.h, unpack.h): the LZ4
 * frame format and gzip.
 */
#ifndef UBDK_STREAM_H
#define UBDK_STREAM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PACK_UNIT (1U << 20)

enum pack_format { PACK_NONE = 0, PACK_LZ4, PACK_GZIP };

/* Name ("none", "lz4", "gzip") and file suffix ("", ".lz4", ".gz"). */
const char *pack_name(int format);
const char *pack_suffix(int format);
/* Format named s, or -1. */
int pack_parse(const char *s);
/* Format of a compressed file from its first bytes: PACK_LZ4/GZIP or -1. */
int pack_detect(int fd);

/* Something that takes units; returns 0 or -errno. */
typedef int (*unit_fn)(void *ctx, const uint8_t *data, size_t len);

/*
 * Read size bytes of fd as units (holes, found by the extent walk, are not
 * read) and pass each to fn.  *intr, when set, stops it with -EINTR.
 */
int pack_stream_fd(int fd, uint64_t size, unit_fn fn, void *ctx,
		   volatile sig_atomic_t *intr);

/* Whether n bytes at p are all zeros. */
bool unit_is_zero(const uint8_t *p, size_t n);
/* A unit of zeros, for code that needs the bytes; NULL if out of memory. */
const uint8_t *unit_zeros(void);

/* Gathers decompressed bytes into units for a unit_fn. */
struct assembler {
	uint8_t *buf;                   /* PACK_UNIT bytes */
	size_t n;
	unit_fn fn;
	void *ctx;
	uint64_t total;
};

int asm_feed(struct assembler *a, const uint8_t *p, size_t n);
/* A whole unit of zeros, at a unit boundary (a->n == 0). */
int asm_zero_unit(struct assembler *a);
/* Pass on the last, shorter unit. */
int asm_flush(struct assembler *a);

/* Little-endian 32-bit fields, as LZ4 and gzip store them. */
static inline void put_le32(uint8_t *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/*
 * All n bytes, at off (pwrite) or, off -1, where fd is (write); -errno, or
 * -ENOSPC if nothing could be written.
 */
int stream_write_all(int fd, const uint8_t *p, size_t n, off_t off);

#endif
