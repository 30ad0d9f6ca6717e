/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "changes/io_tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "guest/guest.h"

#define MAX_TRACEES 32

/*
 * A write is marked at the entry of its system call and again at its exit.
 * The entry mark alone loses a race: a catch-up round that takes the marks
 * while the write is still in flight may read the block before the new
 * data lands, and nothing would mark it again.
 */
struct pending {
	int file;               /* -1: none */
	uint64_t off, len;
};

struct tracee {
	pid_t tid;
	bool alive;
	struct pending pend;
};

struct tfile {
	dev_t dev;
	ino_t ino;
	uint64_t nblocks;
	uint64_t *bits;
};

struct iotrack {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pid_t pid;
	int nfiles;
	struct tfile *files;
	struct tracee tracees[MAX_TRACEES];
	int ntracees;
	/* Set under lock. */
	bool started, start_failed, failed, done;
	char why[256];
	uint64_t writes;
	volatile sig_atomic_t stopping;
};

static void on_wake(int sig)
{
	(void)sig;
}

static void set_failed(struct iotrack *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_failed(struct iotrack *t, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&t->lock);
	if (!t->failed) {
		va_start(ap, fmt);
		vsnprintf(t->why, sizeof(t->why), fmt, ap);
		va_end(ap);
		t->failed = true;
	}
	pthread_mutex_unlock(&t->lock);
}

/* Which watched file is descriptor fd of task tid?  -1 if none. */
static int file_of(struct iotrack *t, pid_t tid, long long fd)
{
	char path[64];
	struct stat st;

	if (fd < 0 || fd > 1 << 20)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/fd/%lld", (long)tid, fd);
	if (stat(path, &st) < 0)
		return -1;
	for (int i = 0; i < t->nfiles; i++)
		if (t->files[i].dev == st.st_dev && t->files[i].ino == st.st_ino)
			return i;
	return -1;
}

static void mark(struct iotrack *t, int i, uint64_t off, uint64_t len, bool count)
{
	struct tfile *f = &t->files[i];
	uint64_t b, e;

	if (len == 0)
		return;
	b = off / IOTRACK_BLOCK;
	e = off + len < off ? UINT64_MAX / IOTRACK_BLOCK :
	    (off + len + IOTRACK_BLOCK - 1) / IOTRACK_BLOCK;
	if (e > f->nblocks)
		e = f->nblocks;
	pthread_mutex_lock(&t->lock);
	for (; b < e; b++) {
		if ((b & 63) == 0 && e - b >= 64) {
			f->bits[b / 64] = ~0ULL;
			b += 63;
			continue;
		}
		f->bits[b / 64] |= 1ULL << (b & 63);
	}
	t->writes += count;
	pthread_mutex_unlock(&t->lock);
}

/* The file position of descriptor fd of tid, from fdinfo; -1 if unknown. */
static long long file_pos(pid_t tid, long long fd)
{
	char path[64], buf[256];
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/%ld/fdinfo/%lld", (long)tid, fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -1;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (strncmp(buf, "pos:", 4) != 0)
		return -1;
	return strtoll(buf + 4, NULL, 10);
}

/* Total length of an iovec array in the tracee; -1 if unreadable. */
static long long iov_len(pid_t tid, uint64_t addr, uint64_t cnt)
{
	struct iovec v[64];
	long long total = 0;

	while (cnt > 0) {
		size_t k = cnt < 64 ? (size_t)cnt : 64;
		struct iovec local = { v, k * sizeof(v[0]) };
		struct iovec remote = { (void *)(uintptr_t)addr, k * sizeof(v[0]) };

		if (process_vm_readv(tid, &local, 1, &remote, 1, 0) !=
		    (ssize_t)(k * sizeof(v[0])))
			return -1;
		for (size_t i = 0; i < k; i++)
			total += (long long)v[i].iov_len;
		cnt -= k;
		addr += k * sizeof(v[0]);
	}
	return total;
}

static void mark_entry(struct iotrack *t, struct tracee *tr, int f, uint64_t off,
		       uint64_t len)
{
	mark(t, f, off, len, true);
	tr->pend = (struct pending){ f, off, len };
}

