/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * writer.h - what follows a run's copy: chunk tables, streams, files and
 * the manifest (files appear under their names only when complete, the
 * manifest last).
 */
#ifndef UBDK_WRITER_H
#define UBDK_WRITER_H

struct backup;

/* Live, with a parent: hash the COWs against the parent's tables, while the guest runs. */
int writer_precopy(struct backup *b);
/* The copies are complete: tables, streams, files, manifest.  0 or an exit status. */
int writer_finish(struct backup *b);

#endif
