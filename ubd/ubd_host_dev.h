/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ubd_host_dev.h - what the host side of the driver shares between its
 * three files, by job: ubd_host.c opens and closes devices (kernel
 * context), ubd_host_io.c is the I/O thread, ubd_host_cbt.c a device's
 * changed-block tracking.  Host code only (USER_OBJS), like them.
 */
#ifndef UBD_HOST_DEV_H
#define UBD_HOST_DEV_H

#include <sched.h>

#include "ubd_host.h"
#include "ubdk_static.h"

struct ubdh_dev {
	struct ubdk_cow *cow;        /* a COW device, else NULL */
	int fd;                      /* a plain device: its file, else -1 */
	int sync;                    /* plain device with 's' */
	unsigned long long size;     /* bytes of the file or COW device */
	/* The thread's list of COW devices with bitmap chunks to write. */
	struct ubdh_dev *next_dirty;
	int listed;

	/*
	 * Changed-block tracking, on a writable COW device only (docs/cbt.md).
	 * The I/O thread marks the tracker before each write's data; an
	 * mconsole checkpoint, in kernel context, swaps it.  `busy` keeps
	 * the two apart: the thread holds it while it serves one of the
	 * device's requests or writes its bitmap back, the checkpoint while
	 * it works.  A spin lock of the host, not of the kernel: the thread
	 * is a host thread, and the checkpoint may run in mconsole's stop
	 * loop, where the kernel must not sleep.
	 */
	unsigned char busy;
	struct ubdk_cbt *cbt;
	char *cbt_path;              /* the record, "<cow>.cbt", absolute */
	char *cbt_why;               /* why tracking is inconsistent at open */
	int cbt_on_disk_open;        /* the record on disk says OPEN */
	int cbt_on_disk_clean;       /* the record on disk is a trusted CLEAN
	                                one equal to the tracker */
};

static inline void dev_lock(struct ubdh_dev *dev)
{
	while (__atomic_test_and_set(&dev->busy, __ATOMIC_ACQUIRE))
		sched_yield();
}

static inline void dev_unlock(struct ubdh_dev *dev)
{
	__atomic_clear(&dev->busy, __ATOMIC_RELEASE);
}

/*
 * ubd_host_cbt.c.  Load the record beside a writable COW at open (fails
 * only without memory); write it CLEAN at the end of a session; in the I/O
 * thread, mark a write's or discard's blocks before its data.
 */
int ubdh_cbt_open(struct ubdh_dev *dev, const char *file, struct ubdk_err *err);
void ubdh_cbt_close(struct ubdh_dev *dev);
void ubdh_cbt_mark(struct ubdh_dev *dev, unsigned long long off,
		   unsigned long long len);

#endif /* UBD_HOST_DEV_H */
