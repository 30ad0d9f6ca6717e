// SPDX-License-Identifier: GPL-2.0
/*
 * ubdk_os_uml.c - cow/ubdk_os.h for the format library inside a UML kernel.
 *
 * Host code (a USER_OBJ), called in kernel context only (opening, creating,
 * rebasing, closing; the I/O thread uses the descriptors directly).  It
 * differs from cow/ubdk_os_posix.c where UML requires it:
 *
 * - Memory: UML links the kernel with --wrap=malloc/free and tells kernel
 *   from libc memory by its address.  libc functions that allocate
 *   internally (realpath(p, NULL), ...) hand back memory that the wrapped
 *   free() may take for kernel memory, so nothing here lets libc allocate
 *   for us: allocation is the wrapped malloc (kmalloc or vmalloc).
 * - Stack: kernel stacks are 16 KiB and the library already keeps 4 KiB
 *   buffers on them, so the directory is resolved through /proc/self/fd
 *   rather than realpath(), which wants another 3 KiB or more.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ubdk_os.h"

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
	do {
		*fd = open(path, flags, (mode_t)perm);
	} while (*fd < 0 && errno == EINTR);
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
	return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

int ubdk_os_pread(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done,
			  (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
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
	ssize_t n;

	while (done < len) {
		n = pwrite(fd, (const char *)buf + done, len - done,
			   (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int to_os_stat(int fd, const struct stat *sb, struct ubdk_os_stat *st)
{
	st->size = (uint64_t)sb->st_size;
	st->mtime = (int64_t)sb->st_mtime;
	if (S_ISREG(sb->st_mode)) {
		st->type = UBDK_OS_REG;
	} else if (S_ISDIR(sb->st_mode)) {
		st->type = UBDK_OS_DIR;
	} else if (S_ISBLK(sb->st_mode)) {
		off_t end;

		st->type = UBDK_OS_BLK;
		if (fd < 0)
			return 0;
		end = lseek(fd, 0, SEEK_END);
		if (end < 0)
			return -errno;
		st->size = (uint64_t)end;
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
	return to_os_stat(fd, &sb, st);
}

int ubdk_os_stat(const char *path, struct ubdk_os_stat *st)
{
	struct stat sb;
	int fd, ret;

	if (stat(path, &sb) < 0)
		return -errno;
	if (!S_ISBLK(sb.st_mode))
		return to_os_stat(-1, &sb, st);
	/* A block device's size is where its end is. */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = to_os_stat(fd, &sb, st);
	close(fd);
	return ret;
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
	struct flock fl = {
		.l_type = write ? F_WRLCK : F_RDLCK,
		.l_whence = SEEK_SET,
	};

	if (fcntl(fd, F_SETLK, &fl) == 0)
		return 0;
	return errno == EACCES || errno == EAGAIN ? -EAGAIN : -errno;
}

int ubdk_os_realdir(const char *dir, char *out, size_t outlen)
{
	char link[40];
	ssize_t n;
	int fd, err = 0;

	if (dir[0] == '\0')
		return -ENOENT;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR ? -ENOTDIR : -errno;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, out, outlen);
	if (n < 0)
		err = -errno;
	else if ((size_t)n >= outlen)
		err = -ENAMETOOLONG;
	else
		out[n] = '\0';
	close(fd);
	return err;
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
	void *p = ubdk_os_alloc(len);

	if (p)
		memset(p, 0, len);
	return p;
}

void ubdk_os_free(void *p)
{
	free(p);
}
