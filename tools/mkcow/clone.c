/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "clone.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Clones written but not yet published hold one descriptor each; the
 * bigger the batch, the fewer syncfs() calls, so the soft limit on open
 * files is raised toward the hard one.
 */
#define BATCH_MAX 65536
#define FDS_RESERVED 64

struct dir {
	char path[PATH_MAX];
	int fd;
};

struct pending {
	int fd;
	size_t dir;                  /* index into the job's directories */
	char *tmp;                   /* hidden name, named fallback only */
};

struct state {
	const struct clone_job *job;
	struct dir *dirs;
	size_t ndirs, dirs_cap;
	bool use_tmpfile;
	uint8_t *header;             /* encoded once for all clones */
	size_t header_len;
	uint64_t file_size;
	mode_t mode;                 /* 0644 less the umask */
	unsigned tmp_seq;
	struct ubdk_err *err;
};

static int fail(struct state *s, int errnum, const char *name,
		const char *what)
{
	s->err->code = UBDK_E_SYS;
	s->err->errnum = errnum;
	snprintf(s->err->msg, sizeof(s->err->msg), "%s: %s: %s", name, what,
		 strerror(errnum));
	return -errnum;
}

static size_t batch_size(size_t want)
{
	struct rlimit rl;
	rlim_t need;

	if (want > BATCH_MAX)
		want = BATCH_MAX;
	need = (rlim_t)want + FDS_RESERVED;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 16;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ?
			      need : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return want;
	return rl.rlim_cur > FDS_RESERVED + 16 ?
	       (size_t)rl.rlim_cur - FDS_RESERVED : 16;
}

static void split_dir(const char *name, char *dir, size_t len)
{
	const char *slash = strrchr(name, '/');

	if (!slash)
		snprintf(dir, len, ".");
	else if (slash == name)
		snprintf(dir, len, "/");
	else
		snprintf(dir, len, "%.*s", (int)(slash - name), name);
}

static const char *base_of(const char *name)
{
	const char *slash = strrchr(name, '/');

	return slash ? slash + 1 : name;
}

/* Index of name's directory, opened on first use. */
static int dir_index(struct state *s, const char *name, size_t *idx)
{
	char path[PATH_MAX];
	struct dir *d;
	int fd;

	split_dir(name, path, sizeof(path));
	/* Names from one template share a directory: check the last first. */
	for (size_t i = s->ndirs; i-- > 0;) {
		if (strcmp(s->dirs[i].path, path) == 0) {
			*idx = i;
			return 0;
		}
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail(s, errno, name, "cannot open its directory");
	if (s->ndirs == s->dirs_cap) {
		size_t cap = s->dirs_cap ? s->dirs_cap * 2 : 8;

		d = realloc(s->dirs, cap * sizeof(*d));
		if (!d) {
			close(fd);
			return fail(s, ENOMEM, name, "out of memory");
		}
		s->dirs = d;
		s->dirs_cap = cap;
	}
	d = &s->dirs[s->ndirs];
	snprintf(d->path, sizeof(d->path), "%s", path);
	d->fd = fd;
	*idx = s->ndirs++;
	return 0;
}

/* A fresh hidden name next to name, for the fallback and for replacing. */
static int tmp_name(struct state *s, const char *name, char *out, size_t len)
{
	char dir[PATH_MAX];
	int n;

	split_dir(name, dir, sizeof(dir));
	n = snprintf(out, len, "%s/.%s.%ld.%u.tmp", dir, base_of(name),
		     (long)getpid(), s->tmp_seq++);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int open_unnamed(struct state *s, const char *name, struct pending *p)
{
	char tmp[PATH_MAX];

	if (s->use_tmpfile) {
		p->fd = openat(s->dirs[p->dir].fd, ".",
			       O_TMPFILE | O_WRONLY | O_CLOEXEC, s->mode);
		if (p->fd >= 0)
			return 0;
		/* Only a filesystem without O_TMPFILE falls back. */
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			return fail(s, errno, name, "cannot create");
		s->use_tmpfile = false;
	}
	for (int tries = 0; tries < 100; tries++) {
		if (tmp_name(s, name, tmp, sizeof(tmp)) < 0) {
			errno = ENAMETOOLONG;
			break;
		}
		p->fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			     s->mode);
		if (p->fd >= 0) {
			p->tmp = strdup(tmp);
			if (p->tmp)
				return 0;
			close(p->fd);
			unlink(tmp);
			errno = ENOMEM;
			break;
		}
		if (errno != EEXIST)
			break;
	}
	p->fd = -1;
	return fail(s, errno, name, "cannot create");
}

static void discard(struct pending *p)
{
	if (p->fd >= 0)
		close(p->fd);
	if (p->tmp) {
		unlink(p->tmp);
		free(p->tmp);
	}
	p->fd = -1;
	p->tmp = NULL;
}

/*
 * Write one clone, not yet visible under its name: the header, and the
 * apparent size the kernel gives a new COW, as a hole (the same bytes as
 * the kernel's trailing zero byte, one block less).
 */
static int write_one(struct state *s, const char *name, struct pending *p)
{
	ssize_t n;
	int ret = dir_index(s, name, &p->dir);

	if (ret < 0)
		return ret;
	ret = open_unnamed(s, name, p);
	if (ret < 0)
		return ret;
	n = (ssize_t)s->header_len;
	if (n > 0)
		n = pwrite(p->fd, s->header, s->header_len, 0);
	if (n >= 0 && (size_t)n != s->header_len)
		errno = ENOSPC;
	if ((size_t)n != s->header_len ||
	    ftruncate(p->fd, (off_t)s->file_size) < 0) {
		ret = fail(s, errno, name, "writing");
		discard(p);
	}
	return ret;
}

static int link_fd(int fd, const char *name)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) < 0 ?
	       -errno : 0;
}