/* A system call is about to run in the tracee: note what it will write. */
static void on_entry(struct iotrack *t, struct tracee *tr, const struct __ptrace_syscall_info *si)
{
	const uint64_t *a = si->entry.args;
	pid_t tid = tr->tid;
	long long nr = (long long)si->entry.nr, len, pos;
	int f;

	switch (nr) {
	case SYS_pwrite64:
		if ((f = file_of(t, tid, (long long)a[0])) >= 0)
			mark_entry(t, tr, f, a[3], a[2]);
		return;
	case SYS_write:
		if ((f = file_of(t, tid, (long long)a[0])) >= 0) {
			pos = file_pos(tid, (long long)a[0]);
			if (pos < 0)
				set_failed(t, "a write() at an unknown position");
			else
				mark_entry(t, tr, f, (uint64_t)pos, a[2]);
		}
		return;
	case SYS_pwritev:
#ifdef SYS_pwritev2
	case SYS_pwritev2:
#endif
	case SYS_writev:
		if ((f = file_of(t, tid, (long long)a[0])) < 0)
			return;
		len = iov_len(tid, a[1], a[2]);
		pos = nr == SYS_writev || (long long)a[3] == -1 ?
		      file_pos(tid, (long long)a[0]) : (long long)a[3];
		if (len < 0 || pos < 0)
			set_failed(t, "a vectored write the tracker cannot place");
		else
			mark_entry(t, tr, f, (uint64_t)pos, (uint64_t)len);
		return;
	case SYS_fallocate:
		if ((f = file_of(t, tid, (long long)a[0])) >= 0)
			mark_entry(t, tr, f, a[2], a[3]);
		return;
	case SYS_ftruncate:
	case SYS_sendfile:
	case SYS_io_submit:
#ifdef SYS_io_uring_enter
	case SYS_io_uring_enter:
#endif
		if (file_of(t, tid, (long long)a[0]) >= 0 || nr == SYS_io_submit
#ifdef SYS_io_uring_enter
		    || nr == SYS_io_uring_enter
#endif
		    )
			set_failed(t, "a write the tracker cannot place (system call %lld)", nr);
		return;
	case SYS_copy_file_range:
		if (file_of(t, tid, (long long)a[2]) >= 0)
			set_failed(t, "a copy_file_range() into a COW file");
		return;
	case SYS_splice:
		if (file_of(t, tid, (long long)a[2]) >= 0)
			set_failed(t, "a splice() into a COW file");
		return;
	case SYS_mmap:
		if ((a[2] & 2) && (a[3] & 1) && file_of(t, tid, (long long)a[4]) >= 0)
			set_failed(t, "a shared writable mapping of a COW file");
		return;
	default:
		return;
	}
}

static struct tracee *find(struct iotrack *t, pid_t tid)
{
	for (int i = 0; i < t->ntracees; i++)
		if (t->tracees[i].tid == tid && t->tracees[i].alive)
			return &t->tracees[i];
	return NULL;
}

static int live_tracees(struct iotrack *t)
{
	int n = 0;

	for (int i = 0; i < t->ntracees; i++)
		n += t->tracees[i].alive;
	return n;
}

/* Handle one wait status of a tracee; false when it is gone. */
static void handle(struct iotrack *t, struct tracee *tr, int st)
{
	struct __ptrace_syscall_info si;
	int sig, event;

	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		tr->alive = false;
		set_failed(t, "the guest's I/O thread (pid %ld) exited", (long)tr->tid);
		return;
	}
	if (!WIFSTOPPED(st))
		return;
	sig = WSTOPSIG(st);
	event = st >> 16;
	if (sig == (SIGTRAP | 0x80)) {
		if (ptrace(PTRACE_GET_SYSCALL_INFO, tr->tid, (void *)sizeof(si), &si) > 0) {
			if (si.op == PTRACE_SYSCALL_INFO_ENTRY) {
				tr->pend.file = -1;
				on_entry(t, tr, &si);
			} else if (si.op == PTRACE_SYSCALL_INFO_EXIT && tr->pend.file >= 0) {
				mark(t, tr->pend.file, tr->pend.off, tr->pend.len, false);
				tr->pend.file = -1;
			}
		}
		sig = 0;
	} else if (event == PTRACE_EVENT_STOP) {
		if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
			/* A group stop: stay stopped, but keep the tracee ours. */
			ptrace(PTRACE_LISTEN, tr->tid, NULL, NULL);
			return;
		}
		sig = 0;
	} else if (event) {
		sig = 0;
	}
	/* Resume to the next system call, delivering a signal if it had one. */
	if (ptrace(PTRACE_SYSCALL, tr->tid, NULL, (void *)(long)sig) < 0 && errno == ESRCH) {
		tr->alive = false;
		set_failed(t, "the guest's I/O thread (pid %ld) went away", (long)tr->tid);
	}
}

