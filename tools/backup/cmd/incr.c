/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * incr.c - `uml_backup --incremental`: a backup run whose destination is
 * a chain directory.  The parent is the chain's newest point; the new
 * point stores, per device, an extent stream (all data for the first,
 * full point; the chunks that differ from the parent's table otherwise)
 * and its chunk table.
 *
 * Live, the pause stays what it is without chains: the comparison runs
 * while the guest does, writing only the differing chunks to a sparse
 * scratch file; the tracer's rounds (live.c) rescan the chunks the guest
 * wrote meanwhile, the last round while it is stopped.  The stream is
 * written after `go`, from the scratch file.
 */
#define _GNU_SOURCE
#include "cmd/backup.h"
#include "cli.h"
#include "codec/lz4_splice.h"
#include "codec/pack.h"
#include "quote.h"
#include "changes/kernel_cbt.h"
#include "format/xstream.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

__attribute__((format(printf, 2, 3)))
static int refuse(struct backup *b, const char *fmt, ...)
{
	char what[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	cli_error("%s: cannot add an incremental point to the chain: %s", quote_name(b->o->dest),
		  what);
	return EXIT_CHAIN;
}

/* This run's devices against the parent's: same guest, devices, masters. */
static int check_parent(struct backup *b)
{
	const struct point *p = &b->parent;
	char why[300];

	if (b->live && p->m.guest && strcmp(p->m.guest, b->g.umid))
		return refuse(b, "its newest point %s is of another guest (%s)", p->name,
			      quote_name(p->m.guest));
	if ((size_t)b->ndev != p->m.ndev)
		return refuse(b, "its newest point %s has another set of devices", p->name);
	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];
		const struct manifest_device *pd = point_device(p, d->name);
		char path[PATH_MAX + 80], msg[300];
		char why2[700];

		if (!pd)
			return refuse(b, "its newest point %s has no %s", p->name, d->name);
		if (!pd->cow || !quote_json_matches(d->cow, pd->cow))
			return refuse(b, "its newest point %s is of another COW file (%s)", p->name,
				      quote_name(pd->cow ? pd->cow : "?"));
		if (!pd->backing || !quote_json_matches(d->hdr.backing, pd->backing) ||
		    pd->size != d->hdr.size || pd->mtime != d->hdr.mtime) {
			snprintf(why, sizeof(why), "%s: another master (backing %s, size or "
				 "mtime differ)", d->name, quote_name(pd->backing ? pd->backing : "?"));
			return refuse(b, "its newest point %s: %s", p->name, why);
		}
		if (pd->cow_bytes != (uint64_t)d->st.st_size)
			return refuse(b, "its newest point %s: %s has another COW geometry "
				      "(file size)", p->name, d->name);
		snprintf(path, sizeof(path), "%s/%s", p->dir, pd->chunks);
		if (!table_read(path, &d->ptab, msg, sizeof(msg))) {
			snprintf(why2, sizeof(why2), "%s: %s", pd->chunks, msg);
			return refuse(b, "its newest point %s is damaged: %s", p->name, why2);
		}
		{
			char hex[XXH_HEX];

			digest_hex(d->ptab.end, hex);
			if (strcmp(hex, pd->chunks_xxh128))
				return refuse(b, "its newest point %s is damaged: %s differs from "
					      "its manifest", p->name, pd->chunks);
		}
		if (d->ptab.g.data_offset != d->geo.data_offset ||
		    d->ptab.g.file_size != (uint64_t)d->st.st_size ||
		    d->ptab.g.chunk_size != CHUNK_SIZE)
			return refuse(b, "its newest point %s: %s has another COW geometry "
				      "(data offset)", p->name, d->name);
	}
	return 0;
}

