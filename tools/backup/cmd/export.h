/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * export.h - `uml_backup export POINTDIR [-d DEV]`: a device's COW file at
 * a point, as an uncompressed extent stream on stdout (for restic and
 * other deduplicating stores; `uml_backup restore -` reads it back).
 */
#ifndef UBDK_EXPORT_H
#define UBDK_EXPORT_H

#include "tool.h"

/* o->dest is POINTDIR, o->devices[0] the device (if given); an exit status. */
int export_point(const struct options *o);

#endif
