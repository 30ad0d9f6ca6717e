/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "hostlock.h"
#include "afile.h"
#include "cli.h"
#include "quote.h"
#include "ubdk_os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

long hostlock_holder(int fd, bool write)
{
	struct flock fl = { .l_type = write ? F_WRLCK : F_RDLCK,
			    .l_whence = SEEK_SET };

	if (fcntl(fd, F_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
		return 0;
	return fl.l_pid > 0 ? (long)fl.l_pid : -1;
}

int hostlock_take(int fd, bool write, long *holder)
{
	/* The library's own call: exactly the lock the kernel takes. */
	int ret = ubdk_os_lock(fd, write);

	*holder = 0;
	if (ret == -EAGAIN) {
		*holder = hostlock_holder(fd, write);
		/* Released meanwhile: still say who it was not. */
		if (*holder == 0)
			*holder = -1;
	}
	return ret;
}

int hostlock_target(const char *name, int *fd, long *holder)
{
	/* O_NONBLOCK: a FIFO swapped in is not waited on. */
	const int flags = O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC;
	struct stat st;
	bool writable = true;
	int f, ret;

	*fd = -1;
	*holder = 0;
	/* Only a regular file is locked: a device node is never opened. */
	if (lstat(name, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISREG(st.st_mode))
		return 0;
	f = open(name, O_RDWR | flags);
	if (f < 0 && (errno == EACCES || errno == EROFS || errno == ETXTBSY)) {
		writable = false;
		f = open(name, O_RDONLY | flags);
	}
	if (f < 0)
		return errno == ENOENT || errno == ELOOP ? 0 : -errno;
	if (fstat(f, &st) < 0) {
		ret = -errno;
		close(f);
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		close(f);
		return 0;
	}
	/*
	 * A read lock keeps writers out from now on; a reader that came
	 * first is found by asking who holds any lock.
	 */
	ret = hostlock_take(f, writable, holder);
	if (ret == 0 && !writable && (*holder = hostlock_holder(f, true)))
		ret = -EAGAIN;
	if (ret < 0) {
		close(f);
		return ret;
	}
	*fd = f;
	return 0;
}

int hostlock_fail(struct ubdk_err *err, const char *name, long holder,
		  const char *tail)
{
	char who[48];

	if (holder > 0)
		snprintf(who, sizeof(who), "process %ld", holder);
	else
		snprintf(who, sizeof(who), "another process");
	err->code = UBDK_E_LOCKED;
	err->errnum = EAGAIN;
	err->file = UBDK_FILE_NONE;
	snprintf(err->msg, sizeof(err->msg), "%s: in use: %s holds a lock on "
		 "it (a running guest or NBD server?); %s", name, who, tail);
	return -EAGAIN;
}

int hostlock_replace(struct afile *af, const char *name)
{
	struct ubdk_err err = { 0 };
	long holder;
	int ret = afile_lock_target(af, name, &holder);

	if (ret == -EAGAIN) {
		hostlock_fail(&err, name, holder, "not replaced");
		cli_report(&err);
	} else if (ret < 0) {
		cli_error("%s: cannot lock it to replace it: %s", quote_name(name),
			  strerror(-ret));
	}
	return ret;
}