int chain_prepare(struct backup *b)
{
	static struct point path[1024];
	struct chain_list l;
	char msg[600], dir[PATH_MAX];
	int ret, n;

	if (mkdir(b->o->dest, 0755) < 0 && errno != EEXIST) {
		cli_error("%s: cannot create the directory: %s", quote_name(b->o->dest),
			  strerror(errno));
		return EXIT_DEST;
	}
	ret = chain_list(b->o->dest, &l);
	if (ret < 0) {
		cli_error("%s: %s", quote_name(b->o->dest), ret == -ENOTDIR ? "not a directory" :
			  ret == -E2BIG ? "too many points" : strerror(-ret));
		return EXIT_DEST;
	}
	b->changes.kind = CHANGES_COMPARISON;
	b->changes.all = true;
	if (l.n > 0) {
		/* The whole path must be there: a chain with a hole cannot grow. */
		if (!chain_path(b->o->dest, l.name[l.n - 1], path, 1024, &n, msg, sizeof(msg))) {
			chain_list_free(&l);
			return refuse(b, "missing or damaged link: %s", msg);
		}
		b->parent = path[n - 1];
		for (int i = 0; i < n - 1; i++)
			point_free(&path[i]);
		b->has_parent = true;
		ret = check_parent(b);
		if (ret) {
			chain_list_free(&l);
			return ret;
		}
		/*
		 * Offline, the record beside the COW may be the source; live,
		 * the guest's kernel is asked once the devices are known
		 * (live.c).
		 */
		if (!b->live) {
			char why[8];
			bool serves;

			changes_kernel_cbt.begin(b, &serves, why, sizeof(why));
		}
	}
	chain_list_free(&l);
	ret = point_id_new(b->point_id);
	if (ret < 0) {
		cli_error("cannot make a point id: %s", strerror(-ret));
		return EXIT_FAILED;
	}
	/* One id for the run: the stream headers' and the manifest's. */
	memcpy(b->point, b->point_id, 16);
	xs_hex128(b->point, b->point_hex);
	/* Names are milliseconds: wait for the next one rather than share it. */
	for (int tries = 0; tries < 100; tries++) {
		point_name_now(b->point_name);
		if (b->has_parent && strcmp(b->point_name, b->parent.name) <= 0) {
			usleep(1000);
			continue;
		}
		snprintf(dir, sizeof(dir), "%s/%s", b->o->dest, b->point_name);
		if (mkdir(dir, 0755) == 0) {
			snprintf(b->dest, sizeof(b->dest), "%s", dir);
			b->made_dest = true;
			return 0;
		}
		if (errno != EEXIST) {
			cli_error("%s: cannot create the directory: %s", quote_name(dir),
				  strerror(errno));
			return EXIT_DEST;
		}
		usleep(1000);
	}
	cli_error("%s: cannot name a new point (its names are taken)", quote_name(b->o->dest));
	return EXIT_DEST;
}

static int scan_error(struct scan *s, int ret)
{
	if (ret == -EINTR)
		return EXIT_INTERRUPTED;
	cli_error("%s", s->msg[0] ? s->msg : strerror(-ret));
	return ret == -ENOSPC || ret == -EFBIG || ret == -EDQUOT ? EXIT_DEST : EXIT_FAILED;
}

/* The device's grid and a scan of the COW against the parent's table. */
static int start_scan(struct device *d, int dst)
{
	int ret;

	if (!grid_init(&d->grid, (uint64_t)d->st.st_size, d->geo.data_offset, CHUNK_SIZE)) {
		cli_error("%s: %s: data offset past the file's end", d->name, quote_name(d->cow));
		return EXIT_DEVICE;
	}
	ret = scan_init(&d->scan, &d->grid, &d->ptab, d->src, d->cow, dst, d->file);
	if (ret < 0)
		return scan_error(&d->scan, ret);
	d->scan.intr = &tool_interrupted;
	d->scanning = true;
	return 0;
}

int chain_precopy(struct backup *b)
{
	double t0 = tool_now();

	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];
		int st, ret;

		/* The scratch file holds only the differing chunks: sparse. */
		if (ftruncate(d->af.fd, d->st.st_size) < 0) {
			cli_error("%s: %s", quote_name(b->dest), strerror(errno));
			return EXIT_DEST;
		}
		st = start_scan(d, d->af.fd);
		if (st)
			return st;
		ret = scan_changes(&d->scan, changes_of(b, d));
		if (ret < 0)
			return scan_error(&d->scan, ret);
	}
	b->t_precopy = tool_now() - t0;
	return 0;
}

