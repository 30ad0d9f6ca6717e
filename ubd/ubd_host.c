// SPDX-License-Identifier: GPL-2.0
/*
 * ubd_host.c - the host side of the ubd driver.
 *
 * Built against the host's libc (a USER_OBJ of UML).  Two parts:
 *
 * - Opening and closing devices, in kernel context: the file, or a COW
 *   file and its backing file, through ubdkit's format library (header,
 *   checks, creation, backing-path switch, host fcntl locks).
 *
 * - The I/O thread: a host thread sharing the kernel's memory that serves
 *   requests.  It must not call into the kernel (no printk, no allocation):
 *   only system calls on the descriptors the library opened, and the
 *   library's pure bitmap functions.
 *
 * COW writes: the data goes to the COW's data area; the sectors' bits are
 * set in memory and their bitmap pages marked dirty.  Dirty pages are
 * written before every flush completes (then the COW is fsynced), when the
 * device is closed, after the thread has been idle for a short while, and
 * after every write with the 's' flag.  A write that the guest saw flushed
 * is therefore on disk with its bits; one that was never flushed may lose
 * its bits in a crash, and then reads back as the old contents, never as
 * garbage (the data is always written before its bits).
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/falloc.h>

#include <os.h>

#include "ubd_host.h"
#include "ubdk_cow.h"
#include "ubdk_os.h"

_Static_assert(sizeof(struct ubdh_seg) == sizeof(struct iovec) &&
	       offsetof(struct ubdh_seg, base) ==
	       offsetof(struct iovec, iov_base) &&
	       offsetof(struct ubdh_seg, len) ==
	       offsetof(struct iovec, iov_len),
	       "struct ubdh_seg must be laid out as struct iovec");

/* Bitmap bytes tracked per dirty bit: the page the kernel writes. */
#define DIRTY_CHUNK 4096ULL
/* Idle time after which dirty bitmap pages are written anyway. */
#define IDLE_MS 50

struct ubdh_dev {
	/* The COW, or -1/NULL for a plain file device. */
	struct ubdk_cow *cow;
	int fd;                      /* the file doing the writes */
	int backing_fd;              /* COW: its backing file */
	int sync;
	unsigned long long size;

	/* COW geometry, copied from the library. */
	unsigned long long ss;       /* sector size */
	unsigned long long data_offset, bitmap_offset, bitmap_used;
	unsigned long long covered;  /* sectors that have a bit */

	/* The thread's bitmap: the library's at open, then kept by writes. */
	uint8_t *bitmap;
	uint8_t *dirty;              /* one bit per DIRTY_CHUNK bitmap bytes */
	unsigned long long nchunks;
	int any_dirty;
	struct ubdh_dev *next_dirty; /* the thread's list of dirty devices */
};

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

/* Read a header's worth of a file and decode it: is it a COW file? */
static int probe_header(int fd, struct ubdk_header *hdr)
{
	uint8_t *buf = ubdk_os_alloc(UBDK_HDR_MAX_SIZE);
	size_t got;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = ubdk_os_pread(fd, buf, UBDK_HDR_MAX_SIZE, 0, &got);
	if (!ret)
		ret = ubdk_header_decode(buf, got, NULL, hdr, NULL);
	ubdk_os_free(buf);
	return ret;
}

int ubdh_probe_size(const char *file, const char *backing, int no_cow,
		    unsigned long long *size, unsigned int *sectorsize,
		    char *msg, int msglen)
{
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
	if (!ret && hdr && !probe_header(fd, hdr)) {
		*size = hdr->size;
		if (hdr->sectorsize >= 512 && hdr->sectorsize <= 4096)
			*sectorsize = hdr->sectorsize;
	}
	ubdk_os_free(hdr);
	ubdk_os_close(fd);
	return ret;
}

static int lock_plain(int fd, int write, const char *file, char *msg,
		      int msglen)
{
	int ret = ubdk_os_lock(fd, write);

	if (ret == -EAGAIN)
		set_msg(msg, msglen, "%s: in use: another process (a running "
			"UML guest?) holds a lock on it%s", file, NULL);
	else if (ret < 0)
		set_msg(msg, msglen, "%s: cannot lock%s", file, NULL);
	return ret;
}

