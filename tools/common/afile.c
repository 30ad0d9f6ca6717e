/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "afile.h"
#include "hostlock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* -1 unknown, 0 use the named fallback, 1 use O_TMPFILE. */
static int tmpfile_ok = -1;
static unsigned tmp_seq;

void afile_dir_of(const char *name, char *dir, unsigned len)
{
	const char *slash = strrchr(name, '/');

	if (!slash)
		snprintf(dir, len, ".");
	else if (slash == name)
		snprintf(dir, len, "/");
	else
		snprintf(dir, len, "%.*s", (int)(slash - name), name);
}

static int tmp_name(const char *name, char *out, size_t len)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(name, '/');
	int n;

	afile_dir_of(name, dir, sizeof(dir));
	n = snprintf(out, len, "%s/.%s.%ld.%u.tmp", dir,
		     slash ? slash + 1 : name, (long)getpid(), tmp_seq++);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int afile_open(struct afile *af, int dirfd, const char *name,
	       unsigned mode, bool readable)
{
	int acc = readable ? O_RDWR : O_WRONLY;
	char tmp[PATH_MAX];
	int ret;

	af->fd = -1;
	af->tmp = NULL;
	af->target_locked = false;
	if (tmpfile_ok < 0)
		/* Naming an unnamed file goes through /proc.  The variable
		 * lets tests exercise the fallback where O_TMPFILE works. */
		tmpfile_ok = access("/proc/self/fd", X_OK) == 0 &&
			     !getenv("UBDK_NO_TMPFILE");
	if (tmpfile_ok) {
		af->fd = openat(dirfd, ".", O_TMPFILE | acc | O_CLOEXEC, mode);
		if (af->fd >= 0)
			return 0;
		/* Only a filesystem without O_TMPFILE falls back. */
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			return -errno;
		tmpfile_ok = 0;
	}
	for (int tries = 0; tries < 100; tries++) {
		ret = tmp_name(name, tmp, sizeof(tmp));
		if (ret < 0)
			return ret;
		af->fd = open(tmp, O_CREAT | O_EXCL | acc | O_CLOEXEC, mode);
		if (af->fd >= 0) {
			af->tmp = strdup(tmp);
			if (af->tmp)
				return 0;
			afile_discard(af);
			unlink(tmp);
			return -ENOMEM;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

static int link_fd(int fd, const char *name)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) < 0 ?
	       -errno : 0;
}

int afile_publish(struct afile *af, const char *name, bool replace)
{
	char tmp[PATH_MAX];
	int ret;

	if (af->tmp) {
		if (!replace)
			return link(af->tmp, name) < 0 ? -errno : 0;
		if (rename(af->tmp, name) < 0)
			return -errno;
		free(af->tmp);
		af->tmp = NULL;
		return 0;
	}
	/* linkat() refuses an existing name: no race with other writers. */
	if (!replace)
		return link_fd(af->fd, name);
	/* rename() replaces atomically, but needs a name to move. */
	do {
		ret = tmp_name(name, tmp, sizeof(tmp));
		if (ret == 0)
			ret = link_fd(af->fd, tmp);
	} while (ret == -EEXIST);
	if (ret == 0 && rename(tmp, name) < 0) {
		ret = -errno;
		unlink(tmp);
	}
	return ret;
}

int afile_lock_target(struct afile *af, const char *name, long *holder)
{
	int fd, ret = hostlock_target(name, &fd, holder);

	if (ret == 0 && fd >= 0) {
		if (af->target_locked)
			close(af->target_fd);
		af->target_fd = fd;
		af->target_locked = true;
	}
	return ret;
}

void afile_discard(struct afile *af)
{
	if (af->fd >= 0)
		close(af->fd);
	if (af->target_locked)
		close(af->target_fd);
	af->target_locked = false;
	if (af->tmp) {
		unlink(af->tmp);
		free(af->tmp);
	}
	af->fd = -1;
	af->tmp = NULL;
}