static void detach_all(struct iotrack *t)
{
	for (int i = 0; i < t->ntracees; i++) {
		struct tracee *tr = &t->tracees[i];

		if (!tr->alive)
			continue;
		if (ptrace(PTRACE_INTERRUPT, tr->tid, NULL, NULL) < 0) {
			tr->alive = false;
			continue;
		}
		for (;;) {
			int st, sig = 0;
			pid_t w = waitpid(tr->tid, &st, __WALL);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 || WIFEXITED(st) || WIFSIGNALED(st))
				break;
			if (!WIFSTOPPED(st))
				continue;
			/* A signal about to be delivered goes on with it. */
			if (WSTOPSIG(st) != (SIGTRAP | 0x80) && !(st >> 16))
				sig = WSTOPSIG(st);
			ptrace(PTRACE_DETACH, tr->tid, NULL, (void *)(long)sig);
			break;
		}
		tr->alive = false;
	}
}

/*
 * UML's helper threads (the ubd I/O thread among them) are clones sharing
 * the kernel's memory.  Its other children are the stubs that run guest
 * processes, which UML itself traces; one caught just after its clone,
 * before it asks to be traced, would be ours instead and the guest process
 * would fail to start.  So only tasks sharing the kernel's memory are
 * traced.
 */
static bool shares_kernel_memory(pid_t kernel, pid_t tid)
{
	return syscall(SYS_kcmp, kernel, tid, KCMP_VM, 0, 0) == 0;
}

static void *tracer(void *arg)
{
	struct iotrack *t = arg;
	pid_t tids[256];
	int n, ret = 0;

	n = guest_helper_tasks(t->pid, tids, 256);
	if (n < 0)
		ret = n;
	for (int i = 0; ret == 0 && i < n; i++) {
		char path[64];
		struct stat st;

		/* The kernel process itself is not traced: not an I/O thread. */
		snprintf(path, sizeof(path), "/proc/%ld/task/%ld", (long)t->pid, (long)tids[i]);
		if (stat(path, &st) == 0)
			continue;
		if (!shares_kernel_memory(t->pid, tids[i]))
			continue;
		if (t->ntracees == MAX_TRACEES) {
			ret = -E2BIG;
			break;
		}
		if (ptrace(PTRACE_SEIZE, tids[i], NULL,
			   (void *)(long)PTRACE_O_TRACESYSGOOD) < 0) {
			if (errno == ESRCH)
				continue;
			ret = -errno;
			break;
		}
		t->tracees[t->ntracees++] = (struct tracee){ tids[i], true, { -1, 0, 0 } };
	}
	if (ret == 0 && t->ntracees == 0)
		ret = -ESRCH;
	/* Stop each one once, then let it run to its next system call. */
	for (int i = 0; ret == 0 && i < t->ntracees; i++) {
		struct tracee *tr = &t->tracees[i];
		int st;

		if (ptrace(PTRACE_INTERRUPT, tr->tid, NULL, NULL) < 0) {
			ret = -errno;
			break;
		}
		for (;;) {
			pid_t w = waitpid(tr->tid, &st, __WALL);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 || !WIFSTOPPED(st)) {
				ret = -ESRCH;
				break;
			}
			if ((st >> 16) == PTRACE_EVENT_STOP)
				break;
			handle(t, tr, st);
		}
		if (ret == 0 && ptrace(PTRACE_SYSCALL, tr->tid, NULL, NULL) < 0)
			ret = -errno;
	}
	pthread_mutex_lock(&t->lock);
	if (ret < 0) {
		snprintf(t->why, sizeof(t->why), "cannot trace the guest's I/O thread: %s",
			 ret == -ESRCH ? "no helper process found" : strerror(-ret));
		t->start_failed = true;
	}
	t->started = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	if (ret < 0) {
		detach_all(t);
		goto out;
	}
	while (!t->stopping && live_tracees(t) > 0) {
		int st;
		pid_t w = waitpid(-1, &st, __WALL);
		struct tracee *tr;

		if (w < 0) {
			if (errno == EINTR)
				continue;
			set_failed(t, "lost the guest's I/O thread: %s", strerror(errno));
			break;
		}
		tr = find(t, w);
		if (tr)
			handle(t, tr, st);
	}
	detach_all(t);
