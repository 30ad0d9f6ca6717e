// SPDX-License-Identifier: GPL-2.0
/*
 * ubd_host.c - the host side of the ubd driver.
 *
 * Built against the host's libc (a USER_OBJ of UML), with ubdkit's format
 * library and its POSIX OS layer.  Two parts:
 *
 * - Opening and closing devices, in kernel context: the file, or a COW
 *   file and its backing file, through the library (header, host fcntl
 *   locks, size and mtime checks, creation, backing-path switch).
 *
 * - The I/O thread: a host thread sharing the kernel's memory that serves
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
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <os.h>

#include "ubd_host.h"
#include "cbt_reply.h"
#include "ubd_map_host.h"
#include "ubdk_static.h"
#include "ubdk_os.h"

_Static_assert(sizeof(struct ubdh_seg) == sizeof(struct ubdk_iov) &&
	       offsetof(struct ubdh_seg, base) ==
	       offsetof(struct ubdk_iov, base) &&
	       offsetof(struct ubdh_seg, len) ==
	       offsetof(struct ubdk_iov, len),
	       "struct ubdh_seg must be laid out as struct ubdk_iov");

/* Idle time after which changed bitmap chunks are written anyway. */
#define IDLE_MS 50

struct ubdh_dev {
	struct ubdk_cow *cow;        /* a COW device, else NULL */
	int fd;                      /* a plain device: its file, else -1 */
	int sync;                    /* plain device with 's' */
	unsigned long long size;     /* bytes of the file or COW device */
	/* The thread's list of COW devices with bitmap chunks to write. */
	struct ubdh_dev *next_dirty;
	int listed;

	/*
	 * Changed-block tracking, on a writable COW device only (docs/cbt.md).
	 * The I/O thread marks the tracker before each write's data; an
	 * mconsole checkpoint, in kernel context, swaps it.  `busy` keeps
	 * the two apart: the thread holds it while it serves one of the
	 * device's requests or writes its bitmap back, the checkpoint while
	 * it works.  A spin lock of the host, not of the kernel: the thread
	 * is a host thread, and the checkpoint may run in mconsole's stop
	 * loop, where the kernel must not sleep.
	 */
	unsigned char busy;
	struct ubdk_cbt *cbt;
	char *cbt_path;              /* the record, "<cow>.cbt", absolute */
	char *cbt_why;               /* why tracking is inconsistent at open */
	int cbt_on_disk_open;        /* the record on disk says OPEN */
	int cbt_on_disk_clean;       /* the record on disk is a trusted CLEAN
	                                one equal to the tracker */
};

