/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chainverify.c - `uml_backup verify` of chain points and their links,
 * without restoring anything: each stream's chunks against its table and
 * its parent's.
 */
#define _GNU_SOURCE
#include "chain/chainio.h"
#include "afile.h"
#include "cli.h"
#include "extent.h"
#include "input.h"
#include "codec/pack.h"
#include "codec/lz4_splice.h"
#include "quote.h"
#include "cmd/verify.h"
#include "format/xstream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- verify ----------------------------------------------------------------- */

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

bool chain_is_dir(const char *dir)
{
	struct chain_list l;
	char path[PATH_MAX + 32];
	struct stat st;
	bool yes;

	snprintf(path, sizeof(path), "%s/%s", dir, MANIFEST);
	if (stat(path, &st) == 0) {
		/* A FIFO must not block us: verify refuses it with a message. */
		if (!S_ISREG(st.st_mode))
			return false;
		/*
		 * A chain point: a kind and chunk tables, in a directory named by
		 * its time (every backup since 0.3 has a kind and tables: a plain
		 * DESTDIR is a full point of no chain).  Read quietly: verify and
		 * restore report what is wrong with a manifest.
		 */
		json_error_t e;
		json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
		json_t *d0 = j ? json_array_get(json_object_get(j, "devices"), 0) : NULL;

		yes = j && json_is_string(json_object_get(j, "kind")) &&
		      json_is_string(json_object_get(d0, "chunks"));
		json_decref(j);
		if (yes) {
			char real[PATH_MAX];
			const char *slash;

			if (!realpath(dir, real))
				return false;
			slash = strrchr(real, '/');
			yes = point_name_ok(slash ? slash + 1 : real);
		}
		return yes;
	}
	if (chain_list(dir, &l) < 0)
		return false;
	yes = l.n > 0;
	chain_list_free(&l);
	return yes;
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
