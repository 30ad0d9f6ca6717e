/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "input.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static int type_error(const struct stat *st)
{
	if (S_ISDIR(st->st_mode))
		return -EISDIR;
	return S_ISREG(st->st_mode) || S_ISBLK(st->st_mode) ? 0 : INPUT_E_TYPE;
}

int input_open(const char *path, struct stat *st)
{
	struct stat before;
	int fd, ret, flags;

	if (stat(path, &before) < 0)
		return -errno;
	ret = type_error(&before);
	if (ret < 0)
		return ret;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	/* Replaced between stat and open: judge what was opened. */
	ret = type_error(st);
	/* Blocking reads from here: a regular file or disk never waits long. */
	flags = fcntl(fd, F_GETFL);
	if (ret == 0 && (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0))
		ret = -errno;
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

const char *input_strerror(int err)
{
	if (err == INPUT_E_TYPE)
		return "not a regular file or block device";
	return strerror(-err);
}
