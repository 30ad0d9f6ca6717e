/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snap.h - copy a COW file into an unnamed destination file, whole or in
 * parts, keeping holes as holes.
 *
 *   reflink   FICLONE: the filesystem shares the extents (btrfs, XFS...).
 *   copy      every allocated extent (SEEK_DATA/SEEK_HOLE), in the kernel
 *             with copy_file_range where it can.
 *   ranges    only the 4 KiB blocks of a bitmap (from iotrack), a hole in
 *             the source punched as a hole in the copy.
 *   compare   make an existing copy equal to the source, writing only the
 *             64 KiB pieces that differ.
 */
#ifndef UBDK_SNAP_H
#define UBDK_SNAP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

struct snap_file {
	int src, dst;
	const char *src_name, *dst_name;
	uint64_t size;          /* apparent size of the source */
};

struct snap_ctx {
	volatile sig_atomic_t *intr;    /* set: stop with -EINTR */
	void (*tick)(void *arg);        /* after each chunk (tests, progress) */
	void *arg;
	bool writeback;                 /* start writeback of what was copied */
	uint64_t written;               /* bytes written to destinations */
	uint64_t read;                  /* bytes read from sources (compare) */
	char msg[512];                  /* on error: "file: what: why" */
};

/* 0, or -errno; -EOPNOTSUPP/-EXDEV/-EINVAL/-ENOTTY: no reflink here. */
int snap_reflink(struct snap_file *f, struct snap_ctx *c);
bool snap_no_reflink(int err);
/* Copy all allocated data; dst is set to the source's size first. */
int snap_copy(struct snap_file *f, struct snap_ctx *c);
/* Copy the blocks set in bits (block b = bytes [b * blk, (b + 1) * blk)). */
int snap_ranges(struct snap_file *f, const uint64_t *bits, uint64_t nblocks,
		uint32_t blk, struct snap_ctx *c);
/* Bring dst in line with src, comparing everything. */
int snap_compare(struct snap_file *f, struct snap_ctx *c);

#endif
