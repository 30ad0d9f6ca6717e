/* SPDX-License-Identifier: GPL-2.0-or-later */
/* backup.h - the backup command: live, offline, incremental. */
#ifndef UBDK_BACKUP_H
#define UBDK_BACKUP_H

#include "tool.h"

/* uml_backup [OPTIONS] GUEST|--offline COW... DEST; an exit status. */
int backup_command(struct options *o);

#endif
