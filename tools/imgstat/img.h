/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * img.h - one input of uml_imgstat: a raw image, or a COW file with its
 * header, geometry and backing file.
 *
 * A COW whose header and geometry are valid is opened through the library
 * (ubdk_cow_open), which answers every bitmap question and reads the merged
 * view; its bitmap is loaded lazily and sparsely, so a 1 TiB COW costs
 * what its written sectors cost.  Nothing here refuses a damaged file:
 * what could be decoded is kept, and why the library could not open the
 * pair is recorded for --check and the other modes.
 */
#ifndef IMGSTAT_IMG_H
#define IMGSTAT_IMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "ubdk_cow.h"

enum img_kind {
	IMG_RAW = 0,      /* no COW magic: a raw disk image */
	IMG_COW = 1,      /* COW magic (header may still be damaged) */
};

/* A range of bytes or sectors, [start, start + len). */
struct extent {
	uint64_t start, len;
};

struct img {
	const char *path;
	int fd;
	struct stat st;
	int kind;
	uint64_t size;                 /* device size: raw file size or hdr.size */

	/* COW header, as read and decoded. */
	bool hdr_ok;                   /* decoded */
	struct ubdk_header hdr;
	struct ubdk_err hdr_err;
	bool geo_ok;                   /* validated, geometry computed */
	struct ubdk_geometry geo;
	struct ubdk_err geo_err;

	/*
	 * The pair as the library opened it, or NULL: header or geometry
	 * damaged, the file ends inside its bitmap (short_bitmap), or the
	 * bitmap could not be read (bitmap_errno).  why says which, in words.
	 */
	struct ubdk_cow *cow;
	bool short_bitmap;
	int bitmap_errno;
	char why[160];
	/* The bitmap as the file stores it (geo_ok): what it lacks or holds
	 * beyond the device, for --check and the usage. */
	bool scan_ok;
	struct ubdk_scan scan;
	struct ubdk_err scan_err;

	/* Backing file. */
	const char *backing;           /* override or header path */
	bool backing_override;
	bool backing_ok;               /* there, and a regular file or device */
	int bfd;                       /* open backing (the library's), or -1 */
	int own_bfd;                   /* opened here when there is no pair */
	int berrno;                    /* why not backing_ok */
	bool backing_notreg;           /* why not: a FIFO, a character device */
	bool backing_is_cow;           /* it starts with the COW magic */
	struct stat bst;
	bool chk_done;
	struct ubdk_backing_check chk;
};

/*
 * Open path and classify it; for a COW decode the header, compute the
 * geometry and open the pair through the library (backing_override
 * replaces the header's path).  Returns 0, or -errno when path itself
 * cannot be opened or read (message in msg).  A damaged COW is not an
 * error here: see hdr_ok, geo_ok, cow.
 */
int img_open(struct img *im, const char *path, const char *backing_override,
	     char *msg, size_t msglen);
void img_close(struct img *im);

/*
 * Read len bytes of fd at off, zeros past its end: a raw image, or the
 * backing file by itself.  Returns the bytes before the end, or -errno.
 */
ssize_t img_read_fd(int fd, void *buf, size_t len, uint64_t off);

/*
 * The next run of sectors stored in the COW (opened by the library,
 * im->cow) at or after *pos: returns 1 and fills run, 0 at the end, -errno
 * when the bitmap cannot be read.
 */
int img_next_cow_run(struct img *im, uint64_t *pos, struct extent *run);

/* Is the merged view readable (a COW opened with its backing)? */
bool img_view_ok(const struct img *im);
/*
 * Read the merged view (or the raw image): COW data where the bit is set,
 * backing elsewhere, zeros past the end of a short backing.  -ERANGE past
 * the device, -EIO when a COW sector lies past the end of the COW file.
 */
int img_pread(struct img *im, void *buf, size_t len, uint64_t off);

/* Bytes really allocated by a file. */
static inline uint64_t st_allocated(const struct stat *st)
{
	return (uint64_t)st->st_blocks * 512;
}

#endif /* IMGSTAT_IMG_H */
