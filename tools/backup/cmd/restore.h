/* SPDX-License-Identifier: GPL-2.0-or-later */
/* restore.h - a compressed backup file back to a (sparse) COW file. */
#ifndef UBDK_RESTORE_H
#define UBDK_RESTORE_H

#include "tool.h"

/* o->input to o->output (default: the input without its suffix); 0 or an exit status. */
int restore_run(const struct options *o);

#endif
