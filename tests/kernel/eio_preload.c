// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * LD_PRELOAD'ed into a UML kernel by the kernel tests: pread() of the
 * bytes [UBDK_TEST_EIO_FROM, UBDK_TEST_EIO_TO) of a file whose path ends
 * with UBDK_TEST_EIO_FILE fails with EIO, as a disk with a bad block in a
 * COW's bitmap would.  Everything else passes through.
 *
 * The real pread is looked up in a constructor, before UML starts: later,
 * UML's wrapped malloc (which dlsym may call) is the kernel's allocator,
 * and the ubd I/O thread must never reach it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);

static pread_fn real_pread, real_pread64;
static const char *eio_file;
static unsigned long long eio_from, eio_to;

__attribute__((constructor)) static void setup(void)
{
	const char *from = getenv("UBDK_TEST_EIO_FROM");
	const char *to = getenv("UBDK_TEST_EIO_TO");

	real_pread = (pread_fn)dlsym(RTLD_NEXT, "pread");
	real_pread64 = (pread_fn)dlsym(RTLD_NEXT, "pread64");
	eio_file = getenv("UBDK_TEST_EIO_FILE");
	eio_from = from ? strtoull(from, NULL, 0) : 0;
	eio_to = to ? strtoull(to, NULL, 0) : 0;
}

/* Is this read of fd at [off, off+len) one to fail? */
static int bad(int fd, size_t len, off_t off)
{
	char link[64], path[4096];
	size_t want;
	ssize_t n;

	if (!eio_file || off < 0 || (unsigned long long)off >= eio_to ||
	    (unsigned long long)off + len <= eio_from)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return 0;
	path[n] = '\0';
	want = strlen(eio_file);
	return (size_t)n >= want && !strcmp(path + n - want, eio_file);
}

ssize_t pread(int fd, void *buf, size_t len, off_t off);
ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	if (bad(fd, len, off)) {
		errno = EIO;
		return -1;
	}
	return real_pread(fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off_t off);
ssize_t pread64(int fd, void *buf, size_t len, off_t off)
{
	if (bad(fd, len, off)) {
		errno = EIO;
		return -1;
	}
	return real_pread64(fd, buf, len, off);
}
