/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by the library's own files only. */
#ifndef UBDK_INTERNAL_H
#define UBDK_INTERNAL_H

#include "ubdk_static.h"
#include "ubdk_endian.h"

#if defined(__GNUC__)
#define UBDK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define UBDK_PRINTF(a, b)
#endif

/*
 * Record an error and return -errnum, so that callers can write
 * `return ubdk_fail(err, CODE, EINVAL, "...")`.
 */
int ubdk_fail(struct ubdk_err *err, int code, int errnum, const char *fmt, ...)
	UBDK_PRINTF(4, 5);

/*
 * Rewrite an open COW's header in place (same bitmap and data offsets),
 * fsync, and adopt it.  Used by the rebase in backing.c.
 */
struct ubdk_os_stat;
int ubdk__backing_compare(const struct ubdk_header *hdr, const char *backing,
			  const struct ubdk_os_stat *st,
			  struct ubdk_backing_check *res, struct ubdk_err *err);
int ubdk__cow_replace_header(struct ubdk_cow *cow,
			     const struct ubdk_header *hdr,
			     struct ubdk_err *err);

/*
 * The first sector whose data reaches past a COW file of file_size bytes
 * (a short last sector needs only the device's bytes), geo->sectors if
 * none does.
 */
uint64_t ubdk__first_short_sector(const struct ubdk_header *hdr,
				  const struct ubdk_geometry *geo,
				  uint64_t file_size);

/* The sparse, lazily loaded bitmap (bmap.c).  All return 0 or -errno. */
struct ubdk_bmap;
int ubdk__bmap_open(int fd, uint64_t offset, uint64_t used, uint64_t covered,
		    struct ubdk_bmap **out);
void ubdk__bmap_free(struct ubdk_bmap *bm);
uint64_t ubdk__bmap_mem(const struct ubdk_bmap *bm);
/* 1 if bit n is set, 0 if not. */
int ubdk__bmap_test(struct ubdk_bmap *bm, uint64_t n);
/* First n in [start, end) whose bit equals value, else end; bits past the
 * bitmap's reach read clear. */
int ubdk__bmap_find(struct ubdk_bmap *bm, uint64_t start, uint64_t end,
		    bool value, uint64_t *found);
int ubdk__bmap_count(struct ubdk_bmap *bm, uint64_t start, uint64_t end,
		     uint64_t *count);
/* Set [start, end) in memory; the chunks become dirty. */
int ubdk__bmap_set(struct ubdk_bmap *bm, uint64_t start, uint64_t end);
bool ubdk__bmap_dirty(const struct ubdk_bmap *bm);
int ubdk__bmap_writeback(struct ubdk_bmap *bm);

/* Name used in messages when the caller gave none. */
static inline const char *ubdk_name(const char *name)
{
	return name ? name : "<buffer>";
}

#endif /* UBDK_INTERNAL_H */
