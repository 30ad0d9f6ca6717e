/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sparse.h - a sink writing units to a file sparsely, as a restore does. */
#ifndef UBDK_SPARSE_H
#define UBDK_SPARSE_H

#include <stddef.h>
#include <stdint.h>

struct sparse_out {
	int fd;
	uint64_t off;
	uint64_t written;       /* bytes actually written */
};

/* A unit_fn (stream.h): zero 4 KiB blocks are skipped, not written. */
int sparse_unit(void *ctx, const uint8_t *data, size_t len);
/* Set the final size (holes at the end). */
int sparse_finish(struct sparse_out *s);

#endif
