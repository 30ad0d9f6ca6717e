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
 * in b->cs.changes.note.
 */
#ifndef UBDK_KERNEL_CBT_H
#define UBDK_KERNEL_CBT_H

#include <stddef.h>

struct backup;

/*
 * The source itself is changes_kernel_cbt (changes.h).  Its begin, live:
 * ask every device's tracking state (the pause's checkpoint needs it, with
 * a parent or not); with a parent and every device tracked since it, take
 * the "<id>.pre" checkpoint: the chunks in each device's cbt_bits.  Its
 * next: one more round ("<id>.rN"), rescanned.  Offline, with a parent:
 * the record "<cow>.cbt" when it is CLEAN, consistent, of this very COW
 * and names the parent.  Otherwise the comparison source, with the reason.
 */

/*
 * Live, stopped: checkpoint every tracked device under the new point's id
 * and rescan what its map names (tracking source: the chunks changed
 * since the last round; otherwise the COW bitmap chunks the checkpoint
 * wrote back).  A failure of the tracking source there hands the run to
 * the comparison source, whose finish then reads every chunk.  0 or
 * -errno with msg.
 */
int kernel_cbt_pause(struct backup *b, char *msg, size_t msglen);
/*
 * --offline, the point written: a CLEAN record beside a COW that has one
 * now names the new point (nothing changed since), if the COW is still
 * what was read.  A record that cannot be written is only a warning.
 */
void kernel_cbt_advance(struct backup *b);

#endif
