/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ubdk_os.h - the only door from the format library to the OS.
 *
 * The format code is built unchanged into host tools (ubdk_os_posix.c) and
 * into a UML kernel, where a different file provides these functions.
 * Everything returns 0 or a negative errno.
 */
#ifndef UBDK_OS_H
#define UBDK_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ubdk_os_open_mode {
	UBDK_OS_RDONLY = 0,
	UBDK_OS_RDWR = 1 << 0,
	UBDK_OS_CREATE = 1 << 1,  /* create if missing */
	UBDK_OS_EXCL = 1 << 2,    /* with CREATE: fail if it exists */
	UBDK_OS_TRUNC = 1 << 3,
};

enum ubdk_os_ftype {
	UBDK_OS_REG,
	UBDK_OS_BLK,
	UBDK_OS_DIR,
	UBDK_OS_OTHER,
};

struct ubdk_os_stat {
	uint64_t size;            /* bytes; for block devices the device size */
	int64_t mtime;            /* seconds since the epoch */
	int64_t mtime_ns;         /* the same in nanoseconds */
	int type;                 /* enum ubdk_os_ftype */
};

int ubdk_os_open(const char *path, int mode, unsigned perm, int *fd);
int ubdk_os_close(int fd);
/* Read up to len bytes; stops early only at end of file (*got says how many). */
int ubdk_os_pread(int fd, void *buf, size_t len, uint64_t off, size_t *got);
/* Write all len bytes. */
int ubdk_os_pwrite(int fd, const void *buf, size_t len, uint64_t off);
int ubdk_os_fstat(int fd, struct ubdk_os_stat *st);
int ubdk_os_stat(const char *path, struct ubdk_os_stat *st);
int ubdk_os_fsync(int fd);
int ubdk_os_unlink(const char *path);
/* rename(2): replaces `to` atomically. */
int ubdk_os_rename(const char *from, const char *to);
/* Whole-file fcntl lock, non-blocking: -EAGAIN while another holds one. */
int ubdk_os_lock(int fd, bool write);
/* Absolute physical path of directory dir ("" is not a directory). */
int ubdk_os_realdir(const char *dir, char *out, size_t outlen);
int ubdk_os_getcwd(char *out, size_t outlen);
/* preadv/pwritev over struct ubdk_iov (laid out as struct iovec), at most
 * IOV_MAX (1024) pieces; the read stops early only at end of file (*got
 * says how many). */
struct ubdk_iov;
int ubdk_os_preadv(int fd, const struct ubdk_iov *iov, int cnt, uint64_t off,
		   size_t *got);
int ubdk_os_pwritev(int fd, const struct ubdk_iov *iov, int cnt,
		    uint64_t off);
/*
 * The first data at or after off (SEEK_DATA) and the hole after it:
 * -ENXIO when only holes follow, -EINVAL or -EOPNOTSUPP when the file
 * system cannot tell.
 */
int ubdk_os_next_data(int fd, uint64_t off, uint64_t *data, uint64_t *hole);
/* ftruncate(2): set the file's size, a hole where it grows. */
int ubdk_os_truncate(int fd, uint64_t size);
/* Deallocate (zero = false) or zero in place [off, off+len), size kept. */
int ubdk_os_punch(int fd, uint64_t off, uint64_t len, bool zero);
void *ubdk_os_alloc(size_t len);
void *ubdk_os_zalloc(size_t len);
void ubdk_os_free(void *p);
/*
 * Memory for the bitmap, in any context the library is used in (inside UML
 * also from the I/O thread, which cannot call the kernel's allocator).
 */
void *ubdk_os_map(size_t len);
void ubdk_os_unmap(void *p, size_t len);

#endif /* UBDK_OS_H */
