/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pack.h - checksums, compression and restoration of backup files.
 *
 * A file is processed as a stream of 1 MiB units (the last one shorter).
 * A unit that is a hole or all zeros is passed as NULL, so that sparse
 * COW files (gigabytes of holes) cost nothing to checksum or compress.
 *
 * Checksums of a stream:
 *   crc32        CRC-32 as in gzip and zlib, of all the bytes;
 *   sha256_tree  SHA-256 of the concatenated SHA-256 digests of each
 *                1 MiB unit (the last one shorter; no units: SHA-256 of
 *                nothing).
 * Compressed formats are standard: the LZ4 frame format (independent 1 MiB
 * blocks, block and content checksums, content size) and gzip; `lz4 -d`
 * and `gunzip` restore them.
 */
#ifndef UBDK_PACK_H
#define UBDK_PACK_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

#define PACK_UNIT (1U << 20)

enum pack_format { PACK_NONE = 0, PACK_LZ4, PACK_GZIP };

/* Name ("none", "lz4", "gzip") and file suffix ("", ".lz4", ".gz"). */
const char *pack_name(int format);
const char *pack_suffix(int format);
/* Format named s, or -1. */
int pack_parse(const char *s);

struct pack_sums {
	uint64_t len;
	unsigned long crc;
	struct sha256 tree;
	char crc_hex[9];
	char sha_hex[65];
};

void sums_init(struct pack_sums *s);
void sums_unit(struct pack_sums *s, const uint8_t *data, size_t len);
/* Fills crc_hex and sha_hex. */
void sums_final(struct pack_sums *s);

/* Something that takes units; returns 0 or -errno. */
typedef int (*unit_fn)(void *ctx, const uint8_t *data, size_t len);

/*
 * Read size bytes of fd as units (holes, found by the extent walk, are not
 * read) and pass each to fn.  *intr, when set, stops it with -EINTR.
 */
int pack_stream_fd(int fd, uint64_t size, unit_fn fn, void *ctx,
		   volatile sig_atomic_t *intr);

/* A compressor writing to a file descriptor. */
struct packer;
/* level 0: the format's default (lz4: fast; gzip: 6). */
int packer_open(struct packer **p, int format, int level, int outfd,
		uint64_t content_size);
int packer_unit(void *p, const uint8_t *data, size_t len);
/* Ends the stream; *bytes is the compressed size. */
int packer_finish(struct packer *p, uint64_t *bytes);
void packer_free(struct packer *p);

/* Format of a compressed file from its first bytes: PACK_LZ4/GZIP or -1. */
int pack_detect(int fd);

/*
 * Decompress fd (any LZ4 frame or gzip file, concatenated frames or
 * members too) and pass the content as units.  *total gets its length.
 * On corrupt input, -EBADMSG with a message in msg.
 */
int pack_decompress(int fd, int format, unit_fn fn, void *ctx, uint64_t *total,
		    volatile sig_atomic_t *intr, char *msg, size_t msglen);

/* A sink writing units to fd sparsely (zero 4 KiB blocks are skipped). */
struct sparse_out {
	int fd;
	uint64_t off;
	uint64_t written;       /* bytes actually written */
};
int sparse_unit(void *ctx, const uint8_t *data, size_t len);
/* Set the final size (holes at the end). */
int sparse_finish(struct sparse_out *s);

#endif
