/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * verify.c - `uml_backup verify DESTDIR|CHAINDIR|POINTDIR`: every point
 * read through the point reader (chain/reader.h), a plain backup being a
 * chain of one point, so that one check serves both: each device's stored
 * data against its chunk table (and, over an incremental, its parent's),
 * its stream digest, compression and size, its COW header; without
 * restoring anything.  One line per point and device.
 */
#define _GNU_SOURCE
#include "cmd/verify.h"
#include "cli.h"
#include "format/manifest.h"
#include "chain/chainio.h"
#include "chain/point.h"
#include "chain/reader.h"
#include "quote.h"
#include "format/stream.h"
#include "format/xstream.h"
#include "grow.h"
#include "ubdk_static.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *verify_cow_head_check(const uint8_t *head, size_t len, const char *name,
			   const struct manifest_device *dv, struct ubdk_header *h, char *problem,
			   size_t plen)
{
	struct ubdk_err err = { 0 };

	if (ubdk_header_decode(head, len, name, h, &err) < 0)
		snprintf(problem, plen, "not a COW file");
	else if (h->size != dv->size)
		snprintf(problem, plen, "its COW header says size %llu, the manifest %llu",
			 (unsigned long long)h->size, (unsigned long long)dv->size);
	else if (!quote_json_matches(h->backing, dv->backing) || h->mtime != (uint32_t)dv->mtime)
		snprintf(problem, plen, "its COW header differs from the manifest (backing file "
			 "or its mtime)");
	else if (dv->sectorsize != MANIFEST_ABSENT && h->sectorsize != dv->sectorsize)
		snprintf(problem, plen, "its COW header says sector size %u, the manifest %llu",
			 (unsigned)h->sectorsize, (unsigned long long)dv->sectorsize);
	else if (dv->layout && strcmp(ubdk_layout_name(h->layout), dv->layout))
		snprintf(problem, plen, "its COW header is of layout %s, the manifest says %s",
			 ubdk_layout_name(h->layout), quote_name(dv->layout));
	else
		return NULL;
	return problem;
}

const char *verify_compression_check(int fmt, const char *compression, char *problem, size_t plen)
{
	char q[64];

	if (compression && pack_parse(compression) == fmt)
		return NULL;
	snprintf(problem, plen, "the stream is %s, the manifest says compression %s",
		 fmt == PACK_NONE ? "not compressed" : pack_name(fmt),
		 compression ? quote_elide(q, sizeof(q), compression) : "nothing");
	return problem;
}

/* --- one device of one point -------------------------------------------------- */

/* The chunks a point's records touch, rebuilt from them. */
struct assemble {
	const struct chunk_grid *g;     /* NULL: a backup of 0.2.0, no table */
	const struct point *p;
	const struct manifest_device *d;
	uint8_t *buf;
	uint64_t cur;                   /* chunk being gathered, UINT64_MAX none */
	struct chunk_table touched;     /* digest, or all zeros for a zero chunk */
	uint64_t *zero_at;              /* offsets of touched chunks now zero */
	size_t nzero, capzero;
	char msg[256];
};

static int assemble_flush(struct assemble *a)
{
	uint64_t off, len;
	uint8_t dig[16];

	if (a->cur == UINT64_MAX)
		return 0;
	grid_chunk(a->g, a->cur, &off, &len);
	a->cur = UINT64_MAX;
	if (unit_is_zero(a->buf, (size_t)len)) {
		uint64_t *z = grow_array(a->zero_at, &a->capzero, a->nzero, sizeof(*z), 256);

		if (!z)
			return -ENOMEM;
		a->zero_at = z;
		a->zero_at[a->nzero++] = off;
		return 0;
	}
	chunk_digest(a->buf, (size_t)len, dig);
	return table_add(&a->touched, off, dig);
}

