// SPDX-License-Identifier: GPL-2.0
/*
 * ubd_host.c - the host side of the ubd driver: opening and closing devices.
 *
 * Built against the host's libc (a USER_OBJ of UML), with ubdkit's format
 * library and its POSIX OS layer.  The host side has three files, by job:
 *
 * - ubd_host.c, opening and closing devices, in kernel context: the file,
 *   or a COW file and its backing file, through the library (header, host
 *   fcntl locks, size and mtime checks, creation, backing-path switch);
 *
 * - ubd_host_cbt.c, changed-block tracking (docs/cbt.md);
 *
 * - ubd_host_io.c, the I/O thread: a host thread sharing the kernel's memory that serves
 *   requests.  It must not call into the kernel (no printk, no kmalloc):
 *   it calls the library, whose I/O paths make only system calls and take
 *   bitmap memory with ubdk_os_map() (a host mmap), and passes it no
 *   struct ubdk_err, so that no message is formatted there either.
 *
 * COW devices are served by the library alone: reads of the merged view,
 * writes (data first, then the sectors' bits in memory), discard and
 * write-zeroes.  The bitmap chunks that writes changed reach the file when
 * a flush completes (ubdk_cow_flush: write-back, then fsync), when the
 * device closes, after the thread has been idle for IDLE_MS
 * (ubdk_cow_writeback, no fsync), and after every write with the 's' flag
 * (UBDK_OPEN_SYNC).  A write the guest saw flushed is therefore on disk
 * with its bits; one never flushed may lose its bits in a crash, and then
 * reads back as the old contents, never as garbage.
 *
 * Errors: every function here returns 0 or a negative errno, as the
 * library does; a request's error is the positive errno (req->error).
 */
/* _GNU_SOURCE comes with the kernel's host flags. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <os.h>

#include "ubd_host_dev.h"
#include "ubdk_os.h"

static void set_msg(char *msg, int len, const char *fmt, const char *a,
		    const char *b)
{
	if (msg && len > 0)
		snprintf(msg, (size_t)len, fmt, a, b ? b : "");
}

static void err_msg(char *msg, int len, const struct ubdk_err *err)
{
	set_msg(msg, len, "%s%s", err->msg, NULL);
}

/* Header errors that mean "this file is not a COW file" (as stock reads
 * it: such a file is used as it is when no backing file is named). */
static int not_a_cow(const struct ubdk_err *err)
{
	switch (err->code) {
	case UBDK_E_SHORT_HEADER:
	case UBDK_E_BAD_MAGIC:
	case UBDK_E_BAD_VERSION:
	case UBDK_E_COW_FORMAT:
	case UBDK_E_BACKING_UNTERMINATED:
	case UBDK_E_BACKING_EMPTY:
		return err->file != UBDK_FILE_BACKING;
	}
	return 0;
}

int ubdh_probe_size(const char *file, const char *backing, int no_cow,
		    unsigned long long *size, unsigned int *sectorsize,
		    char *msg, int msglen)
{
	struct ubdk_geometry geo;
	struct ubdk_header *hdr;
	struct ubdk_os_stat st;
	int fd, ret;

	*sectorsize = 512;
	/* A COW and its backing: the backing's size (the COW may not exist
	 * yet: it is made at the first open). */
	if (backing) {
		ret = ubdk_os_stat(backing, &st);
		if (ret < 0) {
			set_msg(msg, msglen, "cannot stat backing file %s%s",
				backing, NULL);
			return ret;
		}
		*size = st.size;
		return 0;
	}
	ret = ubdk_os_open(file, UBDK_OS_RDONLY, 0, &fd);
	if (ret < 0) {
		set_msg(msg, msglen, "cannot open %s%s", file, NULL);
		return ret;
	}
	ret = ubdk_os_fstat(fd, &st);
	*size = ret < 0 ? 0 : st.size;
	hdr = no_cow ? NULL : ubdk_os_alloc(sizeof(*hdr));
	if (!ret && hdr && !ubdk_header_read_fd(fd, file, hdr, &geo, NULL)) {
		*size = hdr->size;
		if (hdr->sectorsize >= 512 && hdr->sectorsize <= 4096)
			*sectorsize = hdr->sectorsize;
	}
	ubdk_os_free(hdr);
	ubdk_os_close(fd);
	return ret;
}

