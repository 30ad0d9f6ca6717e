/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "guest/guest.h"
#include "input.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_TASKS 256

static int copy_str(char *dst, size_t len, const char *src)
{
	if (strlen(src) >= len)
		return -ENAMETOOLONG;
	strcpy(dst, src);
	return 0;
}

static pid_t read_pid_file(const char *dir)
{
	char path[PATH_MAX + 8], buf[32];
	struct stat st;
	ssize_t n;
	int fd;
	long v;

	snprintf(path, sizeof(path), "%s/pid", dir);
	/* The directory is the user's: its "pid" may be a FIFO. */
	fd = input_open(path, &st);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	v = strtol(buf, NULL, 10);
	return v > 0 ? (pid_t)v : 0;
}

int guest_locate(const char *arg, const char *uml_dir, struct guest *g)
{
	struct stat st;
	char buf[PATH_MAX + 16];
	const char *slash;
	ssize_t n;
	int ret;

	memset(g, 0, sizeof(*g));
	if (strchr(arg, '/')) {
		if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
			ret = copy_str(g->dir, sizeof(g->dir), arg);
			if (ret == 0 && snprintf(g->sock, sizeof(g->sock), "%s/mconsole",
						 arg) >= (int)sizeof(g->sock))
				ret = -ENAMETOOLONG;
		} else {
			ret = copy_str(g->sock, sizeof(g->sock), arg);
			if (ret == 0) {
				slash = strrchr(arg, '/');
				if (slash == arg)
					strcpy(g->dir, "/");
				else
					snprintf(g->dir, sizeof(g->dir), "%.*s",
						 (int)(slash - arg), arg);
			}
		}
	} else {
		const char *home = getenv("HOME");

		if (uml_dir)
			ret = snprintf(g->dir, sizeof(g->dir), "%s/%s", uml_dir, arg);
		else
			ret = snprintf(g->dir, sizeof(g->dir), "%s/.uml/%s",
				       home && *home ? home : "/", arg);
		ret = ret >= (int)sizeof(g->dir) ? -ENAMETOOLONG : 0;
		if (ret == 0 && snprintf(g->sock, sizeof(g->sock), "%s/mconsole",
					 g->dir) >= (int)sizeof(g->sock))
			ret = -ENAMETOOLONG;
	}
	if (ret < 0)
		return ret;
	/* The umid is the name of the directory holding the socket. */
	while (strlen(g->dir) > 1 && g->dir[strlen(g->dir) - 1] == '/')
		g->dir[strlen(g->dir) - 1] = '\0';
	slash = strrchr(g->dir, '/');
	snprintf(g->umid, sizeof(g->umid), "%.*s", NAME_MAX, slash ? slash + 1 : g->dir);
	if (stat(g->sock, &st) < 0)
		return -errno;
	g->pid = read_pid_file(g->dir);
	if (g->pid && kill(g->pid, 0) < 0 && errno == ESRCH)
		g->pid = 0;
	if (g->pid) {
		snprintf(buf, sizeof(buf), "/proc/%ld/cwd", (long)g->pid);
		n = readlink(buf, g->cwd, sizeof(g->cwd) - 1);
		g->cwd[n > 0 ? n : 0] = '\0';
	}
	return 0;
}

int guest_abspath(const struct guest *g, const char *path, char *out, size_t len)
{
	if (path[0] == '/')
		return copy_str(out, len, path);
	if (!g->cwd[0])
		return -EINVAL;
	if ((size_t)snprintf(out, len, "%s/%s", g->cwd, path) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int guest_has_open(const struct guest *g, const char *name, dev_t dev, ino_t ino)
{
	char path[64], link[PATH_MAX + 16];
	size_t nlen = strlen(name);
	struct dirent *de;
	struct stat st;
	DIR *d;
	int found = 0;

	if (!g->pid)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)g->pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while (!found && (de = readdir(d))) {
		char fdpath[400];
		ssize_t n;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(fdpath, sizeof(fdpath), "%s/%s", path, de->d_name);
		if (stat(fdpath, &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
			found = 1;
			break;
		}
		/* Another file under that name: replaced, or deleted. */
		n = readlink(fdpath, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			if (!strncmp(link, name, nlen) &&
			    (link[nlen] == '\0' || !strcmp(link + nlen, " (deleted)")))
				found = 2;
		}
	}
	closedir(d);
	return found;
}

bool guest_alive(const struct guest *g)
{
	return !g->pid || kill(g->pid, 0) == 0 || errno == EPERM;
}

/* Read a small /proc file into buf; length or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* State letter and parent of a task, from /proc/PID/task/TID/stat. */
static int task_stat(pid_t pid, pid_t tid, char *state, pid_t *ppid)
{
	char path[96], buf[1024], *p;
	long pp;

	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/stat", (long)pid, (long)tid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return -ESRCH;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %ld", state, &pp) != 2)
		return -EPROTO;
	if (ppid)
		*ppid = (pid_t)pp;
	return 0;
}

