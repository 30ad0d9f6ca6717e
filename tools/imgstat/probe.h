/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * probe.h - what libblkid finds on an image or on the merged view of a
 * pair (signature, partition table, the filesystem of each partition), and
 * for ext2/3/4 what libext2fs reads.
 *
 * libblkid reads a file descriptor.  A raw image is probed directly.  The
 * merged view of a pair is not a file: libblkid probes an in-memory sparse
 * image of the device's size holding the merged view's first and last
 * PROBE_WINDOW bytes, those of every partition found, and the window after
 * each partition's end (where the next extended boot record lives), filled
 * until no new partition appears.  libext2fs reads the whole view through
 * the pair I/O manager.
 */
#ifndef IMGSTAT_PROBE_H
#define IMGSTAT_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "img.h"
#include "out.h"

#define PROBE_WINDOW (4ULL << 20)

/* What the whole device holds, for --files. */
struct probe_result {
	char type[32];             /* blkid TYPE of the whole device, or "" */
	uint64_t ext_offset;       /* first ext2/3/4 filesystem: byte offset */
	bool has_ext;
	int partitions;
};

/*
 * Write the "content" object for an image (raw, or the merged view of a
 * COW pair).  res may be NULL.  Returns 0, or -errno when the image could
 * not be read (the object then says why).
 */
int probe_content(struct out *o, struct img *im, struct probe_result *res);

/* Find the first ext2/3/4 filesystem without writing anything. */
int probe_find_ext(struct img *im, struct probe_result *res);

#endif /* IMGSTAT_PROBE_H */
