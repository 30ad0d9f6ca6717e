/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * extent.h - the data extents of a file (SEEK_DATA/SEEK_HOLE), and one way
 * to copy a byte range between files.  Every tool walks sparse files and
 * copies their data with these, so that the fallbacks (no SEEK_DATA, no
 * copy_file_range across filesystems, a source shorter than asked) are
 * written once.
 */
#ifndef UBDK_TOOLS_EXTENT_H
#define UBDK_TOOLS_EXTENT_H

#include <stdbool.h>
#include <stdint.h>

/* Walks the data extents of fd within [start, end). */
struct extent_iter {
	int fd;
	uint64_t pos, end;
};

void extent_iter_init(struct extent_iter *it, int fd, uint64_t start,
		      uint64_t end);
/*
 * The next data extent: returns 1 and sets [*off, *off + *len); 0 when only
 * holes remain; a negative errno when lseek fails for another reason than
 * "no hole information".  Then the rest counts as one data extent: it is in
 * [*off, *off + *len) and the walk is over, so that callers for which
 * copying too much is safer than failing can take it as data.
 */
int extent_next(struct extent_iter *it, uint64_t *off, uint64_t *len);
/* Bytes of data (not holes) in fd's first size bytes. */
uint64_t extent_data_bytes(int fd, uint64_t size);

/* State kept across copies: whether copy_file_range works, a buffer. */
struct copy_ctx {
	bool no_cfr;              /* fall back to read and write */
	bool writeback;           /* start writeback of what was written */
	char *buf;                /* for the fallback, COPY_CHUNK bytes */
	/* Called after each piece with its size; non-zero stops the copy
	 * with that value (e.g. -EINTR). */
	int (*tick)(void *arg, uint64_t bytes);
	void *arg;
};

#define COPY_CHUNK (1U << 20)

enum copy_side { COPY_SRC, COPY_DST };

/*
 * Copy len bytes of src at soff to dst at doff: copy_file_range where it
 * works (it shares extents on filesystems that can), pread and pwrite
 * where it does not.  Bytes past the end of src are written as zeros.
 * Returns 0 or a negative errno, and which file failed in *side.
 */
int copy_range(struct copy_ctx *c, int src, uint64_t soff, int dst,
	       uint64_t doff, uint64_t len, enum copy_side *side);
void copy_ctx_free(struct copy_ctx *c);

#endif /* UBDK_TOOLS_EXTENT_H */
