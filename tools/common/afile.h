/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Files that appear under their final name only when complete.
 *
 * The file is written unnamed (O_TMPFILE) and linked under its name once
 * the caller made it durable, so a crash or kill at any point leaves no
 * partial file under a real name.  Where O_TMPFILE or /proc is missing,
 * a hidden temporary name next to the final one is used instead.
 */
#ifndef UBDK_AFILE_H
#define UBDK_AFILE_H

#include <stdbool.h>

struct afile {
	int fd;
	char *tmp;      /* hidden temporary name, named fallback only */
	/* afile_lock_target's lock on the file to be replaced. */
	int target_fd;
	bool target_locked;
};

/*
 * Open a new unnamed file in the directory dirfd (which must be the
 * directory of name, or AT_FDCWD for a name without one) for writing.
 * Returns 0 or a negative errno.
 */
int afile_open(struct afile *af, int dirfd, const char *name,
	       unsigned mode, bool readable);
/*
 * Link the file under name.  Without replace, an existing name fails with
 * -EEXIST and is left alone; with it, the name is replaced atomically.
 */
int afile_publish(struct afile *af, const char *name, bool replace);
/*
 * After afile_open, before publishing over an existing name: take the
 * kernel's write lock on the file name is now (hostlock_target), held
 * until afile_discard, i.e. until the replacement is in place.  0 (also
 * when there is nothing to lock), -EAGAIN while a guest or server holds
 * a lock on it (*holder its pid, -1 if not known), or a negative errno.
 */
int afile_lock_target(struct afile *af, const char *name, long *holder);
/*
 * Close, remove the temporary name if any, release the target's lock.
 * Safe to call twice.
 */
void afile_discard(struct afile *af);

/* Directory part of name ("." if none), for opening dirfd. */
void afile_dir_of(const char *name, char *dir, unsigned len);

#endif
