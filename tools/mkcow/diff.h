/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * From an image back to a COW: a new COW over a backing file that holds
 * exactly the sectors where the image differs from the backing.
 *
 * Both files are walked by their data extents, so that what is a hole in
 * both is never read, and a hole on one side equals zeros on the other.
 * Where a block differs, it is compared again a sector at a time so that
 * the COW gets only the sectors that changed.  The COW is written as an
 * unnamed file and linked under its name only when complete and durable.
 *
 * Both inputs are read-locked as the kernel locks a backing file, so that
 * a guest writing either makes the diff refuse; a writer that takes no
 * lock is caught by the inputs' size, mtime and ctime (nanoseconds),
 * compared before the walk and again before the COW gets its name.
 */
#ifndef UBDK_MKCOW_DIFF_H
#define UBDK_MKCOW_DIFF_H

#include <stdbool.h>
#include <stdint.h>

#include "ubdk_cow.h"

struct diff_stats {
	uint64_t sectors_compared;   /* the device's sectors, all walked */
	uint64_t sectors_written;    /* sectors the new COW holds */
	uint64_t bytes_read;         /* from the image and the backing */
	uint64_t done;               /* bytes of the device walked so far */
};

struct diff_job {
	const struct ubdk_header *hdr; /* the new COW's header */
	const char *cow;             /* its name */
	const char *image, *backing; /* names, for messages */
	int image_fd, backing_fd;    /* both hdr->size bytes, read-only */
	bool force;                  /* replace an existing COW (locked first) */
	/* Called after each block compared, when not NULL. */
	void (*progress)(const struct diff_stats *st, uint64_t total);
	/* A test hook: raise signal after signal_after runs written (0: off). */
	unsigned long signal_after;
	int signal;
};

/*
 * Compare and make the COW.  Returns 0, or a negative errno with err's
 * message naming the file that failed (-EEXIST: the COW name appeared
 * meanwhile and force is off; err->code UBDK_E_LOCKED: an input or the
 * COW to replace is in use; -ESTALE: an input changed during the diff).
 * Nothing is left under the COW's name on failure.  *st is filled either
 * way.
 */
int diff_make(const struct diff_job *job, struct diff_stats *st,
	      struct ubdk_err *err);

#endif
