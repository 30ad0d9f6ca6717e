/* SPDX-License-Identifier: GPL-2.0-or-later */
/* imgstat.h - the modes of uml_imgstat, each writing one part of a report. */
#ifndef IMGSTAT_H
#define IMGSTAT_H

#include <stdbool.h>
#include <stdint.h>

#include "img.h"
#include "out.h"
#include "quote.h"

/* Exit statuses, documented in uml_imgstat(1). */
enum {
	ST_OK = 0,
	ST_PROBLEMS = 1,      /* --check found problems */
	ST_FAILED = 2,        /* usage error, or a file could not be examined */
};

struct opts {
	bool stat, map, check, files, json, strict;
	bool ignore_csum;      /* --files: trust metadata with bad checksums */
	const char *backing;
	uint64_t align, gap;   /* --map */
};

/* Each returns an exit status for its file. */
int mode_stat(struct out *o, struct img *im, const struct opts *op);
int mode_map(struct out *o, struct img *im, const struct opts *op);
int mode_check(struct out *o, struct img *im, const struct opts *op);
int mode_files(struct out *o, struct img *im, const struct opts *op);

/* Shared helpers. */
const char *layout_description(const struct img *im);
/* ok, missing, unreadable, size-mismatch, mtime-mismatch, size-and-mtime-mismatch */
const char *backing_status(const struct img *im);
/* Why the backing file could not be opened (im->bfd < 0). */
const char *backing_error(const struct img *im);
/* "uml_mkcow --rebase BACKING COW" with both shell-quoted (NULL: BACKING). */
#define REBASE_COMMAND_SIZE (2 * (4 * 4096 + 4) + 32)
const char *rebase_command(const char *backing, const char *cow, char *buf,
			   size_t len);

#endif /* IMGSTAT_H */
