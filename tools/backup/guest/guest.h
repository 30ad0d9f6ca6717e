/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * guest.h - find a running UML guest and watch its host processes.
 *
 * A guest started with umid=NAME and uml_dir=DIR has DIR/NAME/mconsole
 * (its management socket) and DIR/NAME/pid (the host pid of its kernel
 * process).  Its ubd I/O thread and other helpers are child processes of
 * that pid sharing its file table; guest user processes are children too,
 * but always ptrace-stopped by the kernel process.
 */
#ifndef UBDK_GUEST_H
#define UBDK_GUEST_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct guest {
	char umid[NAME_MAX + 1];
	char dir[PATH_MAX];     /* the umid directory */
	char sock[108];         /* its mconsole socket */
	pid_t pid;              /* kernel process, 0 if unknown */
	char cwd[PATH_MAX];     /* its working directory, "" if unknown */
};

/*
 * Find a guest by umid (in uml_dir, default ~/.uml), by its umid
 * directory, or by the path of its mconsole socket.  -ENOENT when there is
 * no socket there; -ENAMETOOLONG.  Liveness is not checked.
 */
int guest_locate(const char *arg, const char *uml_dir, struct guest *g);

/* Make a path from the guest's command line absolute (relative to its cwd). */
int guest_abspath(const struct guest *g, const char *path, char *out, size_t len);

/*
 * Does the guest have the file dev:ino (named name) open?  1 yes; 0 no (an
 * unused device is not kept open); 2 no, but another file it opened under
 * that name (since replaced or deleted); -errno if it cannot be known.
 */
int guest_has_open(const struct guest *g, const char *name, dev_t dev, ino_t ino);

/* Is the kernel process still there?  (true when the pid is unknown) */
bool guest_alive(const struct guest *g);

/*
 * The host tasks of the guest that may do I/O: the kernel process's threads
 * and its children's threads, except those the kernel itself traces (guest
 * user processes).  Returns the count (at most max) or -errno.
 */
int guest_helper_tasks(pid_t pid, pid_t *tids, int max);

/*
 * After `stop`: wait until no host task of the guest has a request in
 * flight: each is blocked in a waiting system call (poll, read, recvfrom...)
 * with nothing queued on the descriptors it waits for, or stopped by the
 * guest kernel.  Returns 0 when idle; -ETIMEDOUT; -ESRCH if the guest is
 * gone; -EINTR if *intr was set.  `how` tells how it was decided:
 * "observed" (system calls and queues inspected), "sampled" (states only)
 * or "waited" (nothing readable: a fixed wait).
 */
int guest_wait_io_idle(const struct guest *g, int timeout_ms,
		       volatile sig_atomic_t *intr, const char **how);

#endif
