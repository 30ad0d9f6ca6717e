/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "cmd/verify.h"
#include "cli.h"
#include "input.h"
#include "format/manifest.h"
#include "chain/point.h"
#include "quote.h"
#include "format/stream.h"
#include "format/sums.h"
#include "codec/unpack.h"
#include "format/xstream.h"
#include "chain/chainio.h"
#include "afile.h"
#include "extent.h"
#include "codec/pack.h"
#include "codec/lz4_splice.h"
#include "ubdk_static.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>

struct verify_ctx {
	struct sums sums;
	uint8_t head[UBDK_HDR_MAX_SIZE];
	size_t headlen;
};

static int verify_unit(void *ctx, const uint8_t *data, size_t len)
{
	struct verify_ctx *v = ctx;

	if (v->headlen < sizeof(v->head)) {
		size_t n = sizeof(v->head) - v->headlen < len ? sizeof(v->head) - v->headlen : len;

		if (data)
			memcpy(v->head + v->headlen, data, n);
		else
			memset(v->head + v->headlen, 0, n);
		v->headlen += n;
	}
	sums_unit(&v->sums, data, len);
	return 0;
}

/* A stream's records: the COW file's chunks for its table, its header kept. */
struct verify_xs {
	struct verify_ctx *v;
	struct table_builder tb;
	const struct chunk_grid *g;
	const struct manifest *m;
	const struct manifest_device *dv;
	char msg[200];
};

static int verify_record(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
			 const uint8_t *data)
{
	struct verify_xs *x = ctx;
	char point[33];

	if (off == XS_HEADER_CALL) {
		xs_hex128(h->point, point);
		if (h->flags & XS_FLAG_INCREMENTAL)
			snprintf(x->msg, sizeof(x->msg), "an incremental stream in a full point");
		else if (!x->m->point || strcmp(point, x->m->point))
			snprintf(x->msg, sizeof(x->msg), "a stream of point %s, the manifest's "
				 "is %s", point, x->m->point ? x->m->point : "none");
		else if (h->file_size != x->dv->cow_bytes)
			snprintf(x->msg, sizeof(x->msg), "the stream makes %llu bytes, the "
				 "manifest says %llu", (unsigned long long)h->file_size,
				 (unsigned long long)x->dv->cow_bytes);
		else if (h->chunk_size != x->g->chunk_size || h->data_offset != x->g->data_offset)
			snprintf(x->msg, sizeof(x->msg), "the stream's chunk grid differs from "
				 "its chunk table's");
		if (x->msg[0])
			return -EBADMSG;
		/* What no record covers is zeros, as head is already. */
		x->v->headlen = h->file_size < sizeof(x->v->head) ? (size_t)h->file_size :
				sizeof(x->v->head);
		return 0;
	}
	/* ZERO records of a full stream change nothing: its base is empty. */
	if (!data)
		return 0;
	if (off < sizeof(x->v->head)) {
		size_t n = len < sizeof(x->v->head) - off ? (size_t)len : sizeof(x->v->head) - off;

		memcpy(x->v->head + off, data, n);
	}
	return tb_data(&x->tb, off, data, len);
}

/*
 * A backup since 0.3: the file's content against the point's chunk table
 * (its digest as the manifest says), reading only data: a stream's
 * records (and its digest against stream_xxh128), or a COW file's chunks
 * that hold data.  v->head gets the COW header.  0, or -errno after a
 * message in problem.
 */
static int verify_by_table(const char *dir, int fd, const struct stat *st,
			   const struct manifest *m, const struct manifest_device *dv,
			   struct verify_ctx *v, char *problem, size_t plen)
{
	struct chunk_table want, got = { 0 };
	uint64_t rd, diff;
	char msg[400] = "", hex[33];
	uint8_t digest[16];
	int ret;

