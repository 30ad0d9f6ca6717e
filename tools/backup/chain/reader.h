/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reader.h - the one reader of backup points, for restore, verify and
 * export.  A plain backup's directory is a chain of one point (a full
 * point of no chain, or a backup of 0.2.0); a chain's point comes with its
 * path from the full point.  A point's device comes out as extent stream
 * records whatever holds it (a stream, or a COW file plain or
 * compressed), or whole into a file, checked.
 */
#ifndef UBDK_READER_H
#define UBDK_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "chain/chain.h"
#include "format/sums.h"
#include "format/xstream.h"
#include "ubdk_static.h"

struct point_reader {
	struct point *pts;              /* the full point first, the one opened last */
	int n;
	bool chain;                     /* a point of a chain directory */
};

/*
 * Open the point in DIR, its manifest read once (a chain point's
 * ancestors' too, each link checked).  false with the problem in msg
 * (empty when manifest_read printed it); point_reader_close either way.
 */
bool point_reader_open(struct point_reader *r, const char *dir, char *msg, size_t msglen);
void point_reader_close(struct point_reader *r);
/* The point opened. */
const struct point *point_reader_point(const struct point_reader *r);
/*
 * The name of the point of r's path that holds st (lstat of an existing
 * file) as its manifest, a stream or COW file, or a chunk table; NULL if
 * none does.
 */
const char *point_reader_holds(const struct point_reader *r, const struct stat *st);
/* Device d's entry has what reading it needs; else the problem, in msg. */
const char *point_entry_problem(const struct manifest_device *d, char *msg, size_t msglen);

/* What point_read tells besides the records. */
struct point_data {
	bool stream;                    /* stored as an extent stream, else a COW file */
	int fmt;                        /* PACK_*: the stored file's compression */
	uint64_t stored;                /* the stored file's size */
	uint64_t file_size;             /* the COW file's: the stream's header, the file's length */
	uint64_t data;                  /* bytes of data given */
	uint8_t digest[16];             /* a stream's end digest */
	/* The COW header: the first bytes (zeros where no record is). */
	uint8_t head[UBDK_HDR_MAX_SIZE];
	size_t headlen;
	bool has_sums;                  /* a backup of 0.2.0 (no chunk table): */
	struct sums sums;               /* crc32 and sha256_tree of the whole file */
	char msg[300];
};

/*
 * Device d of point p as stored, to fn as xs_read gives a stream's records
 * (XS_HEADER_CALL first: a COW file gets the header of a full stream of
 * it, its data offset from its COW header; then data, and a stream's ZERO
 * records).  0, or -errno with out->msg (fn's error as it returned it).
 */
int point_read(const struct point *p, const struct manifest_device *d, xs_record_fn fn,
	       void *ctx, struct point_data *out);

/*
 * Device d of the point r opened, whole, into fd (an empty file): the
 * streams of its path applied oldest first, or its COW file copied, data
 * only; then checked against the point's chunk table (read back), or for
 * 0.2.0 against its checksums.  *written: bytes of data written.  0, or
 * -errno with msg (-EBADMSG: the backup is damaged or not as its
 * manifest says).
 */
int point_reader_apply(const struct point_reader *r, const struct manifest_device *d, int fd,
		       uint64_t *written, char *msg, size_t msglen);

#endif