/* Open a device that is a plain file: no COW. */
static int open_plain(struct ubdh_dev *dev, int fd, const char *file,
		      const struct ubdh_opts *o, struct ubdh_info *info,
		      char *msg, int msglen)
{
	struct ubdk_os_stat st;
	int ret;

	if (!o->shared) {
		ret = lock_plain(fd, info->writable, file, msg, msglen);
		if (ret < 0)
			return ret;
	}
	ret = ubdk_os_fstat(fd, &st);
	if (ret < 0) {
		set_msg(msg, msglen, "%s: cannot stat%s", file, NULL);
		return ret;
	}
	dev->fd = fd;
	dev->size = st.size;
	info->size = st.size;
	info->sectorsize = 512;
	info->trim = st.type == UBDK_OS_REG;
	return 0;
}

/*
 * The command line names a backing file other than the header's: switch
 * the header to it when it is a different file with the size and mtime the
 * header records (the stock kernel's rule).  Returns 1 if switched.
 */
static int maybe_switch(const char *file, const char *backing,
			const struct ubdk_header *hdr, int writable,
			char *msg, int msglen)
{
	struct ubdk_backing_check chk;
	struct ubdk_err *err;
	struct ubdk_cow *cow;
	char *abs;
	int ret;

	if (!strcmp(backing, hdr->backing))
		return 0;
	abs = ubdk_os_alloc(UBDK_PATH_MAX);
	err = ubdk_os_alloc(sizeof(*err));
	ret = -ENOMEM;
	if (!abs || !err)
		goto out;
	/* The same file under another name: nothing to switch. */
	ret = 0;
	if (!ubdk_absolutize(backing, abs, UBDK_PATH_MAX, NULL) &&
	    !strcmp(abs, hdr->backing))
		goto out;
	if (ubdk_backing_check(hdr, backing, &chk, NULL) < 0)
		goto out;              /* mismatch: keep the header's path */
	if (!writable) {
		ret = -EROFS;
		set_msg(msg, msglen, "%s: cannot switch its backing file to %s: "
			"read-only", file, backing);
		goto out;
	}
	ret = ubdk_cow_open(file, NULL, UBDK_OPEN_RDWR | UBDK_OPEN_NO_BACKING,
			    &cow, err);
	if (!ret) {
		ret = ubdk_cow_rebase(cow, backing, err);
		ubdk_cow_close(cow);
	}
	if (ret < 0)
		err_msg(msg, msglen, err);
	else
		ret = 1;
out:
	ubdk_os_free(abs);
	ubdk_os_free(err);
	return ret;
}

