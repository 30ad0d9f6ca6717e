/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The record that makes an in-place merge restartable.
 *
 * Merging a COW into its backing file changes the backing's mtime with the
 * first write, after which the header's mtime no longer matches and a
 * plain re-run would refuse.  Before the first write, uml_moo -d leaves a
 * small record next to the COW (COW.moo-inplace) naming the backing file
 * (device, inode, size) and the mtime the header expects; a re-run that
 * finds a record matching the same COW and backing resumes, and the record
 * is removed only after the merged backing file was synced.
 */
#ifndef UBDK_MOO_RESUME_H
#define UBDK_MOO_RESUME_H

#include <stdbool.h>
#include <stdint.h>

#include "ubdk_cow.h"

struct resume_record {
	uint64_t dev, ino, size;
	uint32_t header_mtime;
};

/* COW.moo-inplace, into out. */
int resume_path(const char *cow, char *out, unsigned len);
/* Read a record: 0, -ENOENT when there is none, other -errno if unreadable. */
int resume_read(const char *path, struct resume_record *r);
/* Write a record atomically and durably. */
int resume_write(const char *path, const struct resume_record *r);
/* Remove the record (once the merged backing file is synced). */
int resume_remove(const char *path);

#endif
