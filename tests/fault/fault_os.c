/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cow/ubdk_os.h with failures on demand: the real Linux layer, compiled
 * here under other names, behind wrappers that fail the n-th call of a
 * chosen kind.  Lets the unit tests fail any call between a data write
 * and the bitmap write that describes it.
 */
#define ubdk_os_pread real_os_pread
#define ubdk_os_preadv real_os_preadv
#define ubdk_os_pwrite real_os_pwrite
#define ubdk_os_pwritev real_os_pwritev
#define ubdk_os_fsync real_os_fsync
#include "../../cow/ubdk_os_posix.c"
#undef ubdk_os_pread
#undef ubdk_os_preadv
#undef ubdk_os_pwrite
#undef ubdk_os_pwritev
#undef ubdk_os_fsync

#include "fault.h"

struct fault_plan fault_plan;

/* Does this call fail?  Counts calls of the planned kind. */
static int should_fail(int kind)
{
	if (fault_plan.kind != kind || fault_plan.errnum == 0)
		return 0;
	if (++fault_plan.seen != fault_plan.nth)
		return 0;
	fault_plan.fired++;
	return -fault_plan.errnum;
}

int ubdk_os_pread(int fd, void *buf, size_t len, uint64_t off, size_t *got);
int ubdk_os_pread(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
	int ret = should_fail(FAULT_PREAD);

	return ret ? ret : real_os_pread(fd, buf, len, off, got);
}

int ubdk_os_preadv(int fd, const struct ubdk_iov *iov, int cnt, uint64_t off,
		   size_t *got);
int ubdk_os_preadv(int fd, const struct ubdk_iov *iov, int cnt, uint64_t off,
		   size_t *got)
{
	int ret = should_fail(FAULT_PREADV);

	return ret ? ret : real_os_preadv(fd, iov, cnt, off, got);
}

int ubdk_os_pwrite(int fd, const void *buf, size_t len, uint64_t off);
int ubdk_os_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	int ret = should_fail(FAULT_PWRITE);

	return ret ? ret : real_os_pwrite(fd, buf, len, off);
}

int ubdk_os_pwritev(int fd, const struct ubdk_iov *iov, int cnt,
		    uint64_t off);
int ubdk_os_pwritev(int fd, const struct ubdk_iov *iov, int cnt,
		    uint64_t off)
{
	int ret = should_fail(FAULT_PWRITEV);

	if (!ret)
		return real_os_pwritev(fd, iov, cnt, off);
	/* A short write: the first half of the first piece lands, then the
	 * error, as a full disk does it. */
	if (fault_plan.short_write && cnt > 0 && iov[0].len > 1)
		real_os_pwrite(fd, iov[0].base, iov[0].len / 2, off);
	return ret;
}

int ubdk_os_fsync(int fd);
int ubdk_os_fsync(int fd)
{
	int ret = should_fail(FAULT_FSYNC);

	return ret ? ret : real_os_fsync(fd);
}
