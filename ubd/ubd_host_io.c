// SPDX-License-Identifier: GPL-2.0
/*
 * ubd_host_io.c - the I/O thread of the ubd driver: a host thread sharing
 * the kernel's memory that serves requests (see ubd_host.c for what it
 * may and may not call, and when a COW's bitmap reaches its file).
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

#include "ubd_host_dev.h"
#include "ubd_map_host.h"
#include "ubdk_os.h"

/* Requests carry ubdh_seg arrays that the library reads as ubdk_iov. */
_Static_assert(sizeof(struct ubdh_seg) == sizeof(struct ubdk_iov) &&
	       offsetof(struct ubdh_seg, base) ==
	       offsetof(struct ubdk_iov, base) &&
	       offsetof(struct ubdh_seg, len) ==
	       offsetof(struct ubdk_iov, len),
	       "struct ubdh_seg must be laid out as struct ubdk_iov");

/* Idle time after which changed bitmap chunks are written anyway. */
#define IDLE_MS 50

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
		ubdh_cbt_mark(dev, req->off, len);
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