static int assemble_record(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
			   const uint8_t *data)
{
	struct assemble *a = ctx;

	if (!a->g)
		return 0;
	if (off == XS_HEADER_CALL) {
		if (h->chunk_size != a->g->chunk_size || h->data_offset != a->g->data_offset) {
			snprintf(a->msg, sizeof(a->msg), "the stream's chunk grid differs from "
				 "its chunk table's");
			return -EBADMSG;
		}
		return chainio_check_header(h, a->p, a->d, a->msg, sizeof(a->msg));
	}
	while (len > 0) {
		uint64_t i = grid_index(a->g, off), coff, clen, n;
		int ret;

		grid_chunk(a->g, i, &coff, &clen);
		if (i != a->cur) {
			ret = assemble_flush(a);
			if (ret < 0)
				return ret;
			a->cur = i;
			memset(a->buf, 0, (size_t)clen);
		}
		n = coff + clen - off < len ? coff + clen - off : len;
		if (data) {
			memcpy(a->buf + (off - coff), data, (size_t)n);
			data += n;
		} else {
			memset(a->buf + (off - coff), 0, (size_t)n);
		}
		off += n;
		len -= n;
	}
	return 0;
}

/* The parent's table (none for a full point) with the touched chunks replaced. */
static void merged_table(const struct assemble *a, const struct chunk_table *ptab,
			 struct chunk_table *want)
{
	uint64_t zi = 0, pi = 0, ti = 0;

	while (pi < ptab->n || ti < a->touched.n) {
		uint64_t po = pi < ptab->n ? ptab->e[pi].off : UINT64_MAX;
		uint64_t to = ti < a->touched.n ? a->touched.e[ti].off : UINT64_MAX;

		while (zi < a->nzero && a->zero_at[zi] < po && a->zero_at[zi] < to)
			zi++;
		if (to <= po) {
			table_add(want, to, a->touched.e[ti++].digest);
			if (to == po)
				pi++;
		} else if (zi < a->nzero && a->zero_at[zi] == po) {
			pi++;
		} else {
			table_add(want, po, ptab->e[pi++].digest);
		}
	}
}

/*
 * What the stored data says against the manifest, once read: a stream's
 * digest, size and compression; a COW file's length and (0.2.0) sums; a
 * full point's COW header.  NULL, or the problem.
 */
static const char *data_problem(const struct point *p, const struct manifest_device *d,
				const struct point_data *pd, char *problem, size_t plen)
{
	char hex[33];
	struct ubdk_header h;

	if (pd->stream) {
		xs_hex128(pd->digest, hex);
		if (!d->stream_xxh128 || strcmp(hex, d->stream_xxh128)) {
			snprintf(problem, plen, "stream digest %s, the manifest says %s", hex,
				 d->stream_xxh128 ? d->stream_xxh128 : "nothing");
			return problem;
		}
		/* What the manifest says of the stored file: its size, as written. */
		if (d->stored_bytes != MANIFEST_ABSENT && d->stored_bytes != pd->stored) {
			snprintf(problem, plen, "holds %llu bytes, the manifest's stored_bytes says "
				 "%llu", (unsigned long long)pd->stored,
				 (unsigned long long)d->stored_bytes);
			return problem;
		}
	} else if (pd->file_size != d->cow_bytes) {
		snprintf(problem, plen, "holds %llu bytes, the manifest says %llu",
			 (unsigned long long)pd->file_size, (unsigned long long)d->cow_bytes);
		return problem;
	}
	if (verify_compression_check(pd->fmt, d->compression, problem, plen))
		return problem;
	if (pd->has_sums && (strcmp(pd->sums.crc_hex, d->crc32) ||
			     strcmp(pd->sums.sha_hex, d->sha256_tree))) {
		snprintf(problem, plen, "checksum mismatch (crc32 %s, manifest %s)",
			 pd->sums.crc_hex, d->crc32);
		return problem;
	}
	/* A full point holds the COW header; an incremental's is its parent's (link_problem). */
	if (!p->incremental)
		return verify_cow_head_check(pd->head, pd->headlen, d->file, d, &h, problem, plen);
	return NULL;
}

/*
 * Device d of point p (parent: an incremental's, else NULL): NULL if fine,
 * else the problem.  plain: a backup of no chain, bootable as it is, so
 * its backing file must still match its COW header.
 */
