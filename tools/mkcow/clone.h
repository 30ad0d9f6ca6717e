/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Creating many COW files for one header, atomically and fast.
 *
 * Each clone is written as an unnamed file (O_TMPFILE) in its target
 * directory; a batch of them is made durable with one syncfs() and only
 * then linked under the final names.  A crash or a kill at any point
 * leaves either complete clones or nothing under a real name.  Where
 * O_TMPFILE is not available, a hidden temporary name is used instead.
 */
#ifndef UBDK_MKCOW_CLONE_H
#define UBDK_MKCOW_CLONE_H

#include <stdbool.h>
#include <stddef.h>

#include "ubdk_cow.h"

struct clone_job {
	const struct ubdk_header *hdr;
	char *const *names;
	size_t count;
	bool force;                  /* replace existing files */
	/* Called after each batch, when not NULL. */
	void (*progress)(size_t done, size_t total);
};

/*
 * Create every name of the job.  Returns 0, or a negative errno with err
 * naming the clone that failed; *made is set to the number of clones
 * complete under their final names either way (always a prefix of names).
 */
int clone_all(const struct clone_job *job, size_t *made, struct ubdk_err *err);

#endif