/* A device that is a plain file: no COW. */
static int open_plain(struct ubdh_dev *dev, const char *file,
		      const struct ubdh_opts *o, struct ubdh_info *info,
		      char *msg, int msglen)
{
	struct ubdk_os_stat st;
	int ret;

	ret = ubdk_os_open(file, info->writable ? UBDK_OS_RDWR :
			   UBDK_OS_RDONLY, 0, &dev->fd);
	/* A file the host will not let us write: use it read-only. */
	if ((ret == -EROFS || ret == -EACCES) && info->writable) {
		info->writable = 0;
		ret = ubdk_os_open(file, UBDK_OS_RDONLY, 0, &dev->fd);
	}
	if (ret < 0) {
		dev->fd = -1;
		set_msg(msg, msglen, "cannot open %s%s", file, NULL);
		return ret;
	}
	if (!o->shared) {
		ret = ubdk_os_lock(dev->fd, info->writable);
		if (ret == -EAGAIN)
			set_msg(msg, msglen, "%s: in use: another process (a "
				"running UML guest?) holds a lock on it%s",
				file, NULL);
		else if (ret < 0)
			set_msg(msg, msglen, "%s: cannot lock%s", file, NULL);
		if (ret < 0)
			return ret;
	}
	ret = ubdk_os_fstat(dev->fd, &st);
	if (ret < 0) {
		set_msg(msg, msglen, "%s: cannot stat%s", file, NULL);
		return ret;
	}
	dev->sync = o->sync;
	dev->size = st.size;
	info->size = st.size;
	info->sectorsize = 512;
	info->trim = st.type == UBDK_OS_REG;
	return 0;
}

/* Does the command line's backing name the file the header names? */
static int same_backing(const char *backing, const char *in_header)
{
	char *abs;
	int same;

	if (!strcmp(backing, in_header))
		return 1;
	abs = ubdk_os_alloc(UBDK_PATH_MAX);
	if (!abs)
		return 0;
	same = !ubdk_absolutize(backing, abs, UBDK_PATH_MAX, NULL) &&
	       !strcmp(abs, in_header);
	ubdk_os_free(abs);
	return same;
}

/*
 * Open a COW device, in the stock driver's order: the COW file and its
 * header (read once) under the host locks, then the backing file.
 *
 * With a backing file on the command line the library opens that one, and
 * locks it, without the size and mtime check; then:
 * - it is the header's file (under the same or another name): checked;
 * - another file with the header's size and mtime: the header is switched
 *   to it (rewritten while this process holds the COW's write lock);
 * - another file that does not match, or cannot be opened: as stock, the
 *   header's backing file is used instead, so the COW is opened again
 *   with it.
 * Returns 1 when the file is not a COW file (and no backing was named).
 */
static int open_cow(struct ubdh_dev *dev, const char *file,
		    const char *backing, const struct ubdh_opts *o,
		    struct ubdh_info *info, struct ubdk_err *err)
{
	struct ubdk_backing_check chk;
	const struct ubdk_header *hdr;
	int flags, ret, tries = 0;

again:
	flags = (info->writable ? UBDK_OPEN_RDWR : 0) |
		(o->shared ? 0 : UBDK_OPEN_LOCK) |
		(o->sync ? UBDK_OPEN_SYNC : 0) |
		(backing ? UBDK_OPEN_NO_CHECK : 0);
	ret = ubdk_cow_open(file, backing, flags, &dev->cow, err);
	if (ret == -ENOENT && err->file == UBDK_FILE_COW && backing &&
	    !info->created) {
		ret = ubdk_create(file, backing, NULL, false, err);
		if (ret < 0)
			return ret;
		info->created = 1;
		goto again;
	}
	/* A file the host will not let us write: use it read-only. */
	if ((ret == -EROFS || ret == -EACCES) && err->file == UBDK_FILE_COW &&
	    info->writable) {
		info->writable = 0;
		goto again;
	}
	if (ret < 0 && not_a_cow(err)) {
		if (!backing)
			return 1;
		snprintf(err->msg, sizeof(err->msg), "%s is not a COW file, "
			 "but a backing file (%s) was given", file, backing);
		return -EINVAL;
	}
	/* The command line's backing file cannot be opened: the header's. */
	if (ret < 0 && backing && err->file == UBDK_FILE_BACKING &&
	    err->code != UBDK_E_LOCKED && !tries++) {
		backing = NULL;
		goto again;
	}
	if (ret < 0)
		return ret;