static void dev_lock(struct ubdh_dev *dev)
{
	while (__atomic_test_and_set(&dev->busy, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void dev_unlock(struct ubdh_dev *dev)
{
	__atomic_clear(&dev->busy, __ATOMIC_RELEASE);
}

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

/* --- changed-block tracking ------------------------------------------- */

/*
 * Load the record beside the COW: trusted only if CLEAN and describing
 * the COW as it is now; otherwise tracking starts afresh, inconsistent
 * (ubdk_cbt_load decides, and says why).  Fails only without memory.
 */
static int cbt_open(struct ubdh_dev *dev, const char *file,
		    struct ubdk_err *err)
{
	struct ubdk_cbt_identity id;
	struct ubdk_cbt_info ci;
	size_t len;
	int ret;

	dev->cbt_path = ubdk_os_alloc(UBDK_PATH_MAX + 16);
	dev->cbt_why = ubdk_os_zalloc(UBDK_ERR_MSG_MAX);
	if (!dev->cbt_path || !dev->cbt_why)
		return -ENOMEM;
	/* Absolute: mconsole replies name the map to the host. */
	ret = ubdk_absolutize(file, dev->cbt_path, UBDK_PATH_MAX, err);
	if (ret < 0)
		return ret;
	len = strlen(dev->cbt_path);
	memcpy(dev->cbt_path + len, UBDK_CBT_RECORD_SUFFIX,
	       sizeof(UBDK_CBT_RECORD_SUFFIX));
	ret = ubdk_cbt_identity_of(dev->cow, &id, err);
	if (ret < 0)
		return ret;
	ret = ubdk_cbt_load(dev->cbt_path, &id, 0, &dev->cbt, err);
	if (ret < 0)
		return ret;
	ubdk_cbt_get_info(dev->cbt, &ci);
	if (err->code)
		snprintf(dev->cbt_why, UBDK_ERR_MSG_MAX, "%s", err->msg);
	else
		dev->cbt_on_disk_clean = 1;
	memset(err, 0, sizeof(*err));
	return 0;
}

/*
 * The end of a session (device closed, or the kernel halting with the
 * thread stopped): the COW flushed, then the record written CLEAN with the
 * COW's identity after that flush.  Nothing is written when the record on
 * disk already is that (nothing written, no checkpoint this session).
 */
static void cbt_close(struct ubdh_dev *dev)
{
	struct ubdk_cbt_identity id;

	if (!dev->cbt || dev->cbt_on_disk_clean)
		return;
	if (ubdk_cow_flush(dev->cow, NULL) < 0 ||
	    ubdk_cbt_identity_of(dev->cow, &id, NULL) < 0)
		return;   /* the record stays OPEN: untrusted next time */
	if (ubdk_cbt_save(dev->cbt, dev->cbt_path, UBDK_CBT_STATE_CLEAN, &id,
			  NULL) == 0) {
		dev->cbt_on_disk_clean = 1;
		dev->cbt_on_disk_open = 0;
	}
}

/* In the I/O thread, before a write's or discard's data: the record on
 * disk says OPEN from the session's first write on, then the blocks. */
static void cbt_mark(struct ubdh_dev *dev, unsigned long long off,
		     unsigned long long len)
{
	if (!dev->cbt)
		return;
	if (!dev->cbt_on_disk_open) {
		/* Without an OPEN record a crash could leave the old CLEAN
		 * one (its COW identity would still differ, but the promise
		 * is kept by both). */
		if (ubdk_cbt_mark_open(dev->cbt, dev->cbt_path, true) < 0)
			ubdk_cbt_set_reason(dev->cbt, UBDK_CBT_IO_ERROR);
		dev->cbt_on_disk_open = 1;
		dev->cbt_on_disk_clean = 0;
	}
	ubdk_cbt_mark(dev->cbt, off, len);
}

static int status_line(struct ubdh_dev *dev, char *out, int outlen)
{
	struct ubdk_cbt_reply r = { .kind = UBDK_CBT_REPLY_STATUS };
	struct ubdk_cbt_info ci;

	ubdk_cbt_get_info(dev->cbt, &ci);
	memcpy(r.name, ci.name, sizeof(r.name));
	r.reason = ci.reason;
	r.granularity = ci.granularity;
	r.blocks = ci.blocks;
	r.size = ci.device_size;
	r.generation = ci.generation;
	r.mem = ubdk_cbt_mem(dev->cbt);
	return ubdk_cbt_reply_format(out, (size_t)outlen, &r);
}

int ubdh_cbt_status(struct ubdh_dev *dev, char *out, int outlen)
{
	int ret;

	if (!dev->cbt) {
		snprintf(out, (size_t)outlen, UBDK_CBT_REPLY_ERR_NO_TRACKING
			 "no changed-block tracking (a read-only device or not "
			 "a COW)");
		return -ENODEV;
	}
	dev_lock(dev);
	ret = status_line(dev, out, outlen);
	dev_unlock(dev);
	return ret < 0 ? -EIO : 0;
}

const char *ubdh_cbt_why(const struct ubdh_dev *dev)
{
	return dev->cbt && dev->cbt_why && dev->cbt_why[0] ? dev->cbt_why :
	       NULL;
}

/*
 * Checkpoint NAME, with the thread kept off the device: every completed
 * write's bits into the COW file (its data is there already), the map of
 * the blocks changed since the previous checkpoint into "<cow>.cbt-map"
 * (from the tracker as it stands: nothing can mark it meanwhile), then the
 * tracker starts again under NAME.  A request the thread served before is
 * in that map; one it serves after, in the next.  No kernel memory and no
 * sleeping: this may run in mconsole's stop loop.
 */
int ubdh_cbt_checkpoint(struct ubdh_dev *dev, const char *name, char *out,
			int outlen)
{
	struct ubdk_cbt_identity id;
	struct ubdk_cbt_info ci;
	struct ubdk_cbt *sealed;
	struct ubdk_err *err;
	char *map;
	size_t len;
	int ret;

	if (!dev->cbt)
		return ubdh_cbt_status(dev, out, outlen);
	if (!ubdk_cbt_name_ok(name) || !name[0]) {
		snprintf(out, (size_t)outlen, UBDK_CBT_REPLY_ERR_BAD_NAME
			 "bad checkpoint name: 1 to 63 of A-Z a-z 0-9 . _ : @ + -");
		return -EINVAL;
	}
	err = ubdk_os_map(sizeof(*err) + UBDK_PATH_MAX + 16);
	if (!err) {
		snprintf(out, (size_t)outlen, UBDK_CBT_REPLY_ERR_NO_MEMORY
			 "no memory");
		return -ENOMEM;
	}
	map = (char *)(err + 1);
	len = strlen(dev->cbt_path) - strlen(UBDK_CBT_RECORD_SUFFIX);
	memcpy(map, dev->cbt_path, len);
	memcpy(map + len, UBDK_CBT_MAP_SUFFIX, sizeof(UBDK_CBT_MAP_SUFFIX));

	dev_lock(dev);
	ubdk_cbt_get_info(dev->cbt, &ci);
	ret = ubdk_cow_writeback(dev->cow, err);
	if (!ret)
		ret = ubdk_cbt_identity_of(dev->cow, &id, err);
	if (!ret)
		ret = ubdk_cbt_write_map(dev->cbt, name, map, &id, err);
	if (!ret) {
		ret = ubdk_cbt_checkpoint(dev->cbt, name, &sealed, err);
		if (ret < 0)
			ubdk_os_unlink(map);   /* the tracker did not move on */
		else
			ubdk_cbt_free(sealed);
	}
	if (!ret) {
		/*
		 * The record on disk gets the new name.  Not yet OPEN (no
		 * write this session): made OPEN, fsynced, or the CLEAN one
		 * would outlive a crash with the previous checkpoint in it.
		 * Already OPEN: rewritten without fsync (the pause stays
		 * short; whichever version a crash keeps is untrusted).
		 */
		if (ubdk_cbt_mark_open(dev->cbt, dev->cbt_path,
				       !dev->cbt_on_disk_open) < 0)
			ubdk_cbt_set_reason(dev->cbt, UBDK_CBT_IO_ERROR);
		dev->cbt_on_disk_open = 1;
	}
	if (!ret)
		dev->cbt_on_disk_clean = 0;
	dev_unlock(dev);

	if (ret < 0) {
		snprintf(out, (size_t)outlen, UBDK_CBT_REPLY_ERR_FAILED "%s",
			 err->msg);
	} else {
		struct ubdk_cbt_reply r = { .kind = UBDK_CBT_REPLY_CHECKPOINT,
					    .reason = ci.reason,
					    .granularity = ci.granularity,
					    .blocks = ci.blocks,
					    .size = ci.device_size,
					    .generation = ci.generation + 1,
					    .map = map, .map_len = strlen(map) };

		memcpy(r.from, ci.name, sizeof(r.from));
		snprintf(r.name, sizeof(r.name), "%s", name);
		ubdk_cbt_reply_format(out, (size_t)outlen, &r);
	}
	ubdk_os_unmap(err, sizeof(*err) + UBDK_PATH_MAX + 16);
	return ret;
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
		ret = cbt_open(dev, file, err);
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

void ubdh_write_back(struct ubdh_dev *dev)
{
	if (dev && dev->cow) {
		ubdk_cow_writeback(dev->cow, NULL);
		cbt_close(dev);
	}
}

void ubdh_close(struct ubdh_dev *dev)
{
	if (!dev)
		return;
	cbt_close(dev);
	ubdk_cbt_free(dev->cbt);
	ubdk_os_free(dev->cbt_path);
	ubdk_os_free(dev->cbt_why);
	if (dev->cow)
		ubdk_cow_close(dev->cow);
	else if (dev->fd >= 0)
		ubdk_os_close(dev->fd);
	ubdk_os_free(dev);
}

/* --- the I/O thread ----------------------------------------------------- */

/* The thread's end of the socket pair. */
static int thread_fd = -1;
/* COW devices whose bitmap chunks changed since their last write-back. */
static struct ubdh_dev *dirty_list;

static void list_dirty(struct ubdh_dev *dev)
{
	if (!dev->listed && ubdk_cow_dirty(dev->cow)) {
		dev->listed = 1;
		dev->next_dirty = dirty_list;
		dirty_list = dev;
	}
}

static void unlist_dirty(struct ubdh_dev *dev)
{
	struct ubdh_dev **p;

	if (!dev->listed)
		return;
	for (p = &dirty_list; *p; p = &(*p)->next_dirty) {
		if (*p == dev) {
			*p = dev->next_dirty;
			break;
		}
	}
	dev->next_dirty = NULL;
	dev->listed = 0;
}

/* Idle: put the changed bitmap chunks of every device in its file. */
static void write_back_all(void)
{
	while (dirty_list) {
		struct ubdh_dev *dev = dirty_list;

		dirty_list = dev->next_dirty;
		dev->next_dirty = NULL;
		dev->listed = 0;
		/* On failure the chunks stay dirty: the next flush reports
		 * it, the next write lists the device again. */
		dev_lock(dev);
		ubdk_cow_writeback(dev->cow, NULL);
		dev_unlock(dev);
	}
}

/* Zero an iovec array from byte `from` on. */
static void zero_from(const struct ubdk_iov *iov, int n, size_t from)
{
	int i;

	for (i = 0; i < n; i++) {
		if (from >= iov[i].len) {
			from -= iov[i].len;
			continue;
		}
		memset((char *)iov[i].base + from, 0, iov[i].len - from);
		from = 0;
	}
}

/* Reads and writes of a plain file; reads past its end give zeros. */
static int plain_rw(struct ubdh_dev *dev, struct ubdh_req *req)
{
	const struct ubdk_iov *iov = (const struct ubdk_iov *)req->seg;
	size_t got;
	int ret;

	/* A request's segments (UBDH_MAX_SEGS) go in one call. */
	if (req->op == UBDH_OP_WRITE)
		return ubdk_os_pwritev(dev->fd, iov, req->nseg, req->off);
	ret = ubdk_os_preadv(dev->fd, iov, req->nseg, req->off, &got);
	if (ret == 0 && got < req->len)
		zero_from(iov, req->nseg, got);
	return ret;
}

static int plain_io(struct ubdh_dev *dev, struct ubdh_req *req)
{
	int ret;

	switch (req->op) {
	case UBDH_OP_READ:
		return plain_rw(dev, req);
	case UBDH_OP_WRITE:
		ret = plain_rw(dev, req);
		break;
	default:
		ret = ubdk_os_punch(dev->fd, req->off, req->len,
				    req->op == UBDH_OP_ZEROES);
		break;
	}
	if (!ret && dev->sync)
		ret = ubdk_os_fsync(dev->fd);
	return ret;
}

/*
 * The request's segments cut to its first `keep` bytes, in req->scratch
 * (the last sector of a COW whose size is not a multiple of 512 lies
 * partly past the device the library knows).  Returns their count.
 */
static int clip(struct ubdh_req *req, unsigned long long keep)
{
	int i, n = 0;

	for (i = 0; i < req->nseg && keep; i++, n++) {
		req->scratch[n] = req->seg[i];
		if (req->scratch[n].len > keep)
			req->scratch[n].len = keep;
		keep -= req->scratch[n].len;
	}
	return n;
}

static int cow_io(struct ubdh_dev *dev, struct ubdh_req *req)
{
	const struct ubdk_iov *iov = (const struct ubdk_iov *)req->seg;
	unsigned long long len = req->len;
	int n = req->nseg, ret;

	if (req->off >= dev->size) {
		/* Wholly in the padding of a short last sector. */
		if (req->op == UBDH_OP_READ)
			zero_from(iov, n, 0);
		return 0;
	}
	if (len > dev->size - req->off) {
		len = dev->size - req->off;
		if (req->op == UBDH_OP_READ)
			zero_from(iov, n, len);
		n = clip(req, len);
		iov = (const struct ubdk_iov *)req->scratch;
	}
	if (req->op != UBDH_OP_READ)
		cbt_mark(dev, req->off, len);
	switch (req->op) {
	case UBDH_OP_READ:
		if (req->nmap && len == req->len)
			return ubdh_map_read(dev->cow, req);
		return ubdk_cow_preadv(dev->cow, iov, n, req->off, NULL);
	case UBDH_OP_WRITE:
		ret = ubdk_cow_pwritev(dev->cow, iov, n, req->off, NULL);
		break;
	default:
		ret = ubdk_cow_discard(dev->cow, req->off, len,
				       req->op == UBDH_OP_ZEROES, NULL);
		break;
	}
	list_dirty(dev);
	return ret;
}

static int flush_dev(struct ubdh_dev *dev)
{
	if (!dev->cow)
		return ubdk_os_fsync(dev->fd);
	unlist_dirty(dev);
	return ubdk_cow_flush(dev->cow, NULL);
}

static void serve(struct ubdh_req *req)
{
	struct ubdh_dev *dev = req->dev;
	int ret;

	if (dev->cow)
		dev_lock(dev);
	switch (req->op) {
	case UBDH_OP_FLUSH:
		ret = flush_dev(dev);
		break;
	case UBDH_OP_QUIESCE:
		ret = 0;
		if (dev->cow) {
			unlist_dirty(dev);
			ret = ubdk_cow_writeback(dev->cow, NULL);
		}
		break;
	default:
		if (req->len == 0)
			ret = 0;
		else if (dev->cow)
			ret = cow_io(dev, req);
		else
			ret = plain_io(dev, req);
		break;
	}
	if (dev->cow)
		dev_unlock(dev);
	req->error = ret < 0 ? -ret : 0;
}

#define BATCH 64

static int io_thread(void *arg)
{
	struct ubdh_req *reqs[BATCH];
	struct pollfd pfd = { .fd = thread_fd };
	size_t have = 0;
	ssize_t n;
	int i, done;

	(void)arg;
	os_fix_helper_signals();
	/* Do not outlive the kernel (a SIGKILLed UML leaves no thread holding
	 * its descriptors, and so its locks). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		n = read(thread_fd, (char *)reqs + have,
			 sizeof(reqs) - have);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				continue;
			if (n == 0)
				return 0;
			pfd.events = POLLIN;
			if (dirty_list) {
				if (poll(&pfd, 1, IDLE_MS) == 0)
					write_back_all();
			} else {
				poll(&pfd, 1, -1);
			}
			continue;
		}
		have += (size_t)n;
		done = (int)(have / sizeof(reqs[0]));
		for (i = 0; i < done; i++)
			serve(reqs[i]);
		/* Send back every whole pointer; keep a partial one. */
		{
			size_t len = (size_t)done * sizeof(reqs[0]), off = 0;

			while (off < len) {
				n = write(thread_fd, (char *)reqs + off,
					  len - off);
				if (n > 0) {
					off += (size_t)n;
					continue;
				}
				pfd.events = POLLOUT;
				poll(&pfd, 1, -1);
			}
			have -= len;
			memmove(reqs, (char *)reqs + len, have);
		}
	}
	return 0;
}

int ubdh_start_thread(unsigned long sp, int *fd_out)
{
	int fds[2], pid, ret;

	ret = os_pipe(fds, 1, 1);
	if (ret < 0)
		return ret;
	if (os_set_fd_block(fds[0], 0) < 0 || os_set_fd_block(fds[1], 0) < 0) {
		ret = -EIO;
		goto fail;
	}
	thread_fd = fds[0];
	pid = clone(io_thread, (void *)sp, CLONE_FILES | CLONE_VM, NULL);
	if (pid < 0) {
		ret = -errno;
		goto fail;
	}
	*fd_out = fds[1];
	return pid;
fail:
	close(fds[0]);
	close(fds[1]);
	thread_fd = -1;
	return ret;
}

void ubdh_stop_thread(int pid)
{
	if (pid > 0)
		os_kill_process(pid, 1);
}