	if (!point_table(dir, m, dv, &want, problem, plen))
		return -EBADMSG;
	if (dv->format && !strcmp(dv->format, "ubdx")) {
		struct verify_xs x = { .v = v, .g = &want.g, .m = m, .dv = dv };

		int fmt = PACK_NONE;

		ret = tb_init(&x.tb, &want.g, want.point, &got);
		if (ret == 0)
			ret = xs_read_fd_ex(fd, verify_record, &x, NULL, &fmt, digest, &tool_interrupted,
					    msg, sizeof(msg));
		if (ret == 0 && verify_compression_check(fmt, dv->compression, x.msg, sizeof(x.msg)))
			ret = -EBADMSG;
		if (ret == 0)
			ret = tb_finish(&x.tb);
		else
			tb_finish(&x.tb);
		if (ret == 0) {
			xs_hex128(digest, hex);
			if (!dv->stream_xxh128 || strcmp(hex, dv->stream_xxh128)) {
				snprintf(x.msg, sizeof(x.msg), "stream digest %s, the manifest says "
					 "%s", hex, dv->stream_xxh128 ? dv->stream_xxh128 : "nothing");
				ret = -EBADMSG;
			}
		}
		if (ret < 0)
			snprintf(problem, plen, "%s", x.msg[0] ? x.msg : msg[0] ? msg :
				 strerror(-ret));
	} else if (dv->format && strcmp(dv->format, "cow")) {
		snprintf(problem, plen, "unknown format in the manifest");
		ret = -EBADMSG;
	} else if ((uint64_t)st->st_size != dv->cow_bytes) {
		snprintf(problem, plen, "holds %llu bytes, the manifest says %llu",
			 (unsigned long long)st->st_size, (unsigned long long)dv->cow_bytes);
		ret = -EBADMSG;
	} else {
		ssize_t n = pread(fd, v->head, sizeof(v->head), 0);

		v->headlen = n > 0 ? (size_t)n : 0;
		ret = table_of_fd(fd, &want.g, want.point, &got, &rd);
		if (ret < 0)
			snprintf(problem, plen, "cannot read: %s", strerror(-ret));
	}
	if (ret == 0 && !table_same(&want, &got, &diff)) {
		snprintf(problem, plen, "differs from its chunk table %s at byte %llu", dv->chunks,
			 (unsigned long long)diff);
		ret = -EBADMSG;
	}
	table_free(&want);
	table_free(&got);
	return ret;
}

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

/* Check one device's file; NULL if fine, else what is wrong (static buffer). */
static const char *verify_device(const char *dir, const struct manifest *m,
				 const struct manifest_device *dv)
{
	static char problem[600];
	const char *file = dv->file;
	struct verify_ctx v;
	struct ubdk_backing_check chk;
	struct ubdk_header h;
	struct ubdk_err err = { 0 };
	struct stat st;
	uint64_t total = 0;
	char path[PATH_MAX + 80], msg[200];
	int fd, ret, fmt;

	if (!file || !dv->compression || !dv->backing || strchr(file, '/') ||
	    dv->size == MANIFEST_ABSENT || dv->mtime == MANIFEST_ABSENT ||
	    dv->cow_bytes == MANIFEST_ABSENT || (fmt = pack_parse(dv->compression)) < 0 ||
	    (!dv->chunks && (!dv->crc32 || !dv->sha256_tree)))
		return "incomplete entry in the manifest";
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = input_open(path, &st);
	if (fd >= 0 && !S_ISREG(st.st_mode)) {
		close(fd);
		fd = INPUT_E_TYPE;
	}
	if (fd < 0) {
		snprintf(problem, sizeof(problem), "%s%s", fd == INPUT_E_TYPE ||
			 fd == -EISDIR ? "" : "cannot open: ", input_strerror(fd));
		return problem;
	}
	memset(&v, 0, sizeof(v));
	if (dv->chunks) {
		/* Since 0.3: the chunk table, in time that follows the data. */
		ret = verify_by_table(dir, fd, &st, m, dv, &v, problem, sizeof(problem));
		close(fd);
		if (ret < 0)
			return problem;
	} else {
		/* 0.2.0: crc32 and sha256_tree of the whole COW file. */
		sums_init(&v.sums);
		if (fmt == PACK_NONE) {
			ret = pack_stream_fd(fd, (uint64_t)st.st_size, verify_unit, &v,
					     &tool_interrupted);
			total = (uint64_t)st.st_size;
			msg[0] = '\0';
		} else {
			ret = pack_decompress(fd, fmt, verify_unit, &v, &total, &tool_interrupted, msg,
					      sizeof(msg));
		}
		close(fd);
		if (ret < 0) {
			snprintf(problem, sizeof(problem), "%s", msg[0] ? msg : strerror(-ret));
			return problem;
		}
		sums_final(&v.sums);
		if (total != dv->cow_bytes) {
			snprintf(problem, sizeof(problem), "holds %llu bytes, the manifest says %llu",
				 (unsigned long long)total, (unsigned long long)dv->cow_bytes);
			return problem;
		}
		if (strcmp(v.sums.crc_hex, dv->crc32) || strcmp(v.sums.sha_hex, dv->sha256_tree)) {
			snprintf(problem, sizeof(problem), "checksum mismatch (crc32 %s, manifest %s)",
				 v.sums.crc_hex, dv->crc32);
			return problem;
		}
	}
	if (verify_cow_head_check(v.head, v.headlen, file, dv, &h, problem, sizeof(problem)))
		return problem;
	/* Bootable as it is: the backing file must still match the header. */
	if (ubdk_backing_check(&h, h.backing, &chk, &err) < 0) {
		snprintf(problem, sizeof(problem), "the backing file changed: %s",
			 tool_lib_msg(&err, h.backing));
		return problem;
	}
	return NULL;
}

