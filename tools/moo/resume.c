/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "resume.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "afile.h"

#define MAGIC "ubdkit-moo-inplace 1"

int resume_path(const char *cow, char *out, unsigned len)
{
	int n = snprintf(out, len, "%s.moo-inplace", cow);

	return n < 0 || (unsigned)n >= len ? -ENAMETOOLONG : 0;
}

int resume_read(const char *path, struct resume_record *r)
{
	char buf[256];
	unsigned long long dev, ino, size;
	unsigned mtime;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (sscanf(buf, MAGIC "\ndev=%llu\nino=%llu\nsize=%llu\nmtime=%u\n",
		   &dev, &ino, &size, &mtime) != 4)
		return -EINVAL;
	r->dev = dev;
	r->ino = ino;
	r->size = size;
	r->header_mtime = mtime;
	return 0;
}

static int sync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	int fd, ret = 0;

	afile_dir_of(path, dir, sizeof(dir));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0 && errno != EINVAL)
		ret = -errno;
	close(fd);
	return ret;
}

int resume_write(const char *path, const struct resume_record *r)
{
	struct afile af;
	char dir[PATH_MAX], buf[256];
	int dirfd, n, ret;

	afile_dir_of(path, dir, sizeof(dir));
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	ret = afile_open(&af, dirfd, path, 0644, false);
	close(dirfd);
	if (ret < 0)
		return ret;
	n = snprintf(buf, sizeof(buf),
		     MAGIC "\ndev=%" PRIu64 "\nino=%" PRIu64 "\nsize=%" PRIu64
		     "\nmtime=%" PRIu32 "\n", r->dev, r->ino, r->size,
		     r->header_mtime);
	if (write(af.fd, buf, (size_t)n) != n)
		ret = -ENOSPC;
	else if (fsync(af.fd) < 0)
		ret = -errno;
	if (ret == 0)
		ret = afile_publish(&af, path, true);
	afile_discard(&af);
	if (ret == 0)
		ret = sync_dir_of(path);
	return ret;
}

/*
 * Not followed by a directory sync: should a crash lose the removal, the
 * record only makes a re-run of the same merge, which is harmless.
 */
int resume_remove(const char *path)
{
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}
