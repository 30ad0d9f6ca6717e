/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * run.h - a backup run: the devices, the destination directory, the
 * copy's method and source of changes.  guest/live.c copies from a running
 * guest, cmd/backup.c from files nobody uses; run/writer.c writes what
 * follows the copy (chunk tables, streams, the manifest).
 */
#ifndef UBDK_RUN_H
#define UBDK_RUN_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "afile.h"
#include "chain/chain.h"
#include "chain/point.h"
#include "guest/guest.h"
#include "guest/mconsole.h"
#include "guest/snap.h"
#include "guest/watchdog.h"
#include "tool.h"
#include "ubdk_cow.h"

struct device {
	char name[16];
	int unit;
	char cow[PATH_MAX];
	struct ubdk_header hdr;
	uint64_t data_offset;           /* of the COW: the chunk grid's origin */
	int src;
	struct stat st;
	uint64_t data_bytes;            /* allocated in the COW */
	struct afile af;          /* the copy */
	struct afile zf;          /* its compressed form */
	char file[64];                  /* name in DESTDIR */
	bool published;
	uint64_t paused_bytes, stored_bytes, cow_sectors;
	struct ubdk_geometry geo;
	/* --incremental: the parent's table, the scan against it, the new table */
	struct chunk_grid grid;
	struct chunk_table ptab;
	struct scan scan;
	bool scanning;
	struct afile tf;
	char chunks_file[64];
	bool tpublished;
	struct emit_result er;
	/* changed-block tracking (changes/kernel_cbt.c) */
	bool cbt;                       /* the guest's kernel tracks it (`cbt ubdN` works) */
	char cbt_name[64];              /* its checkpoint as we last set it */
	uint64_t *cbt_bits;             /* tracking source: grid chunks to read */
	uint64_t cbt_blocks;            /* blocks in the maps read so far */
};

struct backup {
	const struct options *o;
	struct guest g;
	struct mconsole mc;
	bool live;
	char kernel[256];
	struct device dev[MAX_DEV];
	int ndev;
	int dirfd;
	char dest[PATH_MAX];
	bool made_dest;                 /* we created DESTDIR */
	int method;
	char method_note[300];
	const char *io_idle;
	bool synced, drained;
	long long dirty_kb;
	double t_start, t_precopy, t_sync, pause_ms, t_post, t_compress, t_fsync;
	char created[32];
	uint8_t point[16];              /* random: this backup's id */
	char point_hex[33];
	uint64_t tracked_writes;
	struct watchdog wd;
	struct iotrack *track;
	const struct change_source *src;       /* live: where the copy learns what changed */
	const char *after;              /* once stopped: what the guest does now */
	/* --incremental: the chain directory, this point, its parent */
	char point_name[POINT_NAME_LEN + 1];
	uint8_t point_id[16];
	bool has_parent;
	struct point parent;
	struct changes changes;
	int track_round;                /* checkpoints "<id>.rN" taken */
};

void backup_init(struct backup *b, const struct options *o, bool live);
/* After the run: close what is open; on failure, remove what it published. */
void backup_end(struct backup *b, int status);

/* A new entry in b->dev (not counted yet) for the COW file at d->cow. */
struct device *backup_device_new(struct backup *b, int unit);
/* Open d->cow for copying and read its header; 0 or an exit status. */
int backup_open_source(struct device *d);
int backup_read_header(struct device *d, const char *what);

/* DESTDIR and a file in it for each copy; 0 or an exit status. */
int backup_prepare_dest(struct backup *b);
/* A copy that cannot fit is refused before the guest is touched. */
int backup_check_space(struct backup *b);
/* The exit status for snap's error ret (after its message). */
int backup_dest_error(const struct snap_ctx *c, int ret);
void backup_snap_of(struct device *d, struct snap_file *f);
/*
 * With --method auto or reflink: M_REFLINK if every copy could share the
 * COW's extents (they then do), else M_AUTO.  0 or an exit status.
 */
int backup_try_reflink(struct backup *b);
/* Now, UTC, ISO 8601 with milliseconds: the instant of the backup. */
void backup_utc_now(char *buf, size_t len);

#endif