/* One device's stream and table, into unnamed files in the point. */
static int write_device(struct backup *b, struct device *d)
{
	const struct options *o = b->o;
	struct packer *pk = NULL;
	int rfd, ret, st;
	int sinkfd;
	char path[PATH_MAX + 80];

	if (!b->live || !d->scanning) {
		/* Offline (nothing writes), or the full point of a live chain. */
		if (!grid_init(&d->grid, (uint64_t)d->st.st_size, d->geo.data_offset,
			       CHUNK_SIZE)) {
			cli_error("%s: %s: data offset past the file's end", d->name,
				  quote_name(d->cow));
			return EXIT_DEVICE;
		}
	}
	if (!b->live && b->has_parent) {
		st = start_scan(d, -1);
		if (st)
			return st;
		ret = scan_changes(&d->scan, changes_of(b, d));
		if (ret < 0)
			return scan_error(&d->scan, ret);
	}
	rfd = b->live ? d->af.fd : d->src;
	snprintf(path, sizeof(path), "%s/%s", b->dest, d->file);
	ret = afile_open(&d->zf, b->dirfd, path, 0644, false);
	if (ret < 0) {
		cli_error("%s: cannot create: %s", quote_name(path), strerror(-ret));
		return EXIT_DEST;
	}
	sinkfd = d->zf.fd;
	if (o->compress) {
		ret = packer_open(&pk, o->compress, o->level, d->zf.fd, LZ4S_NO_SIZE);
		if (ret < 0) {
			cli_error("%s: %s", quote_name(path), strerror(-ret));
			return EXIT_FAILED;
		}
	}
	ret = point_emit(rfd, b->live ? d->file : d->cow, &d->grid, b->point_id,
			 b->has_parent ? &d->ptab : NULL, b->has_parent ? &d->scan : NULL,
			 pk ? packer_unit : xs_fd_sink, pk ? (void *)pk : (void *)&sinkfd, &d->er);
	d->stored_bytes = d->er.stream_bytes;
	if (ret == 0 && pk)
		ret = packer_finish(pk, &d->stored_bytes);
	packer_free(pk);
	if (ret == 0 && fsync(d->zf.fd) < 0)
		ret = -errno;
	if (ret < 0) {
		if (ret == -EINTR)
			return EXIT_INTERRUPTED;
		cli_error("%s: %s", quote_name(path), d->er.msg[0] && !pk ? d->er.msg :
			  strerror(-ret));
		return ret == -ENOSPC || ret == -EDQUOT || ret == -EFBIG ? EXIT_DEST : EXIT_FAILED;
	}
	return backup_write_table(b, d);
}

int finish_chain(struct backup *b)
{
	double t0 = tool_now();

	for (int i = 0; i < b->ndev; i++) {
		int st = write_device(b, &b->dev[i]);

		if (st)
			return st;
		/* The scratch copy is not part of the point. */
		afile_discard(&b->dev[i].af);
	}
	b->t_compress = tool_now() - t0;
	/*
	 * The record's checkpoint follows the point (kernel_cbt.h): a chain's only
	 * (a plain compressed backup is written here too, and is nobody's parent).
	 */
	if (!b->live && b->o->incremental)
		kernel_cbt_advance(b);
	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];
		char path[PATH_MAX + 80];
		int ret;

		snprintf(path, sizeof(path), "%s/%s", b->dest, d->file);
		/* -f replaces a plain backup's files; a chain point's directory is new. */
		ret = afile_publish(&d->zf, path, b->o->force);
		if (ret == 0)
			d->published = true;
		snprintf(path, sizeof(path), "%s/%s", b->dest, d->chunks_file);
		if (ret == 0)
			ret = afile_publish(&d->tf, path, b->o->force);
		if (ret == 0)
			d->tpublished = true;
		if (ret < 0) {
			cli_error("%s: %s", quote_name(path), strerror(-ret));
			return ret == -ENOSPC ? EXIT_DEST : EXIT_FAILED;
		}
	}
	return 0;
}
