/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pack.h - compression writers: a stream of units (stream.h) into an LZ4
 * frame (independent 1 MiB blocks, block checksums, content size) or a
 * gzip member; `lz4 -d` and `gunzip` restore them.  A unit of zeros is
 * compressed once and its bytes repeated.
 */
#ifndef UBDK_PACK_H
#define UBDK_PACK_H

#include <stddef.h>
#include <stdint.h>

struct packer;
/*
 * level 0: the format's default (lz4: fast; gzip: 6).  content_size:
 * LZ4S_NO_SIZE (lz4_splice.h) when not known beforehand (an extent
 * stream); units may then be shorter than PACK_UNIT anywhere.
 */
int packer_open(struct packer **p, int format, int level, int outfd,
		uint64_t content_size);
/* A unit_fn (stream.h). */
int packer_unit(void *p, const uint8_t *data, size_t len);
/* Ends the stream; *bytes is the compressed size. */
int packer_finish(struct packer *p, uint64_t *bytes);
void packer_free(struct packer *p);

/*
 * A unit of zeros deflated on its own at level (1-9) and ended by a full
 * flush, as the gzip writer emits it; made once.  NULL if out of memory.
 */
const uint8_t *gz_zero_unit(int level, size_t *len);

#endif
