/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sums.h - the checksums of a backup file, over its stream of units:
 *   crc32        CRC-32 as in gzip and zlib, of all the bytes;
 *   sha256_tree  SHA-256 of the concatenated SHA-256 digests of each
 *                1 MiB unit (the last one shorter; no units: SHA-256 of
 *                nothing).
 * The tree lets a unit of zeros (a hole) cost a table look-up, not a hash.
 */
#ifndef UBDK_SUMS_H
#define UBDK_SUMS_H

#include <nettle/sha2.h>
#include <stddef.h>
#include <stdint.h>

struct sums {
	uint64_t len;
	unsigned long crc;
	struct sha256_ctx tree;
	char crc_hex[9];
	char sha_hex[65];
};

void sums_init(struct sums *s);
/* A unit; data NULL: len zero bytes. */
void sums_unit(struct sums *s, const uint8_t *data, size_t len);
/* Fills crc_hex and sha_hex. */
void sums_final(struct sums *s);

/*
 * The sums of a file of `size` bytes given as data at increasing offsets,
 * zeros between (an extent stream's records): gathered into units here.
 */
struct sums_at {
	struct sums *s;
	uint64_t size, unit;            /* the unit in buf */
	uint8_t *buf;                   /* PACK_UNIT bytes; zero outside [lo, hi) */
	size_t lo, hi;
};

/* 0 or -ENOMEM. */
int sums_at_init(struct sums_at *a, struct sums *s, uint64_t size);
/* len bytes at off (off at or after the end of the previous call). */
void sums_at_data(struct sums_at *a, uint64_t off, const uint8_t *p, size_t len);
/* The units up to size; frees the buffer (sums_final is the caller's). */
void sums_at_finish(struct sums_at *a);

/* crc32() of zlib, faster where the CPU multiplies carry-less. */
unsigned long crc_update(unsigned long crc, const uint8_t *p, size_t n);
/* crc continued over a whole unit of zeros, without reading any. */
unsigned long crc_zero_unit(unsigned long crc);

#endif
