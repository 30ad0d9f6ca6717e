/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "clone.h"
#include "afile.h"
#include "cli.h"
#include "grow.h"
#include "hostlock.h"
#include "ubdk_static.h"

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
 * Clones written but not yet published hold one descriptor each (two
 * with -f: the lock on the file replaced); the bigger the batch, the
 * fewer syncfs() calls, so the soft limit on open files is raised toward
 * the hard one.
 */
#define BATCH_MAX 65536
#define FDS_RESERVED 64

struct dir {
	char path[PATH_MAX];
	int fd;
};

struct pending {
	struct afile file;
	size_t dir;                  /* index into the job's directories */
};

struct state {
	const struct clone_job *job;
	struct dir *dirs;
	size_t ndirs, dirs_cap;
	struct ubdk_err *err;
};

static int fail(struct state *s, int errnum, const char *name,
		const char *what)
{
	return cli_fail_sys(s->err, errnum, name, what);
}

static size_t batch_size(size_t want, unsigned fds_each)
{
	struct rlimit rl;
	rlim_t need;

	if (want > BATCH_MAX)
		want = BATCH_MAX;
	need = (rlim_t)want * fds_each + FDS_RESERVED;
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
	return rl.rlim_cur > FDS_RESERVED + 16 * fds_each ?
	       ((size_t)rl.rlim_cur - FDS_RESERVED) / fds_each : 16;
}

/* Index of name's directory, opened on first use. */
static int dir_index(struct state *s, const char *name, size_t *idx)
{
	char path[PATH_MAX];
	struct dir *d;
	int fd;

	afile_dir_of(name, path, sizeof(path));
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
	d = grow_array(s->dirs, &s->dirs_cap, s->ndirs, sizeof(*d), 8);
	if (!d) {
		close(fd);
		return fail(s, ENOMEM, name, "out of memory");
	}
	s->dirs = d;
	d = &s->dirs[s->ndirs];
	snprintf(d->path, sizeof(d->path), "%s", path);
	d->fd = fd;
	*idx = s->ndirs++;
	return 0;
}

/*
 * Write one clone, not yet visible under its name: the library's fast
 * creation (one block, the apparent size the kernel gives a new COW).
 */
static int write_one(struct state *s, const char *name, struct pending *p)
{
	long holder;
	int ret = dir_index(s, name, &p->dir);

	if (ret < 0)
		return ret;
	ret = afile_open(&p->file, s->dirs[p->dir].fd, name, 0644, false);
	if (ret < 0)
		return fail(s, -ret, name, "cannot create");
	/* Held until published: no guest takes the old COW in between. */
	if (s->job->force)
		ret = afile_lock_target(&p->file, name, &holder);
	if (ret < 0) {
		afile_discard(&p->file);
		return ret == -EAGAIN ?
		       hostlock_fail(s->err, name, holder, "not replaced") :
		       fail(s, -ret, name, "cannot lock it to replace it");
	}
	ret = ubdk_create_fd(p->file.fd, name, s->job->hdr, UBDK_CREATE_FAST,
			     s->err);
	if (ret < 0)
		afile_discard(&p->file);
	return ret;
}

/* Give a written clone its final name. */
static int publish(struct state *s, const char *name, struct pending *p)
{
	int ret = afile_publish(&p->file, name, s->job->force);

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
			r = fsync(p[k].file.fd);
		else if (k > 0 && p[k].dir == p[k - 1].dir)
			continue;
		else
			r = syncfs(p[k].file.fd);
		if (r < 0)
			return fail(s, errno, s->job->names[first + k],
				    "syncing");
	}
	return 0;
}

/* Refuse a header no clone can have before making any. */
static int valid_header(struct state *s)
{
	struct ubdk_geometry geo;

	return ubdk_header_geometry(s->job->hdr, s->job->names[0], &geo, s->err);
}

int clone_all(const struct clone_job *job, size_t *made, struct ubdk_err *err)
{
	struct state s = { .job = job, .err = err };
	size_t bsize, i = 0, n, k;
	struct pending *p = NULL;
	int ret;

	*made = 0;
	if (job->count == 0)
		return 0;
	ret = valid_header(&s);
	bsize = batch_size(job->count, job->force ? 2 : 1);
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
				afile_discard(&p[k].file);
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
			afile_discard(&p[k].file);
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
	free(p);
	return ret;
}
