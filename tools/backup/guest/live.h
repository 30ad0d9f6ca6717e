/* SPDX-License-Identifier: GPL-2.0-or-later */
/* live.h - the backup of a running guest, through its mconsole. */
#ifndef UBDK_LIVE_H
#define UBDK_LIVE_H

#include "run/run.h"

/* b->o->guest's devices into b->o->dest; 0 or an exit status. */
int backup_live(struct backup *b);

#endif
