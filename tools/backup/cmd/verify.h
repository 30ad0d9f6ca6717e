/* SPDX-License-Identifier: GPL-2.0-or-later */
/* verify.h - check backup points against their manifests. */
#ifndef UBDK_VERIFY_H
#define UBDK_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/manifest.h"
#include "tool.h"
#include "ubdk_cow.h"

/*
 * Verify DIR: a plain backup or a chain point (with its ancestors), read
 * by the point reader, or every point of a chain directory.  A line per
 * problem; print: a line per file found fine too (or, with -j, one JSON
 * object on stdout).  0 or an exit status.
 */
int verify_path(const struct options *o, const char *dir, bool print);

/*
 * A COW file's first len bytes decoded into h and checked against the
 * manifest's entry (size, backing file, its mtime, sector size, layout):
 * NULL, or the problem in problem.
 */
const char *verify_cow_head_check(const uint8_t *head, size_t len, const char *name,
			   const struct manifest_device *dv, struct ubdk_header *h, char *problem,
			   size_t plen);
/* A stream read as format fmt against the manifest's compression: NULL, or the problem. */
const char *verify_compression_check(int fmt, const char *compression, char *problem, size_t plen);

/* uml_backup verify DESTDIR|CHAINDIR|POINTDIR; an exit status. */
int verify_command(const struct options *o);
/*
 * What verify finds wrong with point `name` of chaindir (its manifest, its
 * link to its parent, each device's table and stream): NULL, or the
 * problem in msg.
 */
const char *chain_point_problem(const char *chaindir, const char *name, char *msg, size_t len);

#endif
