/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chainprune.c - `uml_backup prune`: the oldest kept point rewritten as a
 * full one, then the older points removed.
 */
#define _GNU_SOURCE
#include "chainio.h"
#include "afile.h"
#include "cli.h"
#include "extent.h"
#include "input.h"
#include "pack.h"
#include "lz4_splice.h"
#include "quote.h"
#include "xstream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- prune ------------------------------------------------------------------ */

/* Remove a point directory: its manifest first, so it stops being a point. */
static int remove_point(const char *dir)
{
	char path[PATH_MAX + 300];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", dir, MANIFEST);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) < 0) {
			int err = errno;

			closedir(d);
			return -err;
		}
	}
	closedir(d);
	return rmdir(dir) < 0 ? -errno : 0;
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
		ret = write_all(af.fd, p, len, -1);
	if (ret == 0 && fsync(af.fd) < 0)
		ret = -errno;
	if (ret == 0)
		ret = afile_publish(&af, path, false);
	afile_discard(&af);
	return ret;
}

/*
 * Rewrite point `pts[n-1]` as a full point in the hidden directory tmp:
 * each device restored into a scratch file there, then written as a full
 * stream; tables copied; the manifest with kind full and no parent.
 */
static int consolidate(const struct options *o, struct point *pts, int n, const char *tmp)
{
	struct point *p = &pts[n - 1];
	json_t *doc = json_deep_copy(p->m.doc), *devs;
	int dirfd = -1, ret = 0, st = EXIT_FAILED;
	char msg[600] = "", path[PATH_MAX + 80];

	if (!doc)
		return EXIT_FAILED;
	if (mkdir(tmp, 0755) < 0 || (dirfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
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
		int fmt = pack_parse(d->compression ? d->compression : "none");
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
		for (int k = 0; ret == 0 && k < n; k++) {
			const struct manifest_device *kd = point_device(&pts[k], d->device);
			struct apply_ctx a = { .fd = scratch.fd, .p = &pts[k], .d = kd };
			uint8_t dg[16];
			int fd;

			if (!kd) {
				snprintf(msg, sizeof(msg), "point %s has no %s", pts[k].name, d->device);
				ret = -EBADMSG;
				break;
			}
			fd = open_stream(&pts[k], kd, msg, sizeof(msg));
			if (fd < 0) {
				ret = -EBADMSG;
				break;
			}
			ret = xs_read_fd_ex(fd, apply_record, &a, NULL, &fmt, dg, &interrupted, msg,
					    sizeof(msg));
			close(fd);
			if (ret == 0 && !hex_is(dg, kd->stream_xxh128)) {
				snprintf(msg, sizeof(msg), "point %s: %s: digest differs from its "
					 "manifest's", pts[k].name, kd->file);
				ret = -EBADMSG;
			}
			if (a.msg[0])
				snprintf(msg, sizeof(msg), "point %s: %s", pts[k].name, a.msg);
		}
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

int chain_prune(const struct options *o)
{
	const char *chaindir = o->dest;
	static struct point pts[MAX_CHAIN];
	struct chain_list l;
	char msg[600], tmp[PATH_MAX], kdir[PATH_MAX];
	int ret, n = 0, st = 0, first_kept, removed = 0;
	DIR *d;
	struct dirent *e;

	ret = chain_list(chaindir, &l);
	if (ret < 0) {
		cli_error("%s: %s", quote_name(chaindir), ret == -E2BIG ? "too many points" :
			  strerror(-ret));
		return EXIT_FAILED;
	}
	/* Leftovers of a prune that was killed: the real points are whole. */
	d = opendir(chaindir);
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, ".prune-", 7)) {
			snprintf(tmp, sizeof(tmp), "%s/%s", chaindir, e->d_name);
			remove_point(tmp);
		}
	if (d)
		closedir(d);
	if (l.n <= o->keep) {
		if (!o->quiet)
			fprintf(stderr, "%s: %s: %d point%s, keeping %d: nothing to prune\n",
				cli_prog, quote_name(chaindir), l.n, l.n == 1 ? "" : "s", o->keep);
		chain_list_free(&l);
		return 0;
	}
	first_kept = l.n - o->keep;
	/* Every kept point must reach its full point without a removed one. */
	for (int k = l.n - 1; k >= first_kept && st == 0; k--) {
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
	/* pts holds the path of the first kept point (loaded first). */
	if (st == 0 && pts[n - 1].incremental) {
		snprintf(tmp, sizeof(tmp), "%s/.prune-%s", chaindir, l.name[first_kept]);
		snprintf(kdir, sizeof(kdir), "%s/%s", chaindir, l.name[first_kept]);
		st = consolidate(o, pts, n, tmp);
		/* The switch: one atomic exchange of the two directories. */
		if (st == 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, kdir, RENAME_EXCHANGE) < 0) {
			cli_error("%s: cannot switch to the consolidated point: %s", quote_name(kdir),
				  strerror(errno));
			st = EXIT_FAILED;
		}
		/* Now tmp holds the incremental it replaced, or the unfinished new one. */
		remove_point(tmp);
	}
	for (int j = 0; j < n; j++)
		point_free(&pts[j]);
	for (int k = 0; st == 0 && k < first_kept; k++) {
		snprintf(tmp, sizeof(tmp), "%s/%s", chaindir, l.name[k]);
		ret = remove_point(tmp);
		if (ret < 0) {
			cli_error("%s: cannot remove: %s", quote_name(tmp), strerror(-ret));
			st = EXIT_FAILED;
		}
		removed++;
	}
	if (st == 0 && !o->quiet)
		fprintf(stderr, "%s: %s: removed %d point%s; %s is now the full point of %d\n",
			cli_prog, quote_name(chaindir), removed, removed == 1 ? "" : "s",
			l.name[first_kept], o->keep);
	chain_list_free(&l);
	return st;
}
