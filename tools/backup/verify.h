/* SPDX-License-Identifier: GPL-2.0-or-later */
/* verify.h - check a backup directory against its manifest. */
#ifndef UBDK_VERIFY_H
#define UBDK_VERIFY_H

#include <stdbool.h>

#include "tool.h"

/*
 * Each file: its length and checksums, its COW header against the
 * manifest, its backing file against the header.  print: say so for each
 * (or, with -j, one JSON object on stdout).  0 or an exit status.
 */
int verify_dir(const struct options *o, const char *dir, bool print);

#endif