	hdr = ubdk_cow_header(dev->cow);
	if (hdr->sectorsize < 512 || hdr->sectorsize > 4096) {
		snprintf(err->msg, sizeof(err->msg), "%s: sector size %u not "
			 "supported (512 to 4096 bytes)", file,
			 hdr->sectorsize);
		return -EINVAL;
	}
	if (backing) {
		int same = same_backing(backing, hdr->backing);

		ret = ubdk_cow_backing_check(dev->cow, &chk, err);
		if (ret < 0 && (same || err->code == UBDK_E_SYS))
			return ret;
		if (ret < 0) {
			/* Not the header's file, and it does not match. */
			ubdk_cow_close(dev->cow);
			dev->cow = NULL;
			backing = NULL;
			tries++;
			goto again;
		}
		if (!same) {
			if (!info->writable) {
				snprintf(err->msg, sizeof(err->msg), "%s: "
					 "cannot switch its backing file to "
					 "%s: read-only", file, backing);
				return -EROFS;
			}
			ret = ubdk_cow_rebase(dev->cow, backing, err);
			if (ret < 0)
				return ret;
			info->switched = 1;
		}
	}
	dev->size = hdr->size;
	info->cow = 1;
	info->size = hdr->size;
	info->sectorsize = hdr->sectorsize;
	info->trim = 1;
	return 0;
}

int ubdh_open(const char *file, const char *backing,
	      const struct ubdh_opts *o, struct ubdh_dev **out,
	      struct ubdh_info *info, char *msg, int msglen)
{
	struct ubdk_err *err = NULL;
	struct ubdh_dev *dev;
	int ret = 1;

	*out = NULL;
	memset(info, 0, sizeof(*info));
	info->writable = o->writable;
	dev = ubdk_os_zalloc(sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->fd = -1;
	if (!o->no_cow) {
		err = ubdk_os_zalloc(sizeof(*err));
		ret = -ENOMEM;
		if (err)
			ret = open_cow(dev, file, backing, o, info, err);
		if (ret < 0) {
			if (err)
				err_msg(msg, msglen, err);
			goto fail;
		}
	}
	if (ret == 1) {
		ret = open_plain(dev, file, o, info, msg, msglen);
		if (ret < 0)
			goto fail;
	}
	if (dev->cow && info->writable) {
		ret = ubdh_cbt_open(dev, file, err);
		if (ret < 0) {
			err_msg(msg, msglen, err);
			goto fail;
		}
		info->cbt = 1;
	}
	ubdk_os_free(err);
	*out = dev;
	return 0;
fail:
	ubdk_os_free(err);
	ubdh_close(dev);
	return ret;
}

const char *ubdh_backing(const struct ubdh_dev *dev)
{
	return dev->cow ? ubdk_cow_backing_path(dev->cow) : NULL;
}

unsigned long long ubdh_bitmap_mem(const struct ubdh_dev *dev)
{
	return dev->cow ? ubdk_cow_mem(dev->cow) : 0;
}

int ubdh_backing_map_fd(const struct ubdh_dev *dev, int *exec)
{
	int fd = dev->cow ? ubdk_cow_backing_fd(dev->cow) : -1;
	void *p;

	/* Open read-only, the host refuses any writable mapping of it. */
	if (fd < 0 || (fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDONLY)
		return -1;
	/* A file on a noexec mount cannot be mapped PROT_EXEC. */
	p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	*exec = p != MAP_FAILED;
	if (p != MAP_FAILED)
		munmap(p, 4096);
	return fd;
}

void ubdh_write_back(struct ubdh_dev *dev)
{
	if (dev && dev->cow) {
		ubdk_cow_writeback(dev->cow, NULL);
		ubdh_cbt_close(dev);
	}
}

void ubdh_close(struct ubdh_dev *dev)
{
	if (!dev)
		return;
	ubdh_cbt_close(dev);
	ubdk_cbt_free(dev->cbt);
	ubdk_os_free(dev->cbt_path);
	ubdk_os_free(dev->cbt_why);
	if (dev->cow)
		ubdk_cow_close(dev->cow);
	else if (dev->fd >= 0)
		ubdk_os_close(dev->fd);
	ubdk_os_free(dev);
}
