/* SPDX-License-Identifier: GPL-2.0 */
/* ubd_map.h - map-on-read, the block-layer side (docs/sharing.md). */
#ifndef UBDK_UBD_MAP_H
#define UBDK_UBD_MAP_H

#include <linux/atomic.h>
#include <linux/bvec.h>

#include "ubd_host.h"

struct ubd_map_stats {
	atomic_long_t mapped;        /* pages mapped on read, ever */
	atomic_long_t fallbacks;     /* pages that could be mapped, copied */
	atomic_long_t runs;          /* host mappings made for mapped pages */
	/* Opens of the device's files: pages mapped from one open never
	 * share a host mapping with pages of another (another open file). */
	unsigned long opens;
};

/* Size the substitution table and its budget: 0 or a negative errno. */
int ubd_map_setup(void);
/*
 * The device (owner) opened, or is about to close, its files: processes
 * may map its pages from the backing file while it is open.
 */
void ubd_map_file_open(int owner, const struct ubdh_dev *hdev,
		       const struct ubd_map_stats *st);
void ubd_map_file_close(int owner);
/* Before a read is sent: pages it reads into go back to physmem. */
void ubd_map_unshare(const struct bio_vec *bv);
/* Offer the read's page bv, at device byte dev_off, for mapping. */
void ubd_map_offer(struct ubdh_req *req, const struct bio_vec *bv,
		   u64 dev_off, u64 dev_size, struct ubd_map_stats *st);
/* The read came back: record its mapped pages for owner. */
void ubd_map_done(struct ubdh_req *req, int owner, struct ubd_map_stats *st);

#endif