static int rename_to(const char *from, const char *to)
{
	return rename(from, to) < 0 ? -errno : 0;
}

/* Give a written clone its final name. */
static int publish(struct state *s, const char *name, struct pending *p)
{
	char tmp[PATH_MAX];
	int ret;

	if (p->tmp) {
		/* Named fallback: the clone already has a hidden name. */
		if (s->job->force) {
			ret = rename_to(p->tmp, name);
			if (ret == 0) {
				free(p->tmp);
				p->tmp = NULL;
			}
		} else {
			ret = link(p->tmp, name) < 0 ? -errno : 0;
		}
	} else if (!s->job->force) {
		/* linkat() refuses an existing name: no race with others. */
		ret = link_fd(p->fd, name);
	} else {
		/* rename() replaces atomically, but needs a name to move. */
		do {
			ret = tmp_name(s, name, tmp, sizeof(tmp));
			if (ret == 0)
				ret = link_fd(p->fd, tmp);
		} while (ret == -EEXIST);
		if (ret == 0) {
			ret = rename_to(tmp, name);
			if (ret < 0)
				unlink(tmp);
		}
	}
	if (ret == -EEXIST) {
		fail(s, EEXIST, name, "cannot create");
		snprintf(s->err->msg, sizeof(s->err->msg),
			 "%s: already exists (use -f to replace it)", name);
	} else if (ret < 0) {
		fail(s, -ret, name, "cannot create");
	}
	return ret;
}

/*
 * Make the batch's data durable before any name appears.  A few clones
 * are fsync'ed one by one; for many, one syncfs() per directory costs a
 * single journal commit instead of one per file.
 */
#define FSYNC_EACH_MAX 16

static int sync_batch(struct state *s, struct pending *p, size_t n,
		      size_t first)
{
	for (size_t k = 0; k < n; k++) {
		int r;

		if (n <= FSYNC_EACH_MAX)
			r = fsync(p[k].fd);
		else if (k > 0 && p[k].dir == p[k - 1].dir)
			continue;
		else
			r = syncfs(p[k].fd);
		if (r < 0)
			return fail(s, errno, s->job->names[first + k],
				    "syncing");
	}
	return 0;
}

/* The header bytes every clone starts with, and the clones' size. */
static int prepare_header(struct state *s)
{
	struct ubdk_geometry geo;
	int ret = ubdk_header_geometry(s->job->hdr, s->job->names[0], &geo,
				       s->err);

	if (ret < 0)
		return ret;
	s->header = calloc(1, UBDK_HDR_MAX_SIZE);
	if (!s->header)
		return fail(s, ENOMEM, s->job->names[0], "out of memory");
	ret = ubdk_header_encode(s->job->hdr, s->header, UBDK_HDR_MAX_SIZE,
				 s->err);
	if (ret < 0)
		return ret;
	/*
	 * The encoded header ends in zeros after the path; leaving them as
	 * a hole reads back the same and keeps a clone to one block.
	 */
	while (ret > 0 && s->header[ret - 1] == 0)
		ret--;
	s->header_len = (size_t)ret;
	s->file_size = geo.file_size;
	return 0;
}

int clone_all(const struct clone_job *job, size_t *made, struct ubdk_err *err)
{
	struct state s = { .job = job, .err = err, .use_tmpfile = true };
	size_t bsize, i = 0, n, k;
	struct pending *p = NULL;
	mode_t mask;
	int ret;

	*made = 0;
	if (job->count == 0)
		return 0;
	mask = umask(0);
	umask(mask);
	s.mode = 0644 & ~mask;
	/* Naming an unnamed file goes through /proc.  The variable lets the
	 * tests exercise the fallback on filesystems that have O_TMPFILE. */
	if (access("/proc/self/fd", X_OK) < 0 || getenv("UBDK_NO_TMPFILE"))
		s.use_tmpfile = false;
	ret = prepare_header(&s);
	bsize = batch_size(job->count);
	if (ret == 0) {
		p = calloc(bsize, sizeof(*p));
		if (!p)
			ret = fail(&s, ENOMEM, job->names[0], "out of memory");
	}
	while (ret == 0 && i < job->count) {
		for (n = 0; n < bsize && i + n < job->count; n++) {
			ret = write_one(&s, job->names[i + n], &p[n]);
			if (ret < 0)
				break;
		}
		/* What was written before a failure is still published. */
		if (sync_batch(&s, p, n, i) < 0) {
			ret = -err->errnum;
			for (k = 0; k < n; k++)
				discard(&p[k]);
			break;
		}
		for (k = 0; k < n; k++) {
			if (publish(&s, job->names[i + k], &p[k]) < 0) {
				ret = -err->errnum;
				break;
			}
		}
		*made += k;
		for (k = 0; k < n; k++)
			discard(&p[k]);
		i += n;
		if (job->progress)
			job->progress(*made, job->count);
	}
	/* The new names themselves must survive a crash too. */
	for (k = 0; k < s.ndirs; k++) {
		if (fsync(s.dirs[k].fd) < 0 && errno != EINVAL && ret == 0)
			ret = fail(&s, errno, s.dirs[k].path, "syncing directory");
		close(s.dirs[k].fd);
	}
	free(s.dirs);
	free(s.header);
	free(p);
	return ret;
}
