/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * changes.h - where a backup learns what the guest changed: one interface
 * (struct change_source), three sources.
 *
 *   changes/kernel_cbt.c  the guest kernel's changed-block tracking: its
 *                         checkpoints live, its record beside the COW offline
 *                         (an incremental's chunks since the parent point)
 *   changes/io_tracer.c   ptrace of the guest's ubd I/O thread: the blocks
 *                         written while a live copy runs
 *   changes/compare.c     no tracking: every chunk compared with the parent's
 *                         table, or a plain copy with its COW
 *
 * Whatever the source, an incremental reads and hashes every candidate
 * chunk (chain/chain.h, struct scan) and stores it only if it differs from
 * the parent: a source can only make the reading shorter, never wrong.
 */
#ifndef UBDK_CHANGES_H
#define UBDK_CHANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The manifest's "changes": which source an incremental's chunks came from. */
enum changes_kind { CHANGES_TRACKING, CHANGES_COMPARISON };
extern const char *const changes_names[2];

/*
 * The chunks an incremental must look at, for one device: `all` (the
 * comparison source: every chunk the COW has data in, and every chunk the
 * parent had), or the chunks set in `bits` (a tracking source: only these
 * can differ).  Either way each one is read and hashed, and stored only if
 * it differs from the parent.
 */
struct changes {
	enum changes_kind kind;
	bool all;
	uint64_t *bits;                 /* kind == CHANGES_TRACKING: per chunk */
	char note[256];                 /* why this source */
};

struct backup;
struct device;
struct snap_ctx;

/*
 * A source of changes for one live run, in the order the run calls it;
 * b->cs.src is the one in use.  A source that loses its hold (tracking lost,
 * the tracer gone) hands the run to changes_compare itself, saying why.
 */
struct change_source {
	/*
	 * Before the copy: *serves if the source can serve this run (if not,
	 * why says why).  0 or an exit status.
	 */
	int (*begin)(struct backup *b, bool *serves, char *why, size_t whylen);
	/* The guest running: what it changed since the last call, copied or rescanned again. */
	int (*next)(struct backup *b);
	/* The guest stopped: the last changes, into the copies.  0 or -errno with c->msg. */
	int (*finish)(struct backup *b, struct snap_ctx *c);
	/* The run is over: release what the source holds. */
	void (*end)(struct backup *b);
};

extern const struct change_source changes_kernel_cbt, changes_io_tracer, changes_compare;

/* Back to the comparison source (b->cs.changes.note says why). */
void changes_compare_all(struct backup *b);
/* The candidate chunks of device d: a tracking source's are its own. */
const struct changes *changes_of(struct backup *b, struct device *d);
/*
 * Rescan the chunks of device i holding the blocks in bits (blocks of blk
 * bytes; NULL: every candidate chunk), into its scratch copy.  0 or
 * -errno with msg.
 */
int changes_rescan(struct backup *b, int i, const uint64_t *bits, uint64_t nb, uint32_t blk,
		   char *msg, size_t msglen);

#endif
