/* SPDX-License-Identifier: GPL-2.0-or-later */
/* parent.h - the destination of an incremental: its parent point and its own directory. */
#ifndef UBDK_PARENT_H
#define UBDK_PARENT_H

struct backup;

/*
 * --incremental: pick the parent (the newest point of the chain in
 * o->dest), check it is of this guest, its devices and master, and name
 * the new point's directory in b->dest.  0 or an exit status.
 */
int parent_prepare(struct backup *b);

#endif