static const char *verify_device(const struct point *p, const struct point *parent,
				 const struct manifest_device *d, bool plain, char *problem,
				 size_t plen)
{
	struct chunk_table own = { 0 }, ptab = { 0 }, want;
	struct point_data *pd = NULL;
	struct assemble a = { .p = p, .d = d, .cur = UINT64_MAX };
	char msg[400] = "";
	uint64_t diff;
	int ret;

	if (point_entry_problem(d, problem, plen))
		return problem;
	if (d->chunks && !point_table(p->dir, &p->m, d, &own, problem, plen))
		return problem;
	if (parent) {
		const struct manifest_device *pd0 = point_device(parent, d->device);

		if (!pd0) {
			snprintf(problem, plen, "parent %s has no %s", parent->name, d->device);
			goto bad;
		}
		if (!point_table(parent->dir, &parent->m, pd0, &ptab, msg, sizeof(msg))) {
			snprintf(problem, plen, "parent %s: %s", parent->name, msg);
			goto bad;
		}
	}
	if (d->chunks) {
		a.g = &own.g;
		a.buf = malloc(own.g.chunk_size);
		table_init(&a.touched, &own.g, p->id);
	}
	pd = malloc(sizeof(*pd));
	if (!pd || (d->chunks && !a.buf)) {
		snprintf(problem, plen, "out of memory");
		goto bad;
	}
	ret = point_read(p, d, assemble_record, &a, pd);
	if (ret == 0 && a.g)
		ret = assemble_flush(&a);
	if (ret < 0) {
		snprintf(problem, plen, "%s", a.msg[0] ? a.msg : pd->msg[0] ? pd->msg :
			 strerror(-ret));
		goto bad;
	}
	if (data_problem(p, d, pd, problem, plen))
		goto bad;
	if (a.g) {
		bool same;

		table_init(&want, &own.g, p->id);
		merged_table(&a, &ptab, &want);
		same = table_same(&want, &own, &diff);
		table_free(&want);
		if (!same && parent) {
			snprintf(problem, plen, "its chunks over its parent's do not make its chunk "
				 "table %s (first difference at byte %llu)", d->chunks,
				 (unsigned long long)diff);
			goto bad;
		}
		if (!same) {
			snprintf(problem, plen, "differs from its chunk table %s at byte %llu",
				 d->chunks, (unsigned long long)diff);
			goto bad;
		}
	}
	if (plain) {
		struct ubdk_backing_check chk;
		struct ubdk_header h;
		struct ubdk_err err = { 0 };

		/* Bootable as it is: the backing file must still match the header. */
		verify_cow_head_check(pd->head, pd->headlen, d->file, d, &h, msg, sizeof(msg));
		if (ubdk_backing_check(&h, h.backing, &chk, &err) < 0) {
			snprintf(problem, plen, "the backing file changed: %s",
				 tool_lib_msg(&err, h.backing));
			goto bad;
		}
	}
	problem = NULL;
bad:
	free(pd);
	free(a.buf);
	free(a.zero_at);
	table_free(&a.touched);
	table_free(&own);
	table_free(&ptab);
	return problem;
}

/* --- points and their links ------------------------------------------------- */

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/*
 * An incremental's link to its parent: the point it names, of the same
 * guest, devices, backing files and geometry.  NULL, or the problem.
 */
static const char *link_problem(const struct point *p, const struct point *parent, char *buf,
				size_t len)
{
	if (memcmp(parent->id, (uint8_t[16]){ 0 }, 16) == 0 ||
	    !same_str(parent->m.point, p->m.parent_point)) {
		snprintf(buf, len, "its parent %s is another point (id %s, expected %s)",
			 parent->name, parent->m.point, p->m.parent_point);
		return buf;
	}
	if (p->m.guest && parent->m.guest && strcmp(p->m.guest, parent->m.guest)) {
		snprintf(buf, len, "its parent %s is of another guest (%s)", parent->name,
			 quote_name(parent->m.guest));
		return buf;
	}
	if (p->m.ndev != parent->m.ndev) {
		snprintf(buf, len, "%zu devices, its parent %s has %zu", p->m.ndev, parent->name,
			 parent->m.ndev);
		return buf;
	}
	for (size_t i = 0; i < p->m.ndev; i++) {
		const struct manifest_device *d = &p->m.dev[i];
		const struct manifest_device *pd = point_device(parent, d->device);

		if (!pd || !d->backing || !pd->backing || strcmp(d->backing, pd->backing) ||
		    d->size != pd->size || d->mtime != pd->mtime || d->cow_bytes != pd->cow_bytes ||
		    d->sectorsize != pd->sectorsize || !same_str(d->layout, pd->layout)) {
			snprintf(buf, len, "%s differs from its parent %s's (device, backing "
				 "file or geometry)", d->device, parent->name);
			return buf;
		}
	}
	return NULL;
}

