/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chainio.h - what the commands that read points (restore, verify, prune,
 * export) share: naming a point from a path, opening a point's
 * stream and checking its header, applying a stream's records to a file.
 */
#ifndef UBDK_CHAINIO_H
#define UBDK_CHAINIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "chain/point.h"
#include "format/xstream.h"

#define MAX_CHAIN 1024

/* "CHAIN/NAME" (trailing slashes ignored) into its directory and name. */
void chainio_split_point_path(const char *path, char *chaindir, size_t cl, char *name, size_t nl);
/* Whether digest d is the 32 hex digits hex (false for NULL). */
bool chainio_hex_is(const uint8_t d[16], const char *hex);
/* Check a stream's header against its point; 0 or -EBADMSG with msg. */
int chainio_check_header(const struct xs_header *h, const struct point *p,
		 const struct manifest_device *d, char *msg, size_t msglen);
/* Applying streams to a file. */
struct apply_ctx {
	int fd;
	const struct point *p;
	const struct manifest_device *d;
	uint64_t file_size;
	uint64_t written;
	char msg[256];
};
/* Zeros at [off, off + len): a hole punched, or written where that fails. */
int chainio_punch_zero(int fd, uint64_t off, uint64_t len);
/* An xs_read callback: each record of a stream into a->fd. */
int chainio_apply_record(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
		 const uint8_t *data);
/*
 * Open a point's file of device d (a stream or a COW file), a regular
 * file (*st its stat); a negative INPUT_E_ code or -errno after msg.
 */
int chainio_open_stream(const struct point *p, const struct manifest_device *d, struct stat *st,
			char *msg, size_t msglen);
/*
 * Apply the streams of device `dev` of points pts[0..n) (a full point and
 * its incrementals, oldest first, as chain_path gives them) to fd, an
 * empty file, each checked against its manifest (header, digest); fd's
 * size set to the last one's, *written the data bytes written.  0, or
 * -errno with msg naming the point.
 */
int chain_apply(const struct point *pts, int n, const char *dev, int fd, uint64_t *written,
		char *msg, size_t msglen);

#endif
