/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kernel_cbt.h - the tracking source of a chain's incrementals: the guest
 * kernel's changed-block tracking (docs/cbt.md) tells which blocks changed
 * since the parent point, so only their chunks are read.
 *
 * The checkpoint names are point ids (32 hex digits): a live backup on a
 * kernel with `cbt` ends, while the guest is stopped, by checkpointing
 * every tracked device under the new point's id, so the next incremental
 * finds its parent's id as the checkpoint.  In between, the checkpoints
 * "<id>.pre" (before the copy) and "<id>.rN" (the rounds while the guest
 * runs) cut the changes into the maps a live backup copies piecewise.
 *
 * Anything that is not exactly that (no `cbt` command, a device not open,
 * tracking inconsistent, another checkpoint name, a map that does not fit
 * the COW, busy) makes the comparison source the one used, with the reason
 * in b->changes.note.
 */
#ifndef UBDK_TRACK_H
#define UBDK_TRACK_H

#include <stddef.h>

struct backup;

/*
 * Live, after chain_prepare and before the copy: ask every device's
 * tracking state; with a parent and every device tracked since it, take
 * the "<id>.pre" checkpoint and make the tracking source b->changes (the
 * chunks in each device's cbt_bits).  0 or an exit status (the guest
 * stopped answering).
 */
int track_start(struct backup *b);
/* Live, running, tracking source: one more round ("<id>.rN"): rescan. */
int track_round(struct backup *b);
/*
 * Live, stopped: checkpoint every tracked device under the new point's id
 * and rescan what its map names (tracking source: the chunks changed
 * since the last round; otherwise the COW bitmap chunks the checkpoint
 * wrote back).  A failure of the tracking source there makes it compare
 * every chunk instead (still while stopped).  0 or -errno with msg.
 */
int track_final(struct backup *b, char *msg, size_t msglen);

/*
 * --offline with a parent: the record "<cow>.cbt" as the source when it is
 * CLEAN, consistent, of this very COW and names the parent.  Never fails:
 * otherwise the comparison source, with the reason.
 */
void track_offline(struct backup *b);
/*
 * --offline, the point written: a CLEAN record beside a COW that has one
 * now names the new point (nothing changed since), if the COW is still
 * what was read.  A record that cannot be written is only a warning.
 */
void track_offline_advance(struct backup *b);

#endif