/* Where verify's results go. */
struct verdict {
	bool errors;                    /* a line per problem on stderr */
	bool oks;                       /* a line per file found fine */
	json_t *list;                   /* an entry per point or file */
};

/* A line and a JSON entry for a point (file NULL) or one of its files. */
static void report(struct verdict *v, const struct point *p, const char *file,
		   const char *problem)
{
	if (problem && file && v->errors)
		cli_error("%s/%s: %s", quote_name(p->dir), quote_name(file), problem);
	else if (problem && v->errors)
		cli_error("%s: %s", quote_name(p->dir), problem);
	else if (!problem && v->oks)
		fprintf(stderr, "%s: %s/%s: OK\n", cli_prog, quote_name(p->dir), quote_name(file));
	json_array_append_new(v->list, json_pack("{s:o, s:o, s:b, s:o}", "point",
					      quote_json_string(p->name), "file",
					      file ? quote_json_string(file) : json_null(),
					      "ok", !problem, "problem", problem ?
					      quote_json_string(problem) : json_null()));
}

/* Point p (after its parent, if incremental): its link, then each device.  Problems found. */
static int verify_point(struct verdict *v, const struct point *p, const struct point *parent,
			bool plain)
{
	char msg[700];
	int bad = 0;

	if (parent && link_problem(p, parent, msg, sizeof(msg))) {
		report(v, p, NULL, msg);
		return 1;
	}
	for (size_t i = 0; i < p->m.ndev && !tool_interrupted; i++) {
		const char *problem = verify_device(p, parent, &p->m.dev[i], plain, msg,
						   sizeof(msg));

		if (tool_interrupted)
			break;
		report(v, p, p->m.dev[i].file ? p->m.dev[i].file : "?", problem);
		bad += problem != NULL;
	}
	return bad;
}

/*
 * Point NAME of CHAINDIR with its parent loaded (not its whole path), for
 * a chain's every point: 0 and the points, or 1 after a report.
 */
static int load_named(struct verdict *v, const char *chaindir, const char *name, struct point *p,
		      struct point *parent, bool *have_parent)
{
	char msg[700], pm[600];

	*have_parent = false;
	if (!point_load(chaindir, name, p, msg, sizeof(msg))) {
		report(v, p, NULL, msg);
		return 1;
	}
	if (!p->incremental)
		return 0;
	if (!point_load(chaindir, p->m.parent_dir, parent, pm, sizeof(pm))) {
		point_free(parent);
		snprintf(msg, sizeof(msg), "missing or damaged link: its parent: %s", pm);
		report(v, p, NULL, msg);
		return 1;
	}
	*have_parent = true;
	return 0;
}

const char *chain_point_problem(const char *chaindir, const char *name, char *msg, size_t len)
{
	/* The problems go to the list only: prune names the first. */
	struct verdict v = { .list = json_array() };
	struct point p, parent;
	const char *bad = NULL;
	bool have_parent;

	if (load_named(&v, chaindir, name, &p, &parent, &have_parent) == 0)
		verify_point(&v, &p, have_parent ? &parent : NULL, false);
	for (size_t i = 0; i < json_array_size(v.list) && !bad; i++) {
		json_t *e = json_array_get(v.list, i);
		const char *file = json_string_value(json_object_get(e, "file"));
		const char *pr = json_string_value(json_object_get(e, "problem"));

		if (pr) {
			snprintf(msg, len, "%s%s%s", file ? file : "", file ? ": " : "", pr);
			bad = msg;
		}
	}
	json_decref(v.list);
	point_free(&p);
	if (have_parent)
		point_free(&parent);
	return bad;
}