int verify_dir(const struct options *o, const char *dir, bool print)
{
	struct manifest m;
	json_t *list = json_array();
	int bad = 0;

	if (!list || !manifest_read(dir, &m)) {
		json_decref(list);
		return EXIT_FAILED;
	}
	for (size_t i = 0; i < m.ndev; i++) {
		const char *file = m.dev[i].file;
		const char *problem = verify_device(dir, &m, &m.dev[i]);

		if (tool_interrupted) {
			manifest_free(&m);
			json_decref(list);
			return EXIT_INTERRUPTED;
		}
		if (problem) {
			cli_error("%s/%s: %s", quote_name(dir), quote_name(file ? file : "?"),
				  problem);
			bad++;
		} else if (print && !o->quiet && !o->json) {
			fprintf(stderr, "%s: %s/%s: OK\n", cli_prog, quote_name(dir),
				quote_name(file));
		}
		json_array_append_new(list, json_pack("{s:o, s:b, s:o}",
						      "file", quote_json_string(file ? file : ""),
						      "ok", !problem,
						      "problem", problem ? quote_json_string(problem) :
						      json_null()));
	}
	manifest_free(&m);
	if (print && o->json && manifest_json_print(json_pack("{s:o, s:b}", "verified", list, "ok", !bad)) < 0)
		bad++;
	else if (!(print && o->json))
		json_decref(list);
	return bad ? EXIT_FAILED : 0;
}

/*
 * --- chain points and their links -------------------------------------------
 * Without restoring anything: each stream's chunks against its table and
 * its parent's.
 */

/* The chunks a stream touches, rebuilt from its records. */
struct assemble {
	const struct chunk_grid *g;
	const struct point *p;
	const struct manifest_device *d;
	uint8_t *buf;
	uint64_t cur;                   /* chunk being gathered, UINT64_MAX none */
	struct chunk_table touched;     /* digest, or all zeros for a zero chunk */
	uint64_t *zero_at;              /* offsets of touched chunks now zero */
	uint64_t nzero, capzero;
	/* The COW header: a full stream's first bytes (zeros where no record is). */
	uint8_t head[UBDK_HDR_MAX_SIZE];
	size_t headlen;
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
		if (a->nzero == a->capzero) {
			uint64_t c = a->capzero ? a->capzero * 2 : 256;
			uint64_t *z = realloc(a->zero_at, c * sizeof(*z));

			if (!z)
				return -ENOMEM;
			a->zero_at = z;
			a->capzero = c;
		}
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

