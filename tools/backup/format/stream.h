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
#include <string.h>
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

/*
 * Copy n bytes of p into buf, a unit buffer (PACK_UNIT bytes) holding
 * *fill, calling flush(arg) each time it is full (flush empties it):
 * what every writer that works in whole units does.  0 or flush's error.
 */
static inline int unit_feed(uint8_t *buf, size_t *fill, const uint8_t *p, size_t n,
			    int (*flush)(void *arg), void *arg)
{
	while (n > 0) {
		size_t take = PACK_UNIT - *fill < n ? PACK_UNIT - *fill : n;

		memcpy(buf + *fill, p, take);
		*fill += take;
		p += take;
		n -= take;
		if (*fill == PACK_UNIT) {
			int ret = flush(arg);

			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

/*
 * All n bytes, at off (pwrite) or, off -1, where fd is (write); -errno, or
 * -ENOSPC if nothing could be written.
 */
int stream_write_all(int fd, const uint8_t *p, size_t n, off_t off);

#endif
