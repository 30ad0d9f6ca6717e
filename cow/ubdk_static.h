/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ubdk_static.h - what the project's own driver, tools and tests use
 * beyond the installed API (ubdk_cow.h, ubdk_cbt.h): the header codec,
 * the raw bitmap, the COW's descriptor, the in-memory changed-block
 * tracker and its files, CRC-32.  Not installed and not exported by
 * libubdk.so (cow/libubdk.map): link the static library (as with lz4's
 * LZ4_STATIC_LINKING_ONLY or e2fsprogs' private headers).  These may
 * change between releases.
 */
#ifndef UBDK_STATIC_H
#define UBDK_STATIC_H

#include "ubdk_cow.h"
#include "ubdk_cbt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- the header codec ----------------------------------------------------- */

/*
 * Pure functions on header bytes: no I/O, safe on untrusted input.
 * `name` is only used in messages (may be NULL).
 */
int ubdk_header_decode(const void *buf, size_t len, const char *name,
		       struct ubdk_header *hdr, struct ubdk_err *err);
/* Validate a decoded header and compute its geometry. */
int ubdk_header_geometry(const struct ubdk_header *hdr, const char *name,
			 struct ubdk_geometry *geo, struct ubdk_err *err);
/*
 * Where device bytes [off, off + len) live in the COW file (len > 0, the
 * range within the device): their data at data_off, and the bitmap bytes
 * holding their sectors' bits at [bits_off, bits_off + bits_len).
 */
void ubdk_geometry_locate(const struct ubdk_header *hdr, const struct ubdk_geometry *geo,
			  uint64_t off, uint64_t len, uint64_t *data_off,
			  uint64_t *bits_off, uint64_t *bits_len);
/*
 * Encode hdr in its layout (v1, v2 or v3; never v3-broken) into buf, which
 * must hold at least UBDK_HDR_MAX_SIZE bytes.  Unused bytes are zero.
 * Returns the header length.
 */
int ubdk_header_encode(const struct ubdk_header *hdr, void *buf, size_t len,
		       struct ubdk_err *err);

/* --- the raw bitmap ------------------------------------------------------- */

/*
 * Bitmap questions.  Bit n lives in byte n / 8, bit n % 8 (LSB first).
 * Ranges are [start, end) in sectors.  These scan 64 bits at a time.
 */
bool ubdk_bitmap_test(const uint8_t *bitmap, uint64_t n);
void ubdk_bitmap_set(uint8_t *bitmap, uint64_t n);
/* Number of set bits in [start, end). */
uint64_t ubdk_bitmap_count(const uint8_t *bitmap, uint64_t start,
			   uint64_t end);
/* First n in [start, end) whose bit equals value, or end if none. */
uint64_t ubdk_bitmap_find(const uint8_t *bitmap, uint64_t start, uint64_t end,
			  bool value);
/* Set all bits in [start, end). */
void ubdk_bitmap_set_range(uint8_t *bitmap, uint64_t start, uint64_t end);

/* The COW file's descriptor, for bulk copies of its data (uml_moo's
 * copy_file_range); -1 if none. */
int ubdk_cow_fd(const struct ubdk_cow *cow);

/* --- changed-block tracking ---------------------------------------------- */

/* The identity of an open COW now (fstat of its file, its header). */
int ubdk_cbt_identity_of(const struct ubdk_cow *cow,
			 struct ubdk_cbt_identity *id, struct ubdk_err *err);

/* --- the tracker (in memory), used by the driver ------------------------ */

struct ubdk_cbt;

/*
 * A new, empty tracker for a device of device_size bytes (granularity 0
 * means UBDK_CBT_GRANULARITY), named name (NULL: ""), with the given
 * reason.  Memory from ubdk_os_map only.
 */
int ubdk_cbt_new(uint64_t device_size, uint32_t granularity,
		 const char *name, int reason, struct ubdk_cbt **out,
		 struct ubdk_err *err);
void ubdk_cbt_free(struct ubdk_cbt *cbt);

/*
 * Mark the blocks touching bytes [off, off + len) as changed (clipped to
 * the device).  Makes no message and takes memory only from ubdk_os_map,
 * so the UML I/O thread can call it.  If a leaf cannot be had the tracker
 * becomes inconsistent (UBDK_CBT_LOST) and -ENOMEM is returned.
 */
int ubdk_cbt_mark(struct ubdk_cbt *cbt, uint64_t off, uint64_t len);
/* Is block n set? */
bool ubdk_cbt_test(const struct ubdk_cbt *cbt, uint64_t n);
/* Blocks set. */
uint64_t ubdk_cbt_count(const struct ubdk_cbt *cbt);
/* Bytes of memory the tracker holds. */
uint64_t ubdk_cbt_mem(const struct ubdk_cbt *cbt);
/*
 * The first run of set blocks at or after block *pos: 1 with [*start,
 * *start + *count) and *pos moved past it, 0 when none is left.
 */
int ubdk_cbt_next(const struct ubdk_cbt *cbt, uint64_t *pos,
		  uint64_t *start, uint64_t *count);
/* State: kind 0, name, reason, granularity, device size, generation,
 * blocks; runs and id are 0. */
void ubdk_cbt_get_info(const struct ubdk_cbt *cbt, struct ubdk_cbt_info *info);
/* Make the tracker inconsistent (a reason other than 0). */
void ubdk_cbt_set_reason(struct ubdk_cbt *cbt, int reason);

/*
 * Checkpoint: the tracker's map so far (with its name, reason and
 * generation) moves into *sealed, and the tracker goes on empty, named
 * name, consistent, generation + 1.  Constant time: only the leaf index
 * changes hands.  Free *sealed with ubdk_cbt_free after writing it.
 */
int ubdk_cbt_checkpoint(struct ubdk_cbt *cbt, const char *name,
			struct ubdk_cbt **sealed, struct ubdk_err *err);

/* --- the tracker's files ------------------------------------------------- */

/*
 * Write a tracker as a record (state OPEN or CLEAN) at path, through
 * "<path>.tmp" and a rename, fsynced.  id is the COW's identity.
 */
int ubdk_cbt_save(const struct ubdk_cbt *cbt, const char *path, int state,
		  const struct ubdk_cbt_identity *id, struct ubdk_err *err);
/*
 * Mark the record at path OPEN: a header-only record with state OPEN (and
 * the tracker's name, generation, granularity and reason), fsynced when
 * sync, so that an unclean end leaves it untrusted.  Makes no message and
 * takes no memory (the UML I/O thread calls it before the first write of
 * a session).  Without sync it only refreshes a record already OPEN on
 * disk (its name after a checkpoint): a host crash may keep the older
 * OPEN one, untrusted all the same.
 */
int ubdk_cbt_mark_open(const struct ubdk_cbt *cbt, const char *path,
		       bool sync);
/*
 * Write a sealed tracker as the map from its checkpoint to `to`, at path
 * through "<path>.tmp" and a rename (no fsync: the host reads it through
 * its page cache).  id is the COW's identity at the checkpoint.
 */
int ubdk_cbt_write_map(const struct ubdk_cbt *sealed, const char *to,
		       const char *path, const struct ubdk_cbt_identity *id,
		       struct ubdk_err *err);

/*
 * Load the record at path for a COW whose identity is now `now` (its
 * device size now->backing_size).  Never trusts silently: the tracker
 * returned holds the record's map only if the record is CLEAN, intact and
 * its identity equals `now`; otherwise it is empty and inconsistent, its
 * reason (ubdk_cbt_get_info) missing, unclean, cow-changed,
 * header-changed or corrupt, keeping the record's name, generation and
 * granularity when those could be read.  A trusted record that was itself
 * inconsistent stays so.  An untrusted record is no error: why (whylen
 * bytes, may be NULL) gets a sentence naming the record and what is wrong
 * with it, an empty string when it is trusted.  err is for failures only:
 * memory running out or an impossible argument (a negative errno).
 */
int ubdk_cbt_load(const char *path, const struct ubdk_cbt_identity *now,
		  uint32_t granularity, struct ubdk_cbt **out,
		  char *why, size_t whylen, struct ubdk_err *err);

/* CRC-32 (IEEE 802.3, as zlib's crc32) of buf, continuing from crc
 * (0 to start). */
uint32_t ubdk_crc32(uint32_t crc, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* UBDK_STATIC_H */