out:
	pthread_mutex_lock(&t->lock);
	t->done = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static void free_track(struct iotrack *t)
{
	for (int i = 0; i < t->nfiles; i++)
		free(t->files[i].bits);
	free(t->files);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	free(t);
}

int iotrack_start(struct iotrack **out, pid_t pid, const struct iotrack_file *files,
		  int nfiles, char *why, size_t whylen)
{
	struct sigaction sa = { .sa_handler = on_wake };
	struct iotrack *t;
	int ret;

	*out = NULL;
	why[0] = '\0';
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->pid = pid;
	t->nfiles = nfiles;
	t->files = calloc((size_t)nfiles, sizeof(*t->files));
	if (!t->files) {
		free_track(t);
		return -ENOMEM;
	}
	for (int i = 0; i < nfiles; i++) {
		t->files[i].dev = files[i].dev;
		t->files[i].ino = files[i].ino;
		t->files[i].nblocks = (files[i].size + IOTRACK_BLOCK - 1) / IOTRACK_BLOCK;
		t->files[i].bits = calloc((size_t)(t->files[i].nblocks + 63) / 64 + 1, 8);
		if (!t->files[i].bits) {
			free_track(t);
			return -ENOMEM;
		}
	}
	/* SIGUSR2 only interrupts the tracer's waitpid() when we stop it. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	ret = pthread_create(&t->thread, NULL, tracer, t);
	if (ret) {
		free_track(t);
		snprintf(why, whylen, "cannot start the tracer: %s", strerror(ret));
		return -ret;
	}
	pthread_mutex_lock(&t->lock);
	while (!t->started)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	if (t->start_failed) {
		snprintf(why, whylen, "%s", t->why);
		pthread_join(t->thread, NULL);
		free_track(t);
		return -EPERM;
	}
	*out = t;
	return 0;
}

uint64_t *iotrack_take(struct iotrack *t, int i, uint64_t *nblocks)
{
	struct tfile *f = &t->files[i];
	size_t words = (size_t)(f->nblocks + 63) / 64 + 1;
	uint64_t *fresh = calloc(words, 8), *old;

	if (!fresh)
		return NULL;
	pthread_mutex_lock(&t->lock);
	old = f->bits;
	f->bits = fresh;
	pthread_mutex_unlock(&t->lock);
	*nblocks = f->nblocks;
	return old;
}

bool iotrack_ok(struct iotrack *t, char *why, size_t whylen)
{
	bool ok;

	pthread_mutex_lock(&t->lock);
	ok = !t->failed;
	if (!ok && why)
		snprintf(why, whylen, "%s", t->why);
	pthread_mutex_unlock(&t->lock);
	return ok;
}

uint64_t iotrack_writes(struct iotrack *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->lock);
	n = t->writes;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void iotrack_stop(struct iotrack *t)
{
	if (!t)
		return;
	t->stopping = 1;
	/* Kick the tracer out of waitpid() until it notices. */
	for (;;) {
		bool done;

		pthread_mutex_lock(&t->lock);
		done = t->done;
		pthread_mutex_unlock(&t->lock);
		if (done)
			break;
		pthread_kill(t->thread, SIGUSR2);
		usleep(2000);
	}
	pthread_join(t->thread, NULL);
	free_track(t);
}