/*
 * Point-named directories of a chain without a manifest: a run that did
 * not finish left an empty one (said, not a failure); one holding files
 * is a point that lost its manifest, or a run killed before writing it.
 * Problems found.
 */
static int verify_leftovers(struct verdict *v, const char *chaindir, bool quiet)
{
	DIR *dir = opendir(chaindir);
	struct dirent *e;
	int bad = 0;

	if (!dir)
		return 0;
	while ((e = readdir(dir))) {
		char path[PATH_MAX];
		struct stat st;
		struct point p = { 0 };
		DIR *sub;
		int files = 0;

		if (!point_name_ok(e->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", chaindir, e->d_name, MANIFEST);
		if (lstat(path, &st) == 0 || errno != ENOENT)
			continue;
		snprintf(p.dir, sizeof(p.dir), "%s/%s", chaindir, e->d_name);
		snprintf(p.name, sizeof(p.name), "%s", e->d_name);
		sub = opendir(p.dir);
		if (!sub)
			continue;
		for (struct dirent *f; (f = readdir(sub));)
			files += strcmp(f->d_name, ".") && strcmp(f->d_name, "..");
		closedir(sub);
		if (files) {
			report(v, &p, NULL, "no manifest.json, but files: a point that "
			       "lost its manifest, or a backup run killed before writing it");
			bad++;
		} else if (!quiet) {
			fprintf(stderr, "%s: %s: an empty point directory without a manifest (a "
				"backup run that did not finish): not a point\n", cli_prog,
				quote_name(p.dir));
		}
	}
	closedir(dir);
	return bad;
}

/* Every point of a chain directory, each with its parent; problems found. */
static int verify_chain(struct verdict *v, const char *chaindir, const struct chain_list *l)
{
	int bad = 0;

	for (int k = 0; k < l->n && !tool_interrupted; k++) {
		struct point p, parent;
		bool have_parent;

		if (load_named(v, chaindir, l->name[k], &p, &parent, &have_parent))
			bad++;
		else
			bad += verify_point(v, &p, have_parent ? &parent : NULL, false);
		point_free(&p);
		if (have_parent)
			point_free(&parent);
	}
	return bad;
}

int verify_path(const struct options *o, const char *dir, bool print)
{
	struct verdict v = { .errors = true, .oks = print && !o->quiet && !o->json,
			     .list = json_array() };
	char path[PATH_MAX + 32], msg[700];
	struct chain_list l = { 0 };
	struct point_reader r;
	struct stat st;
	int bad = 0, ret = -ENOENT;

	if (!v.list)
		return EXIT_FAILED;
	snprintf(path, sizeof(path), "%s/%s", dir, MANIFEST);
	/* A chain directory: points below it, no manifest of its own. */
	if (lstat(path, &st) != 0 && errno == ENOENT)
		ret = chain_list(dir, &l);
	if (ret == 0 && l.n) {
		bad = verify_chain(&v, dir, &l);
		bad += verify_leftovers(&v, dir, o->quiet);
	} else {
		/* A point: a plain backup, or a chain's with its ancestors. */
		if (!point_reader_open(&r, dir, msg, sizeof(msg))) {
			if (msg[0])
				cli_error("%s: %s%s", quote_name(dir), r.chain ? "missing or damaged "
					  "link: " : "", msg);
			point_reader_close(&r);
			chain_list_free(&l);
			json_decref(v.list);
			return EXIT_FAILED;
		}
		for (int k = 0; k < r.n && !tool_interrupted; k++)
			bad += verify_point(&v, &r.pts[k], k ? &r.pts[k - 1] : NULL, !r.chain);
		point_reader_close(&r);
	}
	chain_list_free(&l);
	if (tool_interrupted) {
		json_decref(v.list);
		return EXIT_INTERRUPTED;
	}
	if (print && o->json && manifest_json_print(json_pack("{s:o, s:b}", "verified", v.list,
							      "ok", !bad)) < 0)
		bad++;
	else if (!(print && o->json))
		json_decref(v.list);
	return bad ? EXIT_FAILED : 0;
}

int verify_command(const struct options *o)
{
	return verify_path(o, o->dest, true);
}
