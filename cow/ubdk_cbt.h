/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ubdk_cbt.h - changed-block tracking (CBT) for COW devices.
 *
 * A tracker records which blocks of a device (granularity bytes each, a
 * power of two of at least 4096) were written since a named checkpoint.
 * Memory follows the blocks marked, not the device size: the map is a
 * sparse two-level bitmap whose 4 KiB leaves are taken from ubdk_os_map()
 * on first use (an 8 TiB device at 64 KiB starts at a 32 KiB index).
 *
 * Two files hold trackers, both described byte by byte in docs/cbt.md:
 * - the record, "<cow>.cbt": the tracker of a device between sessions,
 *   with the identity of the COW it describes (trusted only if CLEAN and
 *   that identity still matches the COW file);
 * - the map, "<cow>.cbt-map": the blocks changed between two checkpoints,
 *   written at a checkpoint for a backup tool.
 *
 * Conventions as in ubdk_cow.h: 0 (or a count) or a negative errno, an
 * optional struct ubdk_err with a message naming the file.
 */
#ifndef UBDK_CBT_H
#define UBDK_CBT_H

#include "ubdk_cow.h"

#ifdef __cplusplus
extern "C" {
#endif

#define UBDK_CBT_GRANULARITY 65536U      /* default block size */
#define UBDK_CBT_GRANULARITY_MIN 4096U
#define UBDK_CBT_GRANULARITY_MAX (1U << 30)
/* Room for a checkpoint name, NUL included: names are 0..63 bytes of
 * [A-Za-z0-9._:@+-] (ubdk_cbt_name_ok). */
#define UBDK_CBT_NAME_MAX 64U
#define UBDK_CBT_RECORD_SUFFIX ".cbt"
#define UBDK_CBT_MAP_SUFFIX ".cbt-map"

/* File formats (docs/cbt.md). */
#define UBDK_CBT_VERSION 1U
#define UBDK_CBT_HEADER_LEN 256U
#define UBDK_CBT_RUN_LEN 16U

enum ubdk_cbt_kind {
	UBDK_CBT_KIND_RECORD = 1,   /* "<cow>.cbt", magic "UBDKCBTR" */
	UBDK_CBT_KIND_MAP = 2,      /* "<cow>.cbt-map", magic "UBDKCBTM" */
};

/* State of a record on disk. */
enum ubdk_cbt_state {
	UBDK_CBT_STATE_NONE = 0,    /* maps */
	UBDK_CBT_STATE_OPEN = 1,    /* a session may be writing: untrusted */
	UBDK_CBT_STATE_CLEAN = 2,   /* written at a clean close */
};

/*
 * Why the changes since the checkpoint are not all known.  0 means they
 * are (consistent).  Kept by the tracker, written in both files, cleared
 * only by a checkpoint.
 */
enum ubdk_cbt_reason {
	UBDK_CBT_CONSISTENT = 0,
	UBDK_CBT_MISSING,           /* no record beside the COW */
	UBDK_CBT_UNCLEAN,           /* record OPEN: the last session did not
	                               end cleanly (SIGKILL, host crash) */
	UBDK_CBT_COW_CHANGED,       /* COW size or mtime differ from the
	                               record: something else wrote it */
	UBDK_CBT_HEADER_CHANGED,    /* COW header's backing size or mtime, or
	                               the device size, differ */
	UBDK_CBT_CORRUPT,           /* record unreadable: magic, version,
	                               checksum, fields */
	UBDK_CBT_LOST,              /* a mark failed (no memory) */
	UBDK_CBT_IO_ERROR,          /* the record could not be marked OPEN */
	UBDK_CBT_REASON__COUNT
};

/* "consistent", "missing", "unclean", "cow-changed", "header-changed",
 * "corrupt", "lost", "io-error"; "unknown" out of range. */
const char *ubdk_cbt_reason_name(int reason);

/* What identifies the COW a record describes. */
struct ubdk_cbt_identity {
	uint64_t cow_size;          /* the COW file's size */
	int64_t cow_mtime_ns;       /* its mtime in ns since the epoch */
	uint64_t backing_size;      /* the COW header's size field */
	uint32_t backing_mtime;     /* the COW header's mtime field */
};

/* The identity of an open COW now (fstat of its file, its header). */
int ubdk_cbt_identity_of(const struct ubdk_cow *cow,
			 struct ubdk_cbt_identity *id, struct ubdk_err *err);

/* The header of a record or map file, or the state of a tracker. */
struct ubdk_cbt_info {
	int kind;                   /* enum ubdk_cbt_kind; 0 for a tracker */
	uint32_t version;
	uint32_t state;             /* enum ubdk_cbt_state */
	uint32_t reason;            /* enum ubdk_cbt_reason, 0 = consistent */
	uint32_t granularity;
	uint64_t device_size;
	uint64_t generation;        /* checkpoints taken so far */
	struct ubdk_cbt_identity id;
	uint64_t blocks;            /* set blocks */
	uint64_t runs;              /* runs of set blocks in the file */
	char name[UBDK_CBT_NAME_MAX]; /* record, tracker: the checkpoint
	                                 changes are tracked since; map: the
	                                 checkpoint it ends at ("to") */
	char from[UBDK_CBT_NAME_MAX]; /* map: the previous checkpoint */
};

/* --- the tracker (in memory) --------------------------------------------- */

struct ubdk_cbt;

/* Is name a valid checkpoint name (0..63 bytes of [A-Za-z0-9._:@+-])? */
bool ubdk_cbt_name_ok(const char *name);

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

/* --- files ---------------------------------------------------------------- */

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
 * its identity equals `now`; otherwise it is empty and inconsistent
 * (missing, unclean, cow-changed, header-changed, corrupt), keeping the
 * record's name, generation and granularity when those could be read, and
 * why says why (why->code 0 when trusted).  A trusted record that was
 * itself inconsistent stays so.  Fails only when memory runs out or an
 * argument is impossible.
 */
int ubdk_cbt_load(const char *path, const struct ubdk_cbt_identity *now,
		  uint32_t granularity, struct ubdk_cbt **out,
		  struct ubdk_err *why);

/*
 * Read a record or map file: ubdk_cbt_file_open checks all of it (magic,
 * version, header fields, length, runs sorted and inside the device, the
 * checksum) and fills info; then ubdk_cbt_file_next returns its runs in
 * order (1 per run, 0 at the end).  Errors name the file: "bad magic",
 * "checksum mismatch", "granularity ...".  kind 0 accepts both kinds.
 * device_size is the size of the device the file is meant for (the COW
 * header's size), 0 if unknown: a header counting more runs than that
 * device has blocks is refused before the rest of the file is read.
 */
struct ubdk_cbt_file;
int ubdk_cbt_file_open(const char *path, int kind, uint64_t device_size,
		       struct ubdk_cbt_file **out, struct ubdk_cbt_info *info,
		       struct ubdk_err *err);
int ubdk_cbt_file_next(struct ubdk_cbt_file *f, uint64_t *start,
		       uint64_t *count, struct ubdk_err *err);
void ubdk_cbt_file_close(struct ubdk_cbt_file *f);

/* CRC-32 (IEEE 802.3, as zlib's crc32) of buf, continuing from crc
 * (0 to start). */
uint32_t ubdk_crc32(uint32_t crc, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* UBDK_CBT_H */
