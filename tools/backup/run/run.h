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
#include "guest/session.h"
#include "guest/snap.h"
#include "tool.h"
#include "ubdk_cow.h"

/* A device's files in DESTDIR, each unnamed until published. */
struct device_out {
	struct afile af;                /* the copy (a chain point's: its scratch file) */
	struct afile zf;                /* the stream written after the copy */
	char file[64];                  /* name in DESTDIR */
	bool published;
	struct afile tf;                /* the chunk table */
	char chunks_file[64];
	bool tpublished;
};

/*
 * A device's pipeline after the copy: the chunk scan against the parent's
 * table (--incremental), the stream and table writers, what they counted.
 */
struct device_pipe {
	struct chunk_grid grid;
	struct chunk_table ptab;        /* the parent's table */
	struct scan scan;
	bool scanning;
	struct emit_result er;          /* the new stream's digest and table */
	uint64_t paused_bytes, stored_bytes, cow_sectors;
};

/* The guest kernel's changed-block tracking of a device (changes/kernel_cbt.c). */
struct device_cbt {
	bool tracked;                   /* the guest's kernel tracks it (`cbt ubdN` works) */
	char checkpoint[64];            /* as we last set it */
	uint64_t *bits;                 /* tracking source: grid chunks to read */
	uint64_t blocks;                /* blocks in the maps read so far */
};

/* One device of a run: its COW file, then what becomes of it. */
struct device {
	char name[16];
	int unit;
	char cow[PATH_MAX];
	struct ubdk_header hdr;
	struct ubdk_geometry geo;       /* its data offset: the chunk grid's origin */
	int src;
	struct stat st;
	uint64_t data_bytes;            /* allocated in the COW */
	struct device_out out;
	struct device_pipe pipe;
	struct device_cbt cbt;
};

/* Where a run learns what changed (changes/changes.h): its source's state. */
struct run_changes {
	const struct change_source *src;        /* live: where the copy learns what changed */
	struct changes changes;
	struct iotrack *track;                  /* the I/O-thread tracer's */
	uint64_t tracked_writes;
	int track_round;                /* kernel tracking: checkpoints "<id>.rN" taken */
};

/* --incremental: the new point's name in the chain, and its parent. */
struct run_chain {
	char point_name[POINT_NAME_LEN + 1];
	bool has_parent;
	struct point parent;
};

/* The run: its devices, destination, method, times, id, source of changes, chain. */
struct backup {
	const struct options *o;
	bool live;
	struct guest_session gs;        /* live only */
	struct device dev[MAX_DEV];
	int ndev;
	int dirfd;
	char dest[PATH_MAX];
	bool made_dest;                 /* we created DESTDIR */
	int method;
	char method_note[300];
	double t_start, t_precopy, t_sync, pause_ms, t_post, t_compress, t_fsync;
	char created[32];
	uint8_t point[16];              /* random: this backup's id, a plain one's too */
	char point_hex[33];
	struct run_changes cs;
	struct run_chain chain;
};

void backup_init(struct backup *b, const struct options *o, bool live);
/* After the run: close what is open; on failure, remove what it published. */
void backup_end(struct backup *b, int status);

/* A new entry in b->dev (not counted yet) for the COW file at d->cow. */
struct device *backup_device_new(struct backup *b, int unit);
/* d's chunk grid, from its size and data offset; 0 or an exit status. */
int backup_device_grid(struct device *d);
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
