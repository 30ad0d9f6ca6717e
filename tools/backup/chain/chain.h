/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chain.h - chains of backup points (docs/backup-format.md, "Chains"): a
 * chain directory holds one subdirectory per point, named by its creation
 * time; a full point, then incrementals each naming its parent.  And the
 * scan of a COW against the parent's chunk table, over the candidate
 * chunks a change source (changes/changes.h) names.
 */
#ifndef UBDK_CHAIN_H
#define UBDK_CHAIN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "format/chunks.h"
#include "format/manifest.h"
#include "changes/changes.h"

#define POINT_NAME_LEN 20               /* YYYYMMDDTHHMMSS.mmmZ */
#define MAX_POINTS 4096

/* The point subdirectories of a chain (those with a manifest), oldest first. */
struct chain_list {
	char (*name)[POINT_NAME_LEN + 1];
	int n;
};

/* Whether name is a point directory's name (the pattern, not its contents). */
bool point_name_ok(const char *name);
/* 0, or -errno (the directory cannot be read) or -E2BIG (too many points). */
int chain_list(const char *chaindir, struct chain_list *l);
void chain_list_free(struct chain_list *l);

/* A new point's id (16 random bytes) and directory name (now, UTC). */
int point_id_new(uint8_t id[16]);
void point_name_now(char name[POINT_NAME_LEN + 1]);
/* 32 hex digits to 16 bytes; false if not that. */
bool point_id_parse(const char *hex, uint8_t id[16]);

/* A point's manifest and per-device tables, as a chain reads them. */
struct point {
	char dir[4096];                 /* CHAINDIR/NAME (a plain backup: its directory) */
	char name[256];                 /* NAME (a plain backup: its directory's) */
	struct manifest m;
	bool have_m;
	uint8_t id[16];
	bool incremental;
};

/*
 * Read CHAINDIR/NAME's manifest and check it is a chain point (point, kind,
 * and an incremental's parent; per device chunks and a stream).  false
 * with the problem in msg.
 */
bool point_load(const char *chaindir, const char *name, struct point *p, char *msg,
		size_t msglen);
/* The checks of point_load on a manifest read already into p->m (p->name set). */
bool point_check(struct point *p, char *msg, size_t msglen);
void point_free(struct point *p);
/* The device entry named dev ("ubd0"), or NULL. */
const struct manifest_device *point_device(const struct point *p, const char *dev);

/*
 * The points from the full one down to `name`, following parent links:
 * out[0] is the full point, out[*n - 1] is name.  false with the missing
 * or damaged link named in msg.  The caller frees each with point_free.
 */
bool chain_path(const char *chaindir, const char *name, struct point *out, int max, int *n,
		char *msg, size_t msglen);
/*
 * The same from out[0], a point loaded already (its manifest read once),
 * which ends up last; on failure every point is freed, out[0] too.
 */
bool chain_path_from(const char *chaindir, struct point *out, int max, int *n, char *msg,
		     size_t msglen);

/*
 * The chunk-by-chunk comparison of a source file (a COW, or a copy of one)
 * with the parent's table.  Chunks that differ are marked in `changed` (and
 * `zero` when they are now all zeros) and, with dst >= 0, copied to dst at
 * their offset (a sparse file of the changes, for a live guest).
 */
struct scan {
	const struct chunk_grid *g;
	const struct chunk_table *parent;
	int src, dst;
	const char *src_name, *dst_name;
	uint64_t *changed, *zero;
	uint8_t *buf;
	uint64_t read, written, nchanged;
	volatile sig_atomic_t *intr;
	char msg[512];
};

int scan_init(struct scan *s, const struct chunk_grid *g, const struct chunk_table *parent,
	      int src, const char *src_name, int dst, const char *dst_name);
void scan_free(struct scan *s);
/* Chunk i again, from the source as it is now. */
int scan_chunk(struct scan *s, uint64_t i);
/* As c says: every candidate chunk.  0 or -errno with s->msg. */
int scan_changes(struct scan *s, const struct changes *c);
/* The chunks holding the blocks set in bits (blocks of blk bytes of the file). */
int scan_blocks(struct scan *s, const uint64_t *bits, uint64_t nblocks, uint32_t blk);

#endif
