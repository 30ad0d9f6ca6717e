/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * prune.c - `uml_backup prune`: the oldest kept point rewritten as a
 * full one, then the older points removed.
 */
#define _GNU_SOURCE
#include "cmd/prune.h"
#include "cmd/verify.h"
#include "chain/chainio.h"
#include "afile.h"
#include "cli.h"
#include "extent.h"
#include "input.h"
#include "codec/pack.h"
#include "codec/lz4_splice.h"
#include "quote.h"
#include "format/xstream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- prune ------------------------------------------------------------------ */

/*
 * A prune's work in progress: the oldest kept point being rewritten, the
 * incremental it replaced, a point being removed.  Never a point's name.
 */
#define PRUNE_PREFIX ".prune-"

/*
 * Remove the directory `name` of the chain directory cfd with its files,
 * never through a symbolic link: a name that is one (or became one since
 * it was checked) is refused (-ELOOP or -ENOTDIR), and each file is
 * unlinked in the directory opened, so a link there goes, not its target.
 * 0 (also if it is gone) or -errno.
 */
static int remove_dir_at(int cfd, const char *name)
{
	int fd = openat(cfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), ret = 0;
	struct dirent *e;
	DIR *d;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		ret = -errno;
		close(fd);
		return ret;
	}
	while (ret == 0 && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    unlinkat(dirfd(d), e->d_name, 0) < 0)
			ret = -errno;
	closedir(d);
	if (ret == 0 && unlinkat(cfd, name, AT_REMOVEDIR) < 0)
		ret = -errno;
	return ret;
}

/* remove_dir_at, saying why it failed; 0 or an exit status. */
static int remove_or_say(int cfd, const char *chaindir, const char *name)
{
	int ret = remove_dir_at(cfd, name);

	if (ret == 0)
		return 0;
	cli_error("%s/%s: cannot remove: %s", quote_name(chaindir), quote_name(name),
		  strerror(-ret));
	return EXIT_FAILED;
}

/*
 * A point holds files only; prune removes those and never descends, so a
 * directory someone put in a point would stop it half way: refused first.
 */
