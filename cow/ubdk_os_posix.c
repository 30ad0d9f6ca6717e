/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cow/ubdk_os.h on Linux, for the host tools and, unchanged, for the ubd
 * driver inside a UML kernel, where it runs on the host side (a USER_OBJ).
 * What that second home requires of it:
 *
 * - libc must never allocate for us: UML wraps malloc/free and tells
 *   kernel from libc memory by address, so a buffer that libc allocated
 *   (realpath(p, NULL), ...) could be freed as kernel memory.  Directories
 *   are resolved through /proc/self/fd for that reason.
 * - ubdk_os_map() is used from the driver's I/O thread, which may not call
 *   the kernel's allocator: it is a plain anonymous mmap of the host.
 */
#define _GNU_SOURCE
#include "ubdk_cow.h"
#include "ubdk_os.h"

#include <stddef.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

_Static_assert(sizeof(struct ubdk_iov) == sizeof(struct iovec) &&
	       offsetof(struct ubdk_iov, base) ==
	       offsetof(struct iovec, iov_base) &&
	       offsetof(struct ubdk_iov, len) ==
	       offsetof(struct iovec, iov_len),
	       "struct ubdk_iov must be laid out as struct iovec");

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
	st->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 +
		       sb->st_mtim.tv_nsec;
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
	return fdatasync(fd) < 0 ? -errno : 0;
}

int ubdk_os_truncate(int fd, uint64_t size)
{
	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	return ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
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
	return calloc(1, len ? len : 1);
}

void ubdk_os_free(void *p)
{
	free(p);
}

/* A short transfer: the rest of the array one piece at a time. */
static int rw_rest(int fd, bool write, const struct ubdk_iov *iov, int cnt,
		   uint64_t off, size_t skip, size_t *done)
{
	for (int i = 0; i < cnt; i++) {
		size_t len = iov[i].len, pos = 0;

		if (skip >= len) {
			skip -= len;
			off += len;
			continue;
		}
		pos = skip;
		skip = 0;
		while (pos < len) {
			ssize_t n = write ?
				pwrite(fd, (char *)iov[i].base + pos, len - pos,
				       (off_t)(off + pos)) :
				pread(fd, (char *)iov[i].base + pos, len - pos,
				      (off_t)(off + pos));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			if (n == 0) {
				if (write)
					return -EIO;
				return 0;       /* end of file */
			}
			pos += (size_t)n;
			*done += (size_t)n;
		}
		off += len;
	}
	return 0;
}

/*
 * preadv or pwritev until done, end of file, or an error: the caller's
 * array in one call (struct ubdk_iov is laid out as struct iovec), then,
 * after a short transfer, the rest piece by piece.
 */
static int rw_iov(int fd, bool write, const struct ubdk_iov *iov, int cnt,
		  uint64_t off, size_t *done_out)
{
	const struct iovec *v = (const struct iovec *)(const void *)iov;
	size_t total = 0;
	ssize_t n;

	if (cnt < 0)
		return -EINVAL;
	for (int i = 0; i < cnt; i++)
		total += iov[i].len;
	if (off > (uint64_t)INT64_MAX || total > (uint64_t)INT64_MAX - off)
		return write ? -EFBIG : -EOVERFLOW;
	*done_out = 0;
	if (total == 0)
		return 0;
	do {
		n = write ? pwritev(fd, v, cnt, (off_t)off) :
			    preadv(fd, v, cnt, (off_t)off);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	*done_out = (size_t)n;
	if ((size_t)n == total || (n == 0 && !write))
		return 0;
	return rw_rest(fd, write, iov, cnt, off, (size_t)n, done_out);
}

int ubdk_os_preadv(int fd, const struct ubdk_iov *iov, int cnt, uint64_t off,
		   size_t *got)
{
	return rw_iov(fd, false, iov, cnt, off, got);
}

int ubdk_os_pwritev(int fd, const struct ubdk_iov *iov, int cnt,
		    uint64_t off)
{
	size_t done;

	return rw_iov(fd, true, iov, cnt, off, &done);
}

int ubdk_os_next_data(int fd, uint64_t off, uint64_t *data, uint64_t *hole)
{
	off_t d, h;

	if (off > (uint64_t)INT64_MAX)
		return -ENXIO;
	d = lseek(fd, (off_t)off, SEEK_DATA);
	if (d < 0)
		return -errno;
	h = lseek(fd, d, SEEK_HOLE);
	if (h < 0)
		return -errno;
	*data = (uint64_t)d;
	*hole = (uint64_t)h;
	return 0;
}

int ubdk_os_rename(const char *from, const char *to)
{
	return rename(from, to) < 0 ? -errno : 0;
}

int ubdk_os_punch(int fd, uint64_t off, uint64_t len, bool zero)
{
	int mode = FALLOC_FL_KEEP_SIZE |
		   (zero ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE);

	if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
		return -EFBIG;
	return fallocate(fd, mode, (off_t)off, (off_t)len) < 0 ? -errno : 0;
}

void *ubdk_os_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void ubdk_os_unmap(void *p, size_t len)
{
	munmap(p, len);
}