static int open_cow(struct ubdh_dev *dev, const char *file,
		    const struct ubdh_opts *o, struct ubdh_info *info,
		    char *msg, int msglen)
{
	const struct ubdk_geometry *geo;
	const struct ubdk_header *hdr;
	struct ubdk_err *err;
	int flags, ret;

	err = ubdk_os_alloc(sizeof(*err));
	if (!err)
		return -ENOMEM;
	flags = (info->writable ? UBDK_OPEN_RDWR : 0) |
		(o->shared ? 0 : UBDK_OPEN_LOCK);
	ret = ubdk_cow_open(file, NULL, flags, &dev->cow, err);
	if (ret < 0) {
		err_msg(msg, msglen, err);
		ubdk_os_free(err);
		return ret;
	}
	ubdk_os_free(err);
	hdr = ubdk_cow_header(dev->cow);
	geo = ubdk_cow_geometry(dev->cow);
	if (hdr->sectorsize < 512 || hdr->sectorsize > 4096) {
		snprintf(msg, (size_t)msglen, "%s: sector size %u not "
			 "supported (512 to 4096 bytes)", file,
			 hdr->sectorsize);
		return -EINVAL;
	}
	dev->fd = ubdk_cow_fd(dev->cow);
	dev->backing_fd = ubdk_cow_backing_fd(dev->cow);
	dev->size = hdr->size;
	dev->ss = hdr->sectorsize;
	dev->data_offset = geo->data_offset;
	dev->bitmap_offset = geo->bitmap_offset;
	dev->bitmap_used = geo->bitmap_used;
	dev->covered = geo->covered;
	dev->nchunks = (geo->bitmap_used + DIRTY_CHUNK - 1) / DIRTY_CHUNK;
	/* The library pads its bitmap to 8 bytes for word scans: so do we. */
	dev->bitmap = ubdk_os_zalloc((geo->bitmap_used + 7) & ~7ULL);
	dev->dirty = ubdk_os_zalloc((dev->nchunks + 63) / 64 * 8);
	if (!dev->bitmap || !dev->dirty) {
		set_msg(msg, msglen, "%s: no memory for its bitmap%s", file,
			NULL);
		return -ENOMEM;
	}
	memcpy(dev->bitmap, ubdk_cow_bitmap(dev->cow), geo->bitmap_used);
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
	struct ubdk_header *hdr = NULL;
	struct ubdh_dev *dev;
	int fd = -1, ret;

	*out = NULL;
	memset(info, 0, sizeof(*info));
	info->writable = o->writable;
	dev = ubdk_os_zalloc(sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->fd = -1;
	dev->backing_fd = -1;
	dev->sync = o->sync;

	ret = ubdk_os_open(file, info->writable ? UBDK_OS_RDWR : UBDK_OS_RDONLY,
			   0, &fd);
	if (ret == -ENOENT && backing && !o->no_cow) {
		struct ubdk_err *err = ubdk_os_alloc(sizeof(*err));

		ret = -ENOMEM;
		if (err) {
			ret = ubdk_create(file, backing, NULL, false, err);
			if (ret < 0)
				err_msg(msg, msglen, err);
			ubdk_os_free(err);
		}
		if (ret < 0)
			goto fail;
		info->created = 1;
		ret = ubdk_os_open(file, info->writable ? UBDK_OS_RDWR :
				   UBDK_OS_RDONLY, 0, &fd);
	}
	/* A file the host will not let us write: use it read-only. */
	if ((ret == -EROFS || ret == -EACCES) && info->writable) {
		info->writable = 0;
		ret = ubdk_os_open(file, UBDK_OS_RDONLY, 0, &fd);
	}
	if (ret < 0) {
		set_msg(msg, msglen, "cannot open %s%s", file, NULL);
		goto fail;
	}

	if (!o->no_cow) {
		hdr = ubdk_os_alloc(sizeof(*hdr));
		ret = -ENOMEM;
		if (!hdr)
			goto fail;
		ret = probe_header(fd, hdr);
		if (ret < 0 && backing) {
			set_msg(msg, msglen, "%s is not a COW file, but a "
				"backing file (%s) was given", file, backing);
			ret = -EINVAL;
			goto fail;
		}
	}
	if (o->no_cow || ret < 0) {
		ret = open_plain(dev, fd, file, o, info, msg, msglen);
		if (ret < 0)
			goto fail;
		fd = -1;
		goto done;
	}

	/* A COW file: the library opens it again, with its locks. */
	ubdk_os_close(fd);
	fd = -1;
	if (backing) {
		ret = maybe_switch(file, backing, hdr, info->writable, msg,
				   msglen);
		if (ret < 0)
			goto fail;
		info->switched = ret;
	}
	ret = open_cow(dev, file, o, info, msg, msglen);
	if (ret < 0)
		goto fail;
done:
	ubdk_os_free(hdr);
	*out = dev;
	return 0;
fail:
	if (fd >= 0)
		ubdk_os_close(fd);
	ubdk_os_free(hdr);
	ubdh_close(dev);
	return ret;
}

const char *ubdh_backing(const struct ubdh_dev *dev)
{
	return dev->cow ? ubdk_cow_backing_path(dev->cow) : NULL;
}

/* Write the dirty bitmap pages of a COW device.  Thread or kernel context. */
static int write_bitmap(struct ubdh_dev *dev)
{
	unsigned long long c = 0, end;
	int ret;

	if (!dev->any_dirty)
		return 0;
	while ((c = ubdk_bitmap_find(dev->dirty, c, dev->nchunks, true)) <
	       dev->nchunks) {
		end = ubdk_bitmap_find(dev->dirty, c, dev->nchunks, false);
		{
			unsigned long long from = c * DIRTY_CHUNK;
			unsigned long long to = end * DIRTY_CHUNK;

			if (to > dev->bitmap_used)
				to = dev->bitmap_used;
			ret = ubdk_os_pwrite(dev->fd, dev->bitmap + from,
					     to - from,
					     dev->bitmap_offset + from);
			if (ret < 0)
				return ret;
		}
		for (; c < end; c++)
			dev->dirty[c / 8] &= (uint8_t)~(1U << (c % 8));
	}
	dev->any_dirty = 0;
	return 0;
}

void ubdh_write_back(struct ubdh_dev *dev)
{
	if (dev && dev->cow)
		write_bitmap(dev);
}

void ubdh_close(struct ubdh_dev *dev)
{
	if (!dev)
		return;
	if (dev->cow) {
		write_bitmap(dev);
		ubdk_cow_close(dev->cow);
	} else if (dev->fd >= 0) {
		ubdk_os_close(dev->fd);
	}
	ubdk_os_free(dev->bitmap);
	ubdk_os_free(dev->dirty);
	ubdk_os_free(dev);
}

/* --- the I/O thread ----------------------------------------------------- */

/* The thread's end of the socket pair. */
static int thread_fd = -1;
/* Devices with dirty bitmap pages (thread only). */
static struct ubdh_dev *dirty_list;

/*
 * Make scratch iovecs covering bytes [from, to) of the request's buffer.
 * Returns how many.
 */
static int sub_iov(struct ubdh_req *req, unsigned long long from,
		   unsigned long long to)
{
	unsigned long long start = 0;
	int i, n = 0;

	for (i = 0; i < req->nseg && start < to; i++) {
		unsigned long long end = start + req->seg[i].len;
		unsigned long long s = start > from ? start : from;
		unsigned long long e = end < to ? end : to;

		if (s < e) {
			req->scratch[n].base = (char *)req->seg[i].base +
					       (s - start);
			req->scratch[n].len = e - s;
			n++;
		}
		start = end;
	}
	return n;
}

/* Zero what a short read left of an iovec array, from byte done on. */
static void zero_rest(struct iovec *iov, int n, unsigned long long done)
{
	int i;

	for (i = 0; i < n; i++) {
		if (done >= iov[i].iov_len) {
			done -= iov[i].iov_len;
			continue;
		}
		memset((char *)iov[i].iov_base + done, 0,
		       iov[i].iov_len - done);
		done = 0;
	}
}

/* Advance an iovec array by n bytes (after a short transfer). */
static int iov_advance(struct iovec **iov, int *cnt, unsigned long long n)
{
	while (*cnt && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
	return *cnt;
}

/* Read fully, zero-filling past the end of the file. */
static int read_iov(int fd, struct iovec *iov, int cnt, unsigned long long off,
		    unsigned long long len)
{
	unsigned long long done = 0;
	ssize_t n;

	while (done < len) {
		n = preadv(fd, iov, cnt, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (n == 0) {
			zero_rest(iov, cnt, 0);
			return 0;
		}
		done += (unsigned long long)n;
		if (done < len)
			iov_advance(&iov, &cnt, (unsigned long long)n);
	}
	return 0;
}

static int write_iov(int fd, struct iovec *iov, int cnt,
		     unsigned long long off, unsigned long long len)
{
	unsigned long long done = 0;
	ssize_t n;

	while (done < len) {
		n = pwritev(fd, iov, cnt, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (n == 0)
			return EIO;
		done += (unsigned long long)n;
		if (done < len)
			iov_advance(&iov, &cnt, (unsigned long long)n);
	}
	return 0;
}

/* Copy the request's iovecs (they are advanced on short transfers). */
static struct iovec *req_iov(struct ubdh_req *req)
{
	memcpy(req->scratch, req->seg, sizeof(req->seg[0]) * req->nseg);
	return (struct iovec *)req->scratch;
}

static void mark_dirty(struct ubdh_dev *dev, unsigned long long first,
		       unsigned long long last)
{
	unsigned long long c;

	ubdk_bitmap_set_range(dev->bitmap, first, last + 1);
	for (c = first / 8 / DIRTY_CHUNK; c <= last / 8 / DIRTY_CHUNK; c++)
		ubdk_bitmap_set(dev->dirty, c);
	if (!dev->any_dirty) {
		dev->any_dirty = 1;
		dev->next_dirty = dirty_list;
		dirty_list = dev;
	}
}

static void unlist_dirty(struct ubdh_dev *dev)
{
	struct ubdh_dev **p;

	for (p = &dirty_list; *p; p = &(*p)->next_dirty) {
		if (*p == dev) {
			*p = dev->next_dirty;
			break;
		}
	}
	dev->next_dirty = NULL;
}

static int flush_dev(struct ubdh_dev *dev)
{
	int ret;

	if (dev->cow) {
		ret = write_bitmap(dev);
		if (ret < 0)
			return -ret;
		unlist_dirty(dev);
		ret = ubdk_cow_flush(dev->cow, NULL);
	} else {
		ret = ubdk_os_fsync(dev->fd);
	}
	return ret < 0 ? -ret : 0;
}

static int do_fallocate(int fd, int op, unsigned long long off,
			unsigned long long len)
{
	int mode = FALLOC_FL_KEEP_SIZE | (op == UBDH_OP_DISCARD ?
		   FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);

	if (fallocate(fd, mode, (off_t)off, (off_t)len) < 0)
		return errno;
	return 0;
}

static int cow_read(struct ubdh_dev *dev, struct ubdh_req *req)
{
	unsigned long long ss = dev->ss, pos, end, first, last;
	int ret;

	first = req->off / ss;
	last = (req->off + req->len - 1) / ss;
	pos = first;
	while (pos <= last) {
		bool in_cow = pos < dev->covered &&
			      ubdk_bitmap_test(dev->bitmap, pos);
		unsigned long long from, to;
		int n;

		if (pos >= dev->covered)
			end = last + 1;
		else
			end = ubdk_bitmap_find(dev->bitmap, pos,
					       last + 1 < dev->covered ?
					       last + 1 : dev->covered,
					       !in_cow);
		if (!in_cow && end == dev->covered)
			end = last + 1;
		from = pos * ss < req->off ? req->off : pos * ss;
		to = end * ss > req->off + req->len ? req->off + req->len :
		     end * ss;
		n = sub_iov(req, from - req->off, to - req->off);
		if (in_cow)
			ret = read_iov(dev->fd, (struct iovec *)req->scratch, n,
				       dev->data_offset + from, to - from);
		else if (dev->backing_fd >= 0)
			ret = read_iov(dev->backing_fd,
				       (struct iovec *)req->scratch, n, from,
				       to - from);
		else {
			zero_rest((struct iovec *)req->scratch, n, 0);
			ret = 0;
		}
		if (ret)
			return ret;
		pos = end;
	}
	return 0;
}

static int cow_write(struct ubdh_dev *dev, struct ubdh_req *req)
{
	unsigned long long ss = dev->ss, first, last;
	int ret;

	if (req->off % ss || req->len % ss)
		return EINVAL;
	first = req->off / ss;
	last = (req->off + req->len - 1) / ss;
	/* Old v1/v2 files leave their last sectors without a bit. */
	if (last >= dev->covered)
		return EIO;
	if (req->op == UBDH_OP_WRITE)
		ret = write_iov(dev->fd, req_iov(req), req->nseg,
				dev->data_offset + req->off, req->len);
	else
		ret = do_fallocate(dev->fd, req->op,
				   dev->data_offset + req->off, req->len);
	if (ret)
		return ret;
	/* Bits already set: nothing more to record. */
	if (ubdk_bitmap_find(dev->bitmap, first, last + 1, false) > last)
		return 0;
	mark_dirty(dev, first, last);
	if (dev->sync)
		return flush_dev(dev);
	return 0;
}

static int plain_io(struct ubdh_dev *dev, struct ubdh_req *req)
{
	int ret;

	switch (req->op) {
	case UBDH_OP_READ:
		return read_iov(dev->fd, req_iov(req), req->nseg, req->off,
				req->len);
	case UBDH_OP_WRITE:
		ret = write_iov(dev->fd, req_iov(req), req->nseg, req->off,
				req->len);
		break;
	default:
		ret = do_fallocate(dev->fd, req->op, req->off, req->len);
		break;
	}
	if (!ret && dev->sync)
		ret = fdatasync(dev->fd) < 0 ? errno : 0;
	return ret;
}

static void serve(struct ubdh_req *req)
{
	struct ubdh_dev *dev = req->dev;

	switch (req->op) {
	case UBDH_OP_FLUSH:
		req->error = flush_dev(dev);
		return;
	case UBDH_OP_QUIESCE:
		req->error = dev->cow ? -write_bitmap(dev) : 0;
		unlist_dirty(dev);
		return;
	}
	if (req->len == 0) {
		req->error = 0;
		return;
	}
	if (!dev->cow)
		req->error = plain_io(dev, req);
	else if (req->op == UBDH_OP_READ)
		req->error = cow_read(dev, req);
	else
		req->error = cow_write(dev, req);
}

/* Idle: put the dirty bitmap pages of every device on disk (no fsync). */
static void write_all_bitmaps(void)
{
	while (dirty_list) {
		struct ubdh_dev *dev = dirty_list;

		dirty_list = dev->next_dirty;
		dev->next_dirty = NULL;
		write_bitmap(dev);
	}
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
					write_all_bitmaps();
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
