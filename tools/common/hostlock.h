/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kernel's host locks, from the tools' side.
 *
 * A UML guest takes an fcntl lock on the whole of each file it opens: a
 * write lock on the file it writes, a read lock on a backing file (see
 * docs/format.md); nbdkit-ubd-plugin takes the same through the library.
 * Tools that replace such a file, or read one that must not change under
 * them, take the same kind of lock, so that they fail while a guest or a
 * server has the file instead of losing its writes.
 */
#ifndef UBDK_HOSTLOCK_H
#define UBDK_HOSTLOCK_H

#include <stdbool.h>

#include "ubdk_cow.h"

/*
 * The pid of a process whose lock on fd conflicts with one of that kind
 * (write: any lock; read: a write lock), -1 if its pid is not known (it
 * runs in another pid namespace), 0 if there is none.
 */
long hostlock_holder(int fd, bool write);

/*
 * Take a lock of that kind on fd, as the kernel does (non-blocking): 0, or
 * -EAGAIN while another process holds a conflicting one (*holder as
 * hostlock_holder says, never 0), or another negative errno.
 */
int hostlock_take(int fd, bool write, long *holder);

/*
 * Before name is replaced by a rename over it: a write lock on the file
 * it names now, its descriptor in *fd, to be closed only once the
 * replacement is in place, so that no guest or server takes the file in
 * between.  *fd is -1 when there is nothing to lock: no such file, or not
 * a regular file (a symlink is replaced itself, its target left alone).
 * A file this process may not write is read-locked instead and refused
 * while anyone else holds any lock on it.  Returns 0, -EAGAIN as
 * hostlock_take, or a negative errno (the file cannot be opened: it might
 * be in use, so it is not replaced).
 */
int hostlock_target(const char *name, int *fd, long *holder);

/*
 * Fill err for a file that is in use: "NAME: in use: process PID holds a
 * lock on it (a running guest or NBD server?); TAIL", code UBDK_E_LOCKED.
 * Returns -EAGAIN.
 */
int hostlock_fail(struct ubdk_err *err, const char *name, long holder,
		  const char *tail);

/*
 * For a command about to replace name with af (-f): afile_lock_target,
 * a failure reported in one line.  0, -EAGAIN (in use), or another
 * negative errno.
 */
struct afile;
int hostlock_replace(struct afile *af, const char *name);

#endif
