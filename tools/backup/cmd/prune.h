/* SPDX-License-Identifier: GPL-2.0-or-later */
/* prune.h - `uml_backup prune --keep N CHAINDIR`. */
#ifndef UBDK_PRUNE_H
#define UBDK_PRUNE_H

#include "tool.h"

/* The oldest kept point rewritten as a full one, the older ones removed; an exit status. */
int prune_run(const struct options *o);

#endif
