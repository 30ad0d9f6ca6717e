/* SPDX-License-Identifier: GPL-2.0-or-later */
/* unpack.h - compression readers: LZ4 frames and gzip members to units. */
#ifndef UBDK_UNPACK_H
#define UBDK_UNPACK_H

#include "format/stream.h"

/*
 * Decompress fd (any LZ4 frame or gzip file, concatenated frames or
 * members too) and pass the content as units.  *total gets its length.
 * On corrupt input, -EBADMSG with a message in msg.
 */
int pack_decompress(int fd, int format, unit_fn fn, void *ctx, uint64_t *total,
		    volatile sig_atomic_t *intr, char *msg, size_t msglen);

#endif