static pid_t tracer_of(pid_t tid)
{
	char path[64], buf[4096], *p;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)tid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return 0;
	p = strstr(buf, "\nTracerPid:");
	return p ? (pid_t)strtol(p + 11, NULL, 10) : 0;
}

static int add_threads(pid_t pid, pid_t tracer_to_skip, pid_t *tids, int n, int max)
{
	char path[64];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
	d = opendir(path);
	if (!d)
		return n;
	while (n < max && (de = readdir(d))) {
		pid_t tid = (pid_t)strtol(de->d_name, NULL, 10);

		if (tid <= 0)
			continue;
		if (tracer_to_skip && tracer_of(tid) == tracer_to_skip)
			continue;
		tids[n++] = tid;
	}
	closedir(d);
	return n;
}

int guest_helper_tasks(pid_t pid, pid_t *tids, int max)
{
	char path[96], buf[4096];
	struct dirent *de;
	DIR *d;
	int n;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return -ESRCH;
	n = add_threads(pid, 0, tids, 0, max);
	/* Children: from the kernel's list if it keeps one, else a scan. */
	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", (long)pid, (long)pid);
	if (read_small(path, buf, sizeof(buf)) >= 0) {
		char *p = buf, *end;

		for (;;) {
			long c = strtol(p, &end, 10);

			if (end == p)
				break;
			p = end;
			n = add_threads((pid_t)c, pid, tids, n, max);
		}
		return n;
	}
	d = opendir("/proc");
	if (!d)
		return -errno;
	while (n < max && (de = readdir(d))) {
		pid_t c = (pid_t)strtol(de->d_name, NULL, 10);
		pid_t pp;
		char st;

		if (c > 0 && task_stat(c, c, &st, &pp) == 0 && pp == pid)
			n = add_threads(c, pid, tids, n, max);
	}
	closedir(d);
	return n;
}

/* --- in-flight I/O -------------------------------------------------------- */

enum { IDLE, BUSY, QUIET, GONE };

/* Bytes queued for reading on another task's descriptor; -1 if unknown. */
static long queued(pid_t tid, int fd, bool is_epoll)
{
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_getfd)
	int pfd = (int)syscall(SYS_pidfd_open, tid, 0);
	int mine;
	long n = -1;

	if (pfd < 0)
		return -1;
	mine = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
	close(pfd);
	if (mine < 0)
		return -1;
	if (is_epoll) {
		/* poll() on an epoll set reports readiness without consuming. */
		struct pollfd p = { .fd = mine, .events = POLLIN };

		n = poll(&p, 1, 0);
		n = n < 0 ? -1 : n;
	} else {
		int v;

		if (ioctl(mine, FIONREAD, &v) == 0)
			n = v;
	}
	close(mine);
	return n;
#else
	(void)tid;
	(void)fd;
	(void)is_epoll;
	return -1;
#endif
}

static bool is_write_call(long nr)
{
	switch (nr) {
	case SYS_write: case SYS_pwrite64: case SYS_writev: case SYS_pwritev:
#ifdef SYS_pwritev2
	case SYS_pwritev2:
#endif
	case SYS_fallocate: case SYS_ftruncate: case SYS_copy_file_range:
	case SYS_sendfile: case SYS_splice: case SYS_fsync: case SYS_fdatasync:
	case SYS_sync_file_range: case SYS_io_submit:
#ifdef SYS_io_uring_enter
	case SYS_io_uring_enter:
#endif
		return true;
	default:
		return false;
	}
}

/*
 * One look at one task.  `exact` is cleared when a queue could not be
 * inspected, so the caller falls back to asking for stability.
 */
