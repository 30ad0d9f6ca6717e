/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pairio.h - a libext2fs I/O manager that reads an image through struct
 * img: the merged view of a COW and its backing file (without writing a
 * merged copy anywhere), the backing file alone, or a raw image.  It is
 * read-only: every write returns EROFS.
 *
 * ext2fs_open2() finds its image by name: register the image first and
 * pass the name returned.  The "offset=BYTES" option (a partition) is
 * supported, as in unix_io.
 */
#ifndef IMGSTAT_PAIRIO_H
#define IMGSTAT_PAIRIO_H

#include <stddef.h>

#include <ext2fs/ext2fs.h>

#include "img.h"

enum pio_source {
	PIO_VIEW,       /* img_pread: the merged view, or a raw image */
	PIO_BACKING,    /* the COW's backing file alone */
};

extern io_manager pio_manager;

/* Register an image; writes the name to open into name. 0 or -ENOSPC. */
int pio_register(struct img *im, int source, char *name, size_t len);
void pio_unregister(const char *name);

#endif /* IMGSTAT_PAIRIO_H */
