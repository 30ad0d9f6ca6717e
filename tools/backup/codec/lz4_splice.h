/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lz4_splice.h - LZ4 frames written a block at a time, so that a unit of
 * zeros can be a block compressed once and copied.
 *
 * Why not liblz4's frame API (LZ4F_compressUpdate): it compresses every
 * byte it is given, and a COW file is mostly holes: compressing a MiB of
 * zeros costs about as much as compressing a MiB of data, gigabytes of it
 * for nothing.  LZ4F cannot take a block compressed beforehand either (it
 * counts the content it compressed against the size in the header).  So
 * the frame is framed here, in the standard format (lz4 -d reads it), and
 * the blocks are liblz4's.  Reading is liblz4's too (LZ4F_decompress),
 * fed a block at a time to skip the units of zeros (unpack.c).
 */
#ifndef UBDK_LZ4_SPLICE_H
#define UBDK_LZ4_SPLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Frame header: 15 bytes. */
#define LZ4S_HEADER 15
/* Room a block needs: its size field, the data, its checksum. */
#define LZ4S_BLOCK_MAX(len) ((len) + 8)

/* A content size not known when the frame starts (an extent stream's). */
#define LZ4S_NO_SIZE UINT64_MAX
/*
 * Version 01, independent blocks, block checksums, content size; blocks
 * of at most 1 MiB.  No content checksum: it would have to hash every
 * zero of the holes (the manifest's checksums cover the content).  With
 * LZ4S_NO_SIZE, no content size: a shorter header (7 bytes), and the frame
 * is read as any other (unpack.c).  Returns the header's length.
 */
size_t lz4s_header(uint8_t hdr[LZ4S_HEADER], uint64_t content_size);
/* Whether hdr (LZ4S_HEADER bytes) starts a frame of ours, and its content size. */
bool lz4s_is_ours(const uint8_t *hdr, uint64_t *content_size);
/*
 * One block of len (<= 1 MiB) bytes at src into dst: compressed (level
 * >= 3: HC at that level, else fast), or stored if that is no smaller.
 * Returns its length in dst.
 */
size_t lz4s_block(int level, const uint8_t *src, size_t len, uint8_t *dst);
/* End mark: 4 bytes. */
#define LZ4S_END_MARK 4

#endif