static int look(pid_t pid, pid_t tid, bool *exact)
{
	char path[96], buf[512], state;
	unsigned long long a[6];
	long nr;
	int ret;

	ret = task_stat(pid, tid, &state, NULL);
	if (ret < 0)
		return GONE;
	if (state == 'Z' || state == 'X')
		return GONE;
	if (state == 'R')
		return BUSY;
	if (state == 'D')
		return BUSY;
	if (state == 't' || state == 'T') {
		/*
		 * Stopped by the guest kernel: a guest process, no host I/O.
		 * Stopped by anybody else (our I/O tracker between two system
		 * calls, a debugger, SIGSTOP): it may write when it goes on.
		 */
		return tracer_of(tid) == pid ? IDLE : BUSY;
	}
	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/syscall", (long)pid, (long)tid);
	ret = (int)read_small(path, buf, sizeof(buf));
	if (ret < 0) {
		*exact = false;
		return QUIET;
	}
	if (strncmp(buf, "running", 7) == 0)
		return BUSY;
	if (sscanf(buf, "%ld %llx %llx %llx %llx %llx %llx", &nr, &a[0], &a[1],
		   &a[2], &a[3], &a[4], &a[5]) < 1)
		return BUSY;
	if (nr < 0)
		return QUIET;   /* blocked outside a system call */
	if (is_write_call(nr))
		return BUSY;
	switch (nr) {
	case SYS_poll:
	case SYS_ppoll: {
		struct pollfd pfds[16];
		size_t cnt = a[1] < 16 ? (size_t)a[1] : 16;
		struct iovec local = { pfds, cnt * sizeof(pfds[0]) };
		struct iovec remote = { (void *)(uintptr_t)a[0], cnt * sizeof(pfds[0]) };

		if (a[1] > 16 || process_vm_readv(tid, &local, 1, &remote, 1, 0) !=
		    (ssize_t)(cnt * sizeof(pfds[0]))) {
			*exact = false;
			return QUIET;
		}
		for (size_t i = 0; i < cnt; i++) {
			long q;

			if (pfds[i].fd < 0 || !(pfds[i].events & POLLIN))
				continue;
			q = queued(tid, pfds[i].fd, false);
			if (q > 0)
				return BUSY;
			if (q < 0)
				*exact = false;
		}
		return IDLE;
	}
	case SYS_read:
	case SYS_readv:
	case SYS_recvfrom:
	case SYS_recvmsg:
	case SYS_recvmmsg: {
		long q = queued(tid, (int)a[0], false);

		if (q > 0)
			return BUSY;
		if (q < 0)
			*exact = false;
		return IDLE;
	}
	case SYS_epoll_wait:
	case SYS_epoll_pwait:
#ifdef SYS_epoll_pwait2
	case SYS_epoll_pwait2:
#endif
	{
		long q = queued(tid, (int)a[0], true);

		if (q > 0)
			return BUSY;
		if (q < 0)
			*exact = false;
		return IDLE;
	}
	case SYS_futex: case SYS_nanosleep: case SYS_clock_nanosleep:
	case SYS_wait4: case SYS_waitid: case SYS_rt_sigsuspend:
	case SYS_rt_sigtimedwait: case SYS_pause: case SYS_select:
	case SYS_pselect6:
		return IDLE;
	default:
		*exact = false;
		return QUIET;
	}
}

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int guest_wait_io_idle(const struct guest *g, int timeout_ms,
		       volatile sig_atomic_t *intr, const char **how)
{
	pid_t tids[MAX_TASKS];
	long long deadline = now_us() + (long long)timeout_ms * 1000;
	int calm = 0, n;

	*how = "waited";
	if (!g->pid) {
		/* Nothing to look at: give the I/O thread time to finish. */
		usleep(200 * 1000);
		return 0;
	}
	for (;;) {
		bool exact = true, busy = false, readable = false;

		if (intr && *intr)
			return -EINTR;
		n = guest_helper_tasks(g->pid, tids, MAX_TASKS);
		if (n < 0)
			return n == -ESRCH ? -ESRCH : n;
		for (int i = 0; i < n && !busy; i++) {
			int s = look(g->pid, tids[i], &exact);

			if (s == GONE && tids[i] == g->pid)
				return -ESRCH;
			if (s == BUSY)
				busy = true;
			if (s != GONE)
				readable = true;
		}
		if (!readable) {
			usleep(200 * 1000);
			return 0;
		}
		calm = busy ? 0 : calm + 1;
		/*
		 * Exact: every task waits with nothing queued, twice in a row.
		 * Otherwise: no task ran or wrote for 20 samples (about 20 ms).
		 */
		if (calm >= (exact ? 2 : 20)) {
			*how = exact ? "observed" : "sampled";
			return 0;
		}
		if (now_us() > deadline)
			return -ETIMEDOUT;
		usleep(1000);
	}
}
