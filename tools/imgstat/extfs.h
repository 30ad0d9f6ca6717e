/* SPDX-License-Identifier: GPL-2.0-or-later */
/* extfs.h - opening and describing ext2/3/4 filesystems with libext2fs. */
#ifndef IMGSTAT_EXTFS_H
#define IMGSTAT_EXTFS_H

#include <stdbool.h>
#include <stdint.h>

#include <ext2fs/ext2fs.h>

#include "img.h"
#include "out.h"

struct extfs {
	ext2_filsys fs;
	char name[64];             /* registered pairio name */
};

/* extfs_open() flags. */
enum { EXTFS_IGNORE_CSUM = 1 << 0 };

/*
 * Open the filesystem starting at byte offset of an image's source
 * (PIO_VIEW or PIO_BACKING), read-only; metadata checksums are verified
 * unless flags has EXTFS_IGNORE_CSUM.  Returns 0 or a libext2fs/errno
 * error code (use error_message()).
 */
long extfs_open(struct extfs *x, struct img *im, int source, uint64_t offset,
		int flags);
void extfs_close(struct extfs *x);

/*
 * Check the superblock and group-descriptor fields that libext2fs uses
 * without checking (as e2fsck does before anything else): 0, or an error
 * code with a one-line reason in why.
 */
long extfs_validate(ext2_filsys fs, char *why, size_t len);

/* Is this blkid TYPE one that libext2fs reads? */
bool extfs_type(const char *type);

/* Write the "ext" object: geometry, counts, state, features, times. */
void extfs_describe(struct out *o, ext2_filsys fs);

/* Superblock time fields with their _hi byte. */
int64_t extfs_time(uint32_t lo, uint8_t hi);

#endif /* IMGSTAT_EXTFS_H */
