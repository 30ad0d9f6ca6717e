/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * parent.c - the destination of `uml_backup --incremental` (parent.h): the
 * chain's newest point is the parent, checked to be of this guest, its
 * devices and masters; the new point's directory is named after it.
 */
#define _GNU_SOURCE
#include "run/parent.h"
#include "run/run.h"
#include "cli.h"
#include "quote.h"
#include "format/xstream.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	const struct point *p = &b->chain.parent;
	char why[300];

	if (b->live && p->m.guest && strcmp(p->m.guest, b->gs.g.umid))
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
		if (!table_read(path, &d->pipe.ptab, msg, sizeof(msg))) {
			snprintf(why2, sizeof(why2), "%s: %s", pd->chunks, msg);
			return refuse(b, "its newest point %s is damaged: %s", p->name, why2);
		}
		{
			char hex[XXH_HEX];

			digest_hex(d->pipe.ptab.end, hex);
			if (strcmp(hex, pd->chunks_xxh128))
				return refuse(b, "its newest point %s is damaged: %s differs from "
					      "its manifest", p->name, pd->chunks);
		}
		if (d->pipe.ptab.g.data_offset != d->geo.data_offset ||
		    d->pipe.ptab.g.file_size != (uint64_t)d->st.st_size ||
		    d->pipe.ptab.g.chunk_size != CHUNK_SIZE)
			return refuse(b, "its newest point %s: %s has another COW geometry "
				      "(data offset)", p->name, d->name);
	}
	return 0;
}

int parent_prepare(struct backup *b)
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
	b->cs.changes.kind = CHANGES_COMPARISON;
	b->cs.changes.all = true;
	if (l.n > 0) {
		/* The whole path must be there: a chain with a hole cannot grow. */
		if (!chain_path(b->o->dest, l.name[l.n - 1], path, 1024, &n, msg, sizeof(msg))) {
			chain_list_free(&l);
			return refuse(b, "missing or damaged link: %s", msg);
		}
		b->chain.parent = path[n - 1];
		for (int i = 0; i < n - 1; i++)
			point_free(&path[i]);
		b->chain.has_parent = true;
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
	ret = point_id_new(b->point);
	if (ret < 0) {
		cli_error("cannot make a point id: %s", strerror(-ret));
		return EXIT_FAILED;
	}
	/* One id for the run: the stream headers' and the manifest's. */
	xs_hex128(b->point, b->point_hex);
	/* Names are milliseconds: wait for the next one rather than share it. */
	for (int tries = 0; tries < 100; tries++) {
		point_name_now(b->chain.point_name);
		if (b->chain.has_parent && strcmp(b->chain.point_name, b->chain.parent.name) <= 0) {
			usleep(1000);
			continue;
		}
		snprintf(dir, sizeof(dir), "%s/%s", b->o->dest, b->chain.point_name);
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
