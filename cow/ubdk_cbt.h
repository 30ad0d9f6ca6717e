/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ubdk_cbt.h - changed-block tracking (CBT) for COW devices.
 *
 * The ubd driver tracks which blocks of a device (granularity bytes each,
 * a power of two of at least 4096) were written since a named checkpoint,
 * and keeps two files, both described byte by byte in docs/cbt.md:
 * - the record, "<cow>.cbt": what changed since the last checkpoint,
 *   between sessions, with the identity of the COW it describes (trusted
 *   only if CLEAN and that identity still matches the COW file);
 * - the map, "<cow>.cbt-map": the blocks changed between two checkpoints,
 *   written at a checkpoint for a backup tool.
 * This header reads them (ubdk_cbt(3)); the tracker itself and the
 * writers are the driver's (ubdk_static.h, not installed).
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

/* Is name a valid checkpoint name (0..63 bytes of [A-Za-z0-9._:@+-])? */
bool ubdk_cbt_name_ok(const char *name);

/* --- reading a record or map --------------------------------------------- */

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


#ifdef __cplusplus
}
#endif

#endif /* UBDK_CBT_H */
