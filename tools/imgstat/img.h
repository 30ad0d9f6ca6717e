/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * img.h - one input of uml_imgstat: a raw image, or a COW file with its
 * header, geometry, bitmap and backing file, and the merged view of the pair.
 *
 * The bitmap is loaded sparse-aware: only the parts of the bitmap area that
 * the file really stores (SEEK_DATA/SEEK_HOLE) are read, and scans skip the
 * holes, so a 1 TiB COW with a 256 MiB bitmap costs what its written parts
 * cost.  Nothing here refuses a damaged file: what could be decoded is kept
 * and the rest is recorded for --check.
 */
#ifndef IMGSTAT_IMG_H
#define IMGSTAT_IMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

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
	uint8_t raw[UBDK_HDR_MAX_SIZE];
	size_t raw_len;                /* bytes of header read */
	bool magic_le;                 /* magic stored little-endian (v1) */
	bool hdr_ok;                   /* decoded */
	struct ubdk_header hdr;
	struct ubdk_err hdr_err;
	bool geo_ok;                   /* validated, geometry computed */
	struct ubdk_geometry geo;
	struct ubdk_err geo_err;

	/*
	 * The bitmap area [bitmap_offset, data_offset), with zeros where the
	 * file has holes or ends early.  area_len bytes are meaningful; the
	 * buffer is padded to a multiple of 8.
	 */
	const uint8_t *area;
	void *map;                     /* area mapped from the file, or NULL */
	size_t map_len;
	uint8_t *buf;                  /* or read into this buffer */
	uint64_t area_len;
	uint64_t area_present;         /* bytes of the area before EOF */
	struct extent *ax;             /* stored (non-hole) parts, area-relative */
	size_t nax;
	uint64_t bits;                 /* sectors with a usable bit: covered,
	                                  limited to the bytes present */
	int bitmap_errno;              /* reading the bitmap failed */

	/* Backing file. */
	const char *backing;           /* override or header path */
	bool backing_override;
	int bfd;                       /* -1 if it could not be opened */
	int berrno;                    /* why not */
	bool backing_notreg;           /* why not: a FIFO, a character device */
	struct stat bst;
	bool chk_done;
	struct ubdk_backing_check chk;
};

/*
 * Open path and classify it; for a COW decode the header, compute the
 * geometry, load the bitmap and open the backing file (backing_override
 * replaces the header's path).  Returns 0, or -errno when path itself
 * cannot be opened or read (message in msg).  A damaged COW is not an
 * error here: see hdr_ok, geo_ok, bitmap_errno.
 */
int img_open(struct img *im, const char *path, const char *backing_override,
	     char *msg, size_t msglen);
void img_close(struct img *im);

/* Is sector n stored in the COW? */
bool img_test(const struct img *im, uint64_t n);
/* Sectors stored in the COW. */
uint64_t img_count(const struct img *im);
/*
 * Runs of sectors in the COW only: the next run of set bits at or after
 * *pos (skipping the bitmap's holes).  Returns 1 and fills run, 0 at the
 * end.
 */
int img_next_cow_run(const struct img *im, uint64_t *pos, struct extent *run);

/*
 * First sector at or after n whose bit equals value, or geo.sectors if
 * none (sectors without a usable bit count as clear).
 */
uint64_t img_find(const struct img *im, uint64_t n, bool value);

/* Is the merged view readable (a COW with geometry and an open backing)? */
bool img_view_ok(const struct img *im);
/*
 * Read the merged view (or the raw image): COW data where the bit is set,
 * backing elsewhere, zeros past the end of a short backing.  -ERANGE past
 * the device, -EIO when a COW sector lies past the end of the COW file.
 */
int img_pread(const struct img *im, void *buf, size_t len, uint64_t off);

/* The last sector whose bit is set, or UINT64_MAX if none. */
uint64_t img_last_set(const struct img *im);
/*
 * Sectors marked present whose data lies past the end of the COW file (a
 * file cut inside its data area): the first such sector in *first.
 */
uint64_t img_short_data(const struct img *im, uint64_t *first);

/* Bytes really allocated by a file. */
static inline uint64_t st_allocated(const struct stat *st)
{
	return (uint64_t)st->st_blocks * 512;
}

#endif /* IMGSTAT_IMG_H */