static int refuse_subdirs(int cfd, const char *chaindir, const char *name)
{
	int fd = openat(cfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), st = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct stat est;
	struct dirent *e;

	if (!d) {
		cli_error("%s/%s: cannot read: %s; nothing removed", quote_name(chaindir),
			  quote_name(name), strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_FAILED;
	}
	while (st == 0 && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    fstatat(dirfd(d), e->d_name, &est, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(est.st_mode)) {
			cli_error("%s/%s: holds a directory, %s (a point holds files only); "
				  "nothing removed", quote_name(chaindir), quote_name(name),
				  quote_name(e->d_name));
			st = EXIT_CHAIN;
		}
	closedir(d);
	return st;
}

/*
 * An entry prune would remove or rewrite must be a directory of the chain
 * itself, not a symbolic link to one elsewhere (or a file): 0, or an exit
 * status after saying so.
 */
static int refuse_unless_dir(int cfd, const char *chaindir, const char *name)
{
	struct stat st;

	if (fstatat(cfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		cli_error("%s/%s: %s; nothing removed", quote_name(chaindir), quote_name(name),
			  strerror(errno));
		return EXIT_FAILED;
	}
	if (!S_ISDIR(st.st_mode)) {
		cli_error("%s/%s: %s; nothing removed", quote_name(chaindir), quote_name(name),
			  S_ISLNK(st.st_mode) ? "a symbolic link (prune never follows one)" :
			  "not a directory");
		return EXIT_CHAIN;
	}
	return refuse_subdirs(cfd, chaindir, name);
}

/*
 * The PRUNE_PREFIX entries a killed prune left: each checked (remove
 * false) or removed (remove true).  0 or an exit status after a message.
 */
static int leftovers(int cfd, const char *chaindir, bool remove)
{
	int fd = openat(cfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), st = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!d) {
		cli_error("%s: cannot read: %s", quote_name(chaindir), strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_FAILED;
	}
	while (st == 0 && (e = readdir(d)))
		if (!strncmp(e->d_name, PRUNE_PREFIX, strlen(PRUNE_PREFIX)))
			st = remove ? remove_or_say(cfd, chaindir, e->d_name) :
			     refuse_unless_dir(cfd, chaindir, e->d_name);
	closedir(d);
	return st;
}

struct sink_fd {
	int fd;
};

/* Write a file's bytes under a final name (afile); 0 or -errno. */
static int write_file(int dirfd, const char *path, const uint8_t *p, size_t len)
{
	struct afile af;
	int ret = afile_open(&af, dirfd, path, 0644, false);

	if (ret == 0)
		ret = stream_write_all(af.fd, p, len, -1);
	if (ret == 0 && fsync(af.fd) < 0)
		ret = -errno;
	if (ret == 0)
		ret = afile_publish(&af, path, false);
	afile_discard(&af);
	return ret;
}

/*
 * Rewrite point `pts[n-1]` as a full point in the hidden directory `name`
 * of the chain directory cfd, made here: each device restored into a
 * scratch file there, then written as a full stream; tables copied; the
 * manifest with kind full and no parent.
 */
static int consolidate(const struct options *o, struct point *pts, int n, int cfd,
		       const char *chaindir, const char *name)
{
	struct point *p = &pts[n - 1];
	json_t *doc = json_deep_copy(p->m.doc), *devs;
	int dirfd = -1, ret = 0, st = EXIT_FAILED;
	char msg[600] = "", path[PATH_MAX + 80], tmp[PATH_MAX];

	if (!doc)
		return EXIT_FAILED;
	snprintf(tmp, sizeof(tmp), "%s/%s", chaindir, name);
	if (mkdirat(cfd, name, 0755) < 0 ||
	    (dirfd = openat(cfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		cli_error("%s: cannot create: %s", quote_name(tmp), strerror(errno));
		json_decref(doc);
		return errno == ENOSPC || errno == EROFS || errno == EACCES ? EXIT_DEST : EXIT_FAILED;
	}
	devs = json_object_get(doc, "devices");
	for (size_t i = 0; i < p->m.ndev; i++) {
		const struct manifest_device *d = &p->m.dev[i];
		struct afile scratch = { .fd = -1 }, sf = { .fd = -1 };
		struct chunk_table tab;
		struct emit_result r;
		struct packer *pk = NULL;
		struct sink_fd sfd;
		char hex[XXH_HEX];
		int fmt;
		uint64_t written;
		uint8_t *bytes;
		size_t blen;

		snprintf(path, sizeof(path), "%s/%s", p->dir, d->chunks);
		if (!table_read(path, &tab, msg, sizeof(msg))) {
			cli_error("%s: %s", quote_name(path), msg);
			goto fail;
		}
		/* Materialize: the streams from the full point down, as restore does. */
		snprintf(path, sizeof(path), "%s/.scratch", tmp);
		ret = afile_open(&scratch, dirfd, path, 0600, true);
		if (ret == 0)
			ret = chain_apply(pts, n, d->device, scratch.fd, &written, msg, sizeof(msg));
		fmt = pack_parse(d->compression ? d->compression : "none");
		if (ret == 0 && ftruncate(scratch.fd, (off_t)tab.g.file_size) < 0)
			ret = -errno;
		snprintf(path, sizeof(path), "%s/%s", tmp, d->file);
		if (ret == 0)
			ret = afile_open(&sf, dirfd, path, 0644, false);
		sfd.fd = sf.fd;
		if (ret == 0 && fmt > 0)
			ret = packer_open(&pk, fmt, o->level, sf.fd, LZ4S_NO_SIZE);
		if (ret == 0)
			ret = point_emit(scratch.fd, ".scratch", &tab.g, p->id, NULL, NULL,
					 pk ? packer_unit : xs_fd_sink, pk ? (void *)pk : (void *)&sfd,
					 &r);
		if (ret == 0 && pk)
			ret = packer_finish(pk, &r.stream_bytes);
		packer_free(pk);
		if (ret == 0) {
			uint64_t diff;

			/* The content is the point's: the same table. */
			if (!table_same(&tab, &r.tab, &diff)) {
				snprintf(msg, sizeof(msg), "the materialized point differs from "
					 "its chunk table at byte %llu", (unsigned long long)diff);
				ret = -EBADMSG;
			}
			table_free(&r.tab);
		} else if (r.msg[0] && !msg[0]) {
			snprintf(msg, sizeof(msg), "%s", r.msg);
		}
		if (ret == 0 && fsync(sf.fd) < 0)
			ret = -errno;
		if (ret == 0)
			ret = afile_publish(&sf, path, false);
		afile_discard(&sf);
		afile_discard(&scratch);
		bytes = ret == 0 ? table_encode(&tab, &blen) : NULL;
		if (ret == 0 && !bytes)
			ret = -ENOMEM;
		snprintf(path, sizeof(path), "%s/%s", tmp, d->chunks);
		if (ret == 0)
			ret = write_file(dirfd, path, bytes, blen);
		free(bytes);
		table_free(&tab);
		if (ret < 0) {
			cli_error("%s: %s", quote_name(p->dir), msg[0] ? msg : strerror(-ret));
			st = ret == -ENOSPC || ret == -EDQUOT ? EXIT_DEST : ret == -EINTR ?
			     EXIT_INTERRUPTED : EXIT_FAILED;
			goto fail;
		}
		digest_hex(r.digest, hex);
		json_object_set_new(json_array_get(devs, i), "stream_xxh128", json_string(hex));
		json_object_set_new(json_array_get(devs, i), "stored_bytes",
				    json_integer((json_int_t)r.stream_bytes));
	}
	json_object_set_new(doc, "kind", json_string("full"));
	json_object_del(doc, "parent");
	json_object_set_new(doc, "consolidated_from", json_integer(n));
	{
		char *text = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(15));

		snprintf(path, sizeof(path), "%s/%s", tmp, MANIFEST);
		ret = text ? write_file(dirfd, path, (const uint8_t *)text, strlen(text)) : -ENOMEM;
		free(text);
		if (ret == 0 && fsync(dirfd) < 0)
			ret = -errno;
		if (ret < 0) {
			cli_error("%s: %s", quote_name(path), strerror(-ret));
			st = ret == -ENOSPC ? EXIT_DEST : EXIT_FAILED;
			goto fail;
		}
	}
	st = 0;
fail:
	json_decref(doc);
	close(dirfd);
	return st;
}

/*
 * Before anything changes: no entry prune would remove or rewrite is a
 * symbolic link, and the chain is one that verify accepts (a damaged
 * chain is not made shorter: its problem would go with the points).
 * 0 or an exit status after a message.
 */
static int prune_check(int cfd, const char *chaindir, const struct chain_list *l, int first_kept)
{
	char msg[700];
	int st = leftovers(cfd, chaindir, false);

	for (int k = 0; st == 0 && k <= first_kept && k < l->n; k++)
		st = refuse_unless_dir(cfd, chaindir, l->name[k]);
	for (int k = 0; st == 0 && k < l->n; k++) {
		const char *bad = chain_point_problem(chaindir, l->name[k], msg, sizeof(msg));

		if (tool_interrupted)
			return EXIT_INTERRUPTED;
		if (bad) {
			cli_error("%s/%s: %s; nothing removed", quote_name(chaindir),
				  quote_name(l->name[k]), bad);
			st = EXIT_CHAIN;
		}
	}
	return st;
}

/*
 * Remove the points older than the first kept one, newest first, each
 * renamed to a hidden name in one step before its files go: the points
 * left are always a chain that verify accepts (the first kept point is
 * full by now, so each removed point is the child of no point left), and
 * a kill leaves only hidden entries for the next prune to remove.
 */
static int remove_older(int cfd, const char *chaindir, const struct chain_list *l,
			int first_kept)
{
	char hidden[sizeof(PRUNE_PREFIX) + POINT_NAME_LEN];

	for (int k = first_kept - 1; k >= 0; k--) {
		int st;

		snprintf(hidden, sizeof(hidden), PRUNE_PREFIX "%s", l->name[k]);
		if (renameat(cfd, l->name[k], cfd, hidden) < 0) {
			cli_error("%s/%s: cannot remove: %s", quote_name(chaindir), l->name[k],
				  strerror(errno));
			return EXIT_FAILED;
		}
		st = remove_or_say(cfd, chaindir, hidden);
		if (st)
			return st;
	}
	return 0;
}

int prune_run(const struct options *o)
{
	const char *chaindir = o->dest;
	static struct point pts[MAX_CHAIN];
	struct chain_list l;
	char msg[600], hidden[sizeof(PRUNE_PREFIX) + POINT_NAME_LEN];
	int cfd, ret, n = 0, st = 0, first_kept;

	cfd = open(chaindir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = cfd < 0 ? -errno : chain_list(chaindir, &l);
	if (ret < 0) {
		cli_error("%s: %s", quote_name(chaindir), ret == -E2BIG ? "too many points" :
			  strerror(-ret));
		if (cfd >= 0)
			close(cfd);
		return EXIT_FAILED;
	}
	first_kept = l.n > o->keep ? l.n - o->keep : -1;
	st = prune_check(cfd, chaindir, &l, first_kept);
	/* Every kept point must reach its full point without a removed one. */
	for (int k = l.n - 1; k >= first_kept && first_kept >= 0 && st == 0; k--) {
		static struct point other[MAX_CHAIN];
		struct point *path = k == first_kept ? pts : other;
		bool through = false, older = false;
		int m;

		if (!chain_path(chaindir, l.name[k], path, MAX_CHAIN, &m, msg, sizeof(msg))) {
			cli_error("%s: point %s: missing or damaged link: %s; nothing removed",
				  quote_name(chaindir), l.name[k], msg);
			st = EXIT_CHAIN;
			break;
		}
		for (int j = 0; j < m; j++) {
			through |= !strcmp(path[j].name, l.name[first_kept]);
			older |= strcmp(path[j].name, l.name[first_kept]) < 0;
		}
		if (older && !through) {
			cli_error("%s: point %s does not descend from %s; nothing removed",
				  quote_name(chaindir), l.name[k], l.name[first_kept]);
			st = EXIT_CHAIN;
		}
		if (k == first_kept)
			n = m;
		else
			for (int j = 0; j < m; j++)
				point_free(&path[j]);
	}
	/* Leftovers of a prune that was killed: the points are whole without them. */
	if (st == 0)
		st = leftovers(cfd, chaindir, true);
	if (st == 0 && first_kept < 0) {
		if (!o->quiet)
			fprintf(stderr, "%s: %s: %d point%s, keeping %d: nothing to prune\n",
				cli_prog, quote_name(chaindir), l.n, l.n == 1 ? "" : "s", o->keep);
		goto out;
	}
	/* pts holds the path of the first kept point (loaded first). */
	if (st == 0 && pts[n - 1].incremental) {
		snprintf(hidden, sizeof(hidden), PRUNE_PREFIX "%s", l.name[first_kept]);
		st = consolidate(o, pts, n, cfd, chaindir, hidden);
		/* The switch: one atomic exchange of the two directories, made durable
		 * before any ancestor goes. */
		if (st == 0 && (renameat2(cfd, hidden, cfd, l.name[first_kept],
					  RENAME_EXCHANGE) < 0 || fsync(cfd) < 0)) {
			cli_error("%s/%s: cannot switch to the consolidated point: %s",
				  quote_name(chaindir), l.name[first_kept], strerror(errno));
			st = EXIT_FAILED;
		}
		/*
		 * Now hidden holds the incremental it replaced, or the unfinished
		 * new one (the failure was said: the next prune removes it).
		 */
		if (st == 0)
			st = remove_or_say(cfd, chaindir, hidden);
		else
			remove_dir_at(cfd, hidden);
	}
	if (st == 0)
		st = remove_older(cfd, chaindir, &l, first_kept);
	if (st == 0 && !o->quiet)
		fprintf(stderr, "%s: %s: removed %d point%s; %s is now the full point of %d\n",
			cli_prog, quote_name(chaindir), first_kept, first_kept == 1 ? "" : "s",
			l.name[first_kept], o->keep);
out:
	for (int j = 0; j < n; j++)
		point_free(&pts[j]);
	chain_list_free(&l);
	close(cfd);
	return st;
}
