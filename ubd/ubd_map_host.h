/* SPDX-License-Identifier: GPL-2.0 */
/* ubd_map_host.h - map-on-read in the I/O thread (host side only). */
#ifndef UBDK_UBD_MAP_HOST_H
#define UBDK_UBD_MAP_HOST_H

#include "ubd_host.h"
#include "ubdk_cow.h"

/*
 * Serve a read of a COW device whose offered pages (req->map) may be
 * mapped: maps each page whose sectors all read from the backing file (or
 * as zeros), sets its state, and copies the rest through the library.
 * Called with the device's lock held.  0 or a negative errno.
 */
int ubdh_map_read(struct ubdk_cow *cow, struct ubdh_req *req);

#endif