	if (off == XS_HEADER_CALL) {
		if (h->chunk_size != a->g->chunk_size || h->data_offset != a->g->data_offset) {
			snprintf(a->msg, sizeof(a->msg), "the stream's chunk grid differs from "
				 "its chunk table's");
			return -EBADMSG;
		}
		a->headlen = h->file_size < sizeof(a->head) ? (size_t)h->file_size :
			     sizeof(a->head);
		return chainio_check_header(h, a->p, a->d, a->msg, sizeof(a->msg));
	}
	if (off < a->headlen) {
		size_t n = len < a->headlen - off ? (size_t)len : a->headlen - (size_t)off;

		if (data)
			memcpy(a->head + off, data, n);
		else
			memset(a->head + off, 0, n);
	}
	while (len > 0) {
		uint64_t i = grid_index(a->g, off), coff, clen, n;
		int ret;

		if (i != a->cur) {
			ret = assemble_flush(a);
			if (ret < 0)
				return ret;
			a->cur = i;
			grid_chunk(a->g, i, &coff, &clen);
			memset(a->buf, 0, (size_t)clen);
		}
		grid_chunk(a->g, i, &coff, &clen);
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

/*
 * One device of one point: its table (digest as in the manifest), its
 * stream (digest, header), and the stream's chunks against the table: the
 * parent's table (none for a full point) with the stream's chunks
 * replaced must be this point's.  NULL if fine, else the problem.
 */
static const char *verify_point_device(const struct point *p, const struct point *parent,
				       const struct manifest_device *d, char *problem,
				       size_t plen)
{
	struct chunk_table own, ptab = { 0 }, want;
	struct assemble a;
	char path[PATH_MAX + 80], msg[400] = "";
	uint8_t digest[16];
	uint64_t zi = 0, pi = 0, ti = 0, diff;
	int fd, fmt = PACK_NONE, ret;
	bool same;

	snprintf(path, sizeof(path), "%s/%s", p->dir, d->chunks);
	if (!table_read(path, &own, msg, sizeof(msg))) {
		snprintf(problem, plen, "%s: %s", d->chunks, msg);
		return problem;
	}
	if (!chainio_hex_is(own.end, d->chunks_xxh128) || memcmp(own.point, p->id, 16) ||
	    own.g.file_size != d->cow_bytes) {
		snprintf(problem, plen, "%s: not the table its manifest names (digest, point "
			 "or size differ)", d->chunks);
		table_free(&own);
		return problem;
	}
	if (parent) {
		const struct manifest_device *pd = point_device(parent, d->device);

		if (!pd) {
			snprintf(problem, plen, "parent %s has no %s", parent->name, d->device);
			table_free(&own);
			return problem;
		}
		snprintf(path, sizeof(path), "%s/%s", parent->dir, pd->chunks);
		if (!table_read(path, &ptab, msg, sizeof(msg)) || !chainio_hex_is(ptab.end,
									   pd->chunks_xxh128)) {
			snprintf(problem, plen, "parent %s: %s: %s", parent->name, pd->chunks,
				 msg[0] ? msg : "digest differs from its manifest's");
			table_free(&own);
			table_free(&ptab);
			return problem;
		}
	}
	memset(&a, 0, sizeof(a));
	a.g = &own.g;
	a.p = p;
	a.d = d;
	a.cur = UINT64_MAX;
	a.buf = malloc(own.g.chunk_size);
	table_init(&a.touched, &own.g, p->id);
	fd = a.buf ? chainio_open_stream(p, d, msg, sizeof(msg)) : -1;
	if (fd < 0) {
		snprintf(problem, plen, "%s", a.buf ? msg : "out of memory");
		goto done_bad;
	}
	ret = xs_read_fd_ex(fd, assemble_record, &a, NULL, &fmt, digest, &tool_interrupted, msg,
			    sizeof(msg));
	close(fd);
	if (ret == 0)
		ret = assemble_flush(&a);
	if (ret < 0) {
		snprintf(problem, plen, "%s: %s", d->file, a.msg[0] ? a.msg : msg[0] ? msg :
			 strerror(-ret));
		goto done_bad;
	}
	if (!chainio_hex_is(digest, d->stream_xxh128)) {
		snprintf(problem, plen, "%s: digest differs from its manifest's stream_xxh128",
			 d->file);
		goto done_bad;
	}
	if (verify_compression_check(fmt, d->compression, msg, sizeof(msg))) {
		snprintf(problem, plen, "%s: %s", d->file, msg);
		goto done_bad;
	}
	/*
	 * A full stream holds the COW header; an incremental's size is its
	 * parent's (link_problem), down to a full point.
	 */
	if (!p->incremental) {
		struct ubdk_header h;

		if (verify_cow_head_check(a.head, a.headlen, d->file, d, &h, msg, sizeof(msg))) {
			snprintf(problem, plen, "%s: %s", d->file, msg);
			goto done_bad;
		}
	}
	/* The parent's entries, the stream's chunks replacing theirs. */
	table_init(&want, &own.g, p->id);
	while (pi < ptab.n || ti < a.touched.n) {
		uint64_t po = pi < ptab.n ? ptab.e[pi].off : UINT64_MAX;
		uint64_t to = ti < a.touched.n ? a.touched.e[ti].off : UINT64_MAX;

		while (zi < a.nzero && a.zero_at[zi] < po && a.zero_at[zi] < to)
			zi++;
		if (to <= po) {
			table_add(&want, to, a.touched.e[ti++].digest);
			if (to == po)
				pi++;
		} else if (zi < a.nzero && a.zero_at[zi] == po) {
			pi++;
		} else {
			table_add(&want, po, ptab.e[pi++].digest);
		}
	}
	same = table_same(&want, &own, &diff);
	table_free(&want);
	if (!same) {
		snprintf(problem, plen, "%s: its chunks and the parent's do not make its table "
			 "(first difference at byte %llu)", d->file, (unsigned long long)diff);
		goto done_bad;
	}
	problem = NULL;
	goto done;
done_bad:
	;
done:
	free(a.buf);
	free(a.zero_at);
	table_free(&a.touched);
	table_free(&own);
	table_free(&ptab);
	return problem;
}

/* Devices, backing files and geometry of a point against its parent. */
static const char *link_problem(const struct point *p, const struct point *parent, char *buf,
				size_t len)
{
	if (p->m.ndev != parent->m.ndev) {
		snprintf(buf, len, "%zu devices, its parent %s has %zu", p->m.ndev, parent->name,
			 parent->m.ndev);
		return buf;
	}
	for (size_t i = 0; i < p->m.ndev; i++) {
		const struct manifest_device *d = &p->m.dev[i];
		const struct manifest_device *pd = point_device(parent, d->device);

		if (!pd || !d->backing || !pd->backing || strcmp(d->backing, pd->backing) ||
		    d->size != pd->size || d->mtime != pd->mtime || d->cow_bytes != pd->cow_bytes) {
			snprintf(buf, len, "%s differs from its parent %s's (device, backing "
				 "file or geometry)", d->device, parent->name);
			return buf;
		}
	}
	return NULL;
}

const char *chain_point_problem(const char *chaindir, const char *name, char *msg, size_t len)
{
	struct point p, parent;
	char problem[700];
	const char *bad = NULL;
	bool have_parent = false;

	msg[0] = '\0';
	if (!point_load(chaindir, name, &p, msg, len)) {
		point_free(&p);
		return msg;
	}
	if (p.incremental) {
		char pm[600];

		if (!point_load(chaindir, p.m.parent_dir, &parent, pm, sizeof(pm))) {
			point_free(&parent);
			snprintf(msg, len, "missing or damaged link: its parent: %s", pm);
			bad = msg;
		} else {
			have_parent = true;
			if (memcmp(parent.id, (uint8_t[16]){ 0 }, 16) == 0 ||
			    strcmp(parent.m.point, p.m.parent_point)) {
				snprintf(msg, len, "its parent %s is another point (id %s, "
					 "expected %s)", parent.name, parent.m.point,
					 p.m.parent_point);
				bad = msg;
			} else if (p.m.guest && parent.m.guest && strcmp(p.m.guest, parent.m.guest)) {
				snprintf(msg, len, "its parent %s is of another guest (%s)",
					 parent.name, quote_name(parent.m.guest));
				bad = msg;
			} else {
				bad = link_problem(&p, &parent, msg, len);
			}
		}
	}
	for (size_t i = 0; !bad && i < p.m.ndev; i++) {
		const char *pr = verify_point_device(&p, have_parent ? &parent : NULL, &p.m.dev[i],
						     problem, sizeof(problem));

		if (tool_interrupted)
			break;
		if (pr) {
			snprintf(msg, len, "%s", pr);
			bad = msg;
		}
	}
	point_free(&p);
	if (have_parent)
		point_free(&parent);
	return bad;
}

/* Verify the point `name`: a line if it has a problem (or, with print, if not); 1 or 0. */
static int verify_one(const char *chaindir, const char *name, bool print, const struct options *o,
		      json_t *list)
{
	char msg[700];
	const char *bad = chain_point_problem(chaindir, name, msg, sizeof(msg));
	int nbad = 0;

	if (bad) {
		cli_error("%s/%s: %s", quote_name(chaindir), quote_name(name), bad);
		nbad++;
	} else if (print && !o->quiet && !o->json) {
		fprintf(stderr, "%s: %s/%s: OK\n", cli_prog, quote_name(chaindir), quote_name(name));
	}
	json_array_append_new(list, json_pack("{s:s, s:b, s:o}", "point", name, "ok", !bad,
					      "problem", bad ? quote_json_string(bad) :
					      json_null()));
	return nbad;
}

int chain_verify(const struct options *o, const char *dir)
{
	char chaindir[PATH_MAX], name[NAME_MAX + 1], path[PATH_MAX + 32];
	static struct point pts[MAX_CHAIN];
	json_t *list = json_array();
	struct stat st;
	int bad = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, MANIFEST);
	if (stat(path, &st) == 0) {
		/* A FIFO must not block us: verify refuses it with a message. */
		if (!S_ISREG(st.st_mode))
			return false;
		/* A point: it and its ancestors. */
		char msg[600];
		int n;

		chainio_split_point_path(dir, chaindir, sizeof(chaindir), name, sizeof(name));
		if (!chain_path(chaindir, name, pts, MAX_CHAIN, &n, msg, sizeof(msg))) {
			cli_error("%s: missing or damaged link: %s", quote_name(dir), msg);
			json_decref(list);
			return EXIT_FAILED;
		}
		for (int k = 0; k < n && !tool_interrupted; k++)
			bad += verify_one(chaindir, pts[k].name, true, o, list);
		for (int k = 0; k < n; k++)
			point_free(&pts[k]);
	} else {
		struct chain_list l;
		int ret = chain_list(dir, &l);

		if (ret < 0) {
			cli_error("%s: %s", quote_name(dir), strerror(-ret));
			json_decref(list);
			return EXIT_FAILED;
		}
		for (int k = 0; k < l.n && !tool_interrupted; k++)
			bad += verify_one(dir, l.name[k], true, o, list);
		chain_list_free(&l);
	}
	if (tool_interrupted) {
		json_decref(list);
		return EXIT_INTERRUPTED;
	}
	if (o->json)
		manifest_json_print(json_pack("{s:o, s:b}", "verified", list, "ok", !bad));
	else
		json_decref(list);
	return bad ? EXIT_FAILED : 0;
}

int verify_command(const struct options *o)
{
	return chain_is_dir(o->dest) ? chain_verify(o, o->dest) : verify_dir(o, o->dest, true);
}
