/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The data movement of uml_moo: copy a backing file's allocated extents
 * into a new image, overlay a COW's runs onto an image (new or the backing
 * itself), and compare an image with the merged view.
 */
#ifndef UBDK_MOO_MERGE_H
#define UBDK_MOO_MERGE_H

#include <stdbool.h>
#include <stdint.h>

#include "ubdk_cow.h"

struct merge_progress {
	uint64_t total;              /* bytes expected to move */
	uint64_t done;
	uint64_t from_backing;       /* bytes copied from the backing file */
	uint64_t from_cow;           /* bytes copied from the COW file */
	/* Called now and then as done grows, when not NULL. */
	void (*report)(const struct merge_progress *p);
	/* Test hook: after this many data writes, SIGKILL ourselves (0: off). */
	unsigned long crash_after;
};

/* Bytes the COW's runs hold, within the device. */
uint64_t merge_cow_bytes(struct ubdk_cow *cow);

/*
 * Copy the allocated extents of src (size bytes) into the empty file dst,
 * leaving holes as holes and skipping the sectors the COW holds; dst gets
 * the apparent size size.
 */
int merge_copy_extents(struct ubdk_cow *cow, int src, int dst, uint64_t size,
		       struct merge_progress *p, const char *src_name,
		       const char *dst_name, struct ubdk_err *err);
/* Write every sector the COW holds into dst at its device offset. */
int merge_overlay(struct ubdk_cow *cow, int dst, const char *dst_name,
		  struct merge_progress *p, struct ubdk_err *err);
/*
 * Compare dst with the merged view: everywhere, or only where the COW
 * holds sectors (cow_only, for an in-place merge).  -EIO on a difference.
 */
int merge_verify(struct ubdk_cow *cow, int dst, const char *dst_name,
		 bool cow_only, struct ubdk_err *err);

#endif
