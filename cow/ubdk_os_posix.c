/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The POSIX side of ubdk_os.h, used by the host tools. */
#define _GNU_SOURCE
#include "ubdk_os.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ubdk_os_open(const char *path, int mode, unsigned perm, int *fd)
{
	/* O_NONBLOCK: a FIFO named by a user or a header must not block the
	 * open; callers fstat and refuse it.  Cleared again right after. */
	int flags = O_CLOEXEC | O_NONBLOCK |
		    ((mode & UBDK_OS_RDWR) ? O_RDWR : O_RDONLY);

	if (mode & UBDK_OS_CREATE)
		flags |= O_CREAT;
	if (mode & UBDK_OS_EXCL)
		flags |= O_EXCL;
	if (mode & UBDK_OS_TRUNC)
		flags |= O_TRUNC;
	*fd = open(path, flags, (mode_t)perm);
	if (*fd < 0)
		return -errno;
	if (fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		int ret = -errno;

		close(*fd);
		*fd = -1;
		return ret;
	}
	return 0;
}

int ubdk_os_close(int fd)
{
	/* Linux closes the descriptor even when close() reports an error. */
	return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

int ubdk_os_pread(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
	size_t done = 0;

	if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
		return -EOVERFLOW;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

int ubdk_os_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
		return -EFBIG;
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
				   (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int fill_stat(int fd, const struct stat *sb, struct ubdk_os_stat *st)
{
	st->mtime = (int64_t)sb->st_mtime;
	st->size = (uint64_t)sb->st_size;
	if (S_ISREG(sb->st_mode)) {
		st->type = UBDK_OS_REG;
	} else if (S_ISDIR(sb->st_mode)) {
		st->type = UBDK_OS_DIR;
	} else if (S_ISBLK(sb->st_mode)) {
		st->type = UBDK_OS_BLK;
		if (fd >= 0) {
			off_t end = lseek(fd, 0, SEEK_END);

			if (end < 0)
				return -errno;
			st->size = (uint64_t)end;
		}
	} else {
		st->type = UBDK_OS_OTHER;
	}
	return 0;
}

int ubdk_os_fstat(int fd, struct ubdk_os_stat *st)
{
	struct stat sb;

	if (fstat(fd, &sb) < 0)
		return -errno;
	return fill_stat(fd, &sb, st);
}

int ubdk_os_stat(const char *path, struct ubdk_os_stat *st)
{
	struct stat sb;
	int fd, err;

	if (stat(path, &sb) < 0)
		return -errno;
	if (!S_ISBLK(sb.st_mode))
		return fill_stat(-1, &sb, st);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = fill_stat(fd, &sb, st);
	close(fd);
	return err;
}

int ubdk_os_fsync(int fd)
{
	return fsync(fd) < 0 ? -errno : 0;
}

int ubdk_os_unlink(const char *path)
{
	return unlink(path) < 0 ? -errno : 0;
}

int ubdk_os_lock(int fd, bool write)
{
	struct flock lock = {
		.l_type = write ? F_WRLCK : F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0,
	};

	if (fcntl(fd, F_SETLK, &lock) < 0)
		return errno == EACCES ? -EAGAIN : -errno;
	return 0;
}

int ubdk_os_realdir(const char *dir, char *out, size_t outlen)
{
	char *real;
	struct stat sb;

	if (dir[0] == '\0')
		return -ENOENT;
	real = realpath(dir, NULL);
	if (!real)
		return -errno;
	if (stat(real, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		free(real);
		return -ENOTDIR;
	}
	if (strlen(real) + 1 > outlen) {
		free(real);
		return -ENAMETOOLONG;
	}
	strcpy(out, real);
	free(real);
	return 0;
}

int ubdk_os_getcwd(char *out, size_t outlen)
{
	return getcwd(out, outlen) ? 0 : -errno;
}

void *ubdk_os_alloc(size_t len)
{
	return malloc(len ? len : 1);
}

void *ubdk_os_zalloc(size_t len)
{
	return calloc(1, len ? len : 1);
}

void ubdk_os_free(void *p)
{
	free(p);
}
