/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "chain/chain.h"
#include "extent.h"
#include "quote.h"
#include "format/stream.h"
#include "tool.h"

#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* --- the chain directory ---------------------------------------------------- */

bool point_name_ok(const char *s)
{
	/* YYYYMMDDTHHMMSS.mmmZ */
	static const char pat[] = "dddddddd" "T" "dddddd" "." "ddd" "Z";

	if (strlen(s) != POINT_NAME_LEN)
		return false;
	for (int i = 0; i < POINT_NAME_LEN; i++)
		if (pat[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != pat[i])
			return false;
	return true;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(a, b);
}

int chain_list(const char *chaindir, struct chain_list *l)
{
	DIR *d = opendir(chaindir);
	struct dirent *e;

	l->n = 0;
	l->name = NULL;
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;

		/* Hidden names are a prune's work in progress: never points. */
		if (!point_name_ok(e->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", chaindir, e->d_name, MANIFEST);
		/* A directory without a manifest is a run that did not finish. */
		if (stat(path, &st) != 0)
			continue;
		if (l->n == MAX_POINTS) {
			closedir(d);
			chain_list_free(l);
			return -E2BIG;
		}
		if (l->n % 64 == 0) {
			void *p = realloc(l->name, (size_t)(l->n + 64) * sizeof(*l->name));

			if (!p) {
				closedir(d);
				chain_list_free(l);
				return -ENOMEM;
			}
			l->name = p;
		}
		memcpy(l->name[l->n++], e->d_name, POINT_NAME_LEN + 1);
	}
	closedir(d);
	if (l->n)
		qsort(l->name, (size_t)l->n, sizeof(*l->name), cmp_names);
	return 0;
}

void chain_list_free(struct chain_list *l)
{
	free(l->name);
	l->name = NULL;
	l->n = 0;
}

int point_id_new(uint8_t id[16])
{
	ssize_t n = getrandom(id, 16, 0);

	return n == 16 ? 0 : n < 0 ? -errno : -EIO;
}

void point_name_now(char name[POINT_NAME_LEN + 1])
{
	tool_utc_stamp(name, POINT_NAME_LEN + 1, true);
}

bool point_id_parse(const char *hex, uint8_t id[16])
{
	if (!hex || strlen(hex) != 32)
		return false;
	for (int i = 0; i < 16; i++) {
		unsigned v = 0;

		for (int j = 0; j < 2; j++) {
			char c = hex[2 * i + j];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return false;
		}
		id[i] = (uint8_t)v;
	}
	return true;
}

/* --- points ------------------------------------------------------------------ */

bool point_load(const char *chaindir, const char *name, struct point *p, char *msg,
		size_t msglen)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->dir, sizeof(p->dir), "%s/%s", chaindir, name);
	if (access(p->dir, F_OK) != 0) {
		snprintf(msg, msglen, "point %s is missing", name);
		return false;
	}
	/* manifest_read says what is wrong with it itself. */
	if (!manifest_read(p->dir, &p->m)) {
		snprintf(msg, msglen, "point %s: its manifest cannot be read", name);
		return false;
	}
	p->have_m = true;
	return point_check(p, msg, msglen);
}

bool point_check(struct point *p, char *msg, size_t msglen)
{
	const char *name = p->name;

	if (!point_id_parse(p->m.point, p->id) || !p->m.kind ||
	    (strcmp(p->m.kind, "full") && strcmp(p->m.kind, "incremental"))) {
		snprintf(msg, msglen, "point %s: not a chain point (no point id or kind "
			 "in its manifest)", name);
		return false;
	}
	p->incremental = !strcmp(p->m.kind, "incremental");
	if (p->incremental && (!p->m.parent_dir || !point_name_ok(p->m.parent_dir) ||
			       !p->m.parent_point || !point_id_parse(p->m.parent_point,
								     (uint8_t[16]){ 0 }))) {
		snprintf(msg, msglen, "point %s: an incremental without a valid parent "
			 "entry", name);
		return false;
	}
	for (size_t i = 0; i < p->m.ndev; i++) {
		const struct manifest_device *d = &p->m.dev[i];

		if (!d->device || !d->file || !d->chunks || strchr(d->file, '/') ||
		    strchr(d->chunks, '/') || !d->chunks_xxh128 || !d->stream_xxh128 ||
		    d->size == MANIFEST_ABSENT || d->cow_bytes == MANIFEST_ABSENT) {
			snprintf(msg, msglen, "point %s: incomplete entry for device %zu in its "
				 "manifest", name, i);
			return false;
		}
	}
	return true;
}

void point_free(struct point *p)
{
	if (p->have_m)
		manifest_free(&p->m);
	p->have_m = false;
}

const struct manifest_device *point_device(const struct point *p, const char *dev)
{
	for (size_t i = 0; i < p->m.ndev; i++)
		if (!strcmp(p->m.dev[i].device, dev))
			return &p->m.dev[i];
	return NULL;
}

bool chain_path(const char *chaindir, const char *name, struct point *out, int max, int *n,
		char *msg, size_t msglen)
{
	*n = 0;
	if (max < 1) {
		snprintf(msg, msglen, "chain longer than %d points", max);
		return false;
	}
	if (!point_load(chaindir, name, &out[0], msg, msglen)) {
		point_free(&out[0]);
		return false;
	}
	return chain_path_from(chaindir, out, max, n, msg, msglen);
}

bool chain_path_from(const char *chaindir, struct point *out, int max, int *n, char *msg,
		     size_t msglen)
{
	char cur[POINT_NAME_LEN + 1];
	int k = 1;

	*n = 0;
	while (out[k - 1].incremental) {
		const struct point *child = &out[k - 1];
		struct point *p;
		uint8_t want[16];

		if (k == max) {
			snprintf(msg, msglen, "chain longer than %d points", max);
			goto fail;
		}
		snprintf(cur, sizeof(cur), "%s", child->m.parent_dir);
		p = &out[k];
		if (!point_load(chaindir, cur, p, msg, msglen)) {
			point_free(p);
			goto fail;
		}
		k++;
		point_id_parse(child->m.parent_point, want);
		if (memcmp(want, p->id, 16)) {
			snprintf(msg, msglen, "point %s: its parent %s is another point "
				 "(id %s, expected %s)", child->name, p->name,
				 p->m.point, child->m.parent_point);
			goto fail;
		}
		/* Parents are older: a loop cannot form. */
		if (strcmp(p->name, child->name) >= 0) {
			snprintf(msg, msglen, "point %s: its parent %s is not older",
				 child->name, p->name);
			goto fail;
		}
	}
	/* Oldest first. */
	for (int i = 0; i < k / 2; i++) {
		struct point t = out[i];

		out[i] = out[k - 1 - i];
		out[k - 1 - i] = t;
	}
	*n = k;
	return true;
fail:
	for (int i = 0; i < k; i++)
		point_free(&out[i]);
	return false;
}

/* --- scanning for changes --------------------------------------------------- */

int scan_init(struct scan *s, const struct chunk_grid *g, const struct chunk_table *parent,
	      int src, const char *src_name, int dst, const char *dst_name)
{
	size_t words = (size_t)((g->count + 63) / 64) + 1;

	memset(s, 0, sizeof(*s));
	s->g = g;
	s->parent = parent;
	s->src = src;
	s->dst = dst;
	s->src_name = src_name;
	s->dst_name = dst_name;
	s->changed = calloc(words, 8);
	s->zero = calloc(words, 8);
	s->buf = malloc(g->chunk_size);
	if (!s->changed || !s->zero || !s->buf) {
		scan_free(s);
		snprintf(s->msg, sizeof(s->msg), "out of memory");
		return -ENOMEM;
	}
	return 0;
}

void scan_free(struct scan *s)
{
	free(s->changed);
	free(s->zero);
	free(s->buf);
	s->changed = s->zero = NULL;
	s->buf = NULL;
}

static int scan_fail(struct scan *s, int err, const char *name, const char *what)
{
	char n[256];

	snprintf(s->msg, sizeof(s->msg), "%s: %s: %s", quote_elide(n, sizeof(n), name), what,
		 strerror(err));
	return -err;
}

static void setbit(uint64_t *b, uint64_t i, bool v)
{
	if (v)
		b[i / 64] |= 1ULL << (i % 64);
	else
		b[i / 64] &= ~(1ULL << (i % 64));
}

static bool getbit(const uint64_t *b, uint64_t i)
{
	return b[i / 64] >> (i % 64) & 1;
}

/* Chunk i, [d, d + n) known to be data in the source (n = 0: nothing known). */
static int scan_chunk_in(struct scan *s, uint64_t i, uint64_t d, uint64_t n)
{
	const struct chunk_entry *pe;
	uint64_t off, len;
	uint8_t dig[16];
	bool was;
	int ret = chunk_read_in(s->src, s->g, i, s->buf, &off, &len, &s->read, d, n);

	if (ret < 0)
		return scan_fail(s, -ret, s->src_name, "reading");
	pe = s->parent ? table_find(s->parent, off) : NULL;
	was = getbit(s->changed, i);
	if (unit_is_zero(s->buf, (size_t)len)) {
		/* Zero now: a change only if the parent had data there. */
		setbit(s->changed, i, pe != NULL);
		setbit(s->zero, i, pe != NULL);
	} else {
		chunk_digest(s->buf, (size_t)len, dig);
		if (pe && !memcmp(pe->digest, dig, 16)) {
			setbit(s->changed, i, false);
		} else {
			setbit(s->changed, i, true);
			setbit(s->zero, i, false);
			if (s->dst >= 0) {
				ret = stream_write_all(s->dst, s->buf, (size_t)len, (off_t)off);
				if (ret < 0)
					return scan_fail(s, -ret, s->dst_name, "writing");
				s->written += len;
			}
		}
	}
	s->nchanged += (uint64_t)getbit(s->changed, i) - (uint64_t)was;
	if (s->intr && *s->intr)
		return -EINTR;
	return 0;
}

int scan_chunk(struct scan *s, uint64_t i)
{
	return scan_chunk_in(s, i, 0, 0);
}

/*
 * Every chunk with data in the source, and every chunk the parent had (it
 * may be a hole now), in increasing order.
 */
static int scan_all(struct scan *s)
{
	struct extent_iter it;
	uint64_t d = 0, n = 0, pi = 0, i = 0;
	bool more;
	int ret = 0;

	extent_iter_init(&it, s->src, 0, s->g->file_size);
	more = extent_next(&it, &d, &n) != 0;
	while (ret == 0 && i < s->g->count) {
		uint64_t next = UINT64_MAX, off, len;

		grid_chunk(s->g, i, &off, &len);
		/* The next source extent that still reaches chunk i or later. */
		while (more) {
			if (d + n > off)
				break;
			more = extent_next(&it, &d, &n) != 0;
		}
		if (more)
			next = grid_index(s->g, d > off ? d : off);
		while (s->parent && pi < s->parent->n && s->parent->e[pi].off < off)
			pi++;
		if (s->parent && pi < s->parent->n) {
			uint64_t pidx = grid_index(s->g, s->parent->e[pi].off);

			if (pidx < next)
				next = pidx;
		}
		if (next == UINT64_MAX || next >= s->g->count)
			break;
		/*
		 * The extent the walk is in tells where the data is: a chunk
		 * inside it is read without seeking its extents again (a
		 * comparison of a 1 GiB COW made 33,111 lseeks, 4cc136a 11).
		 */
		ret = scan_chunk_in(s, next, more ? d : 0, more ? n : 0);
		i = next + 1;
	}
	return ret;
}

int scan_changes(struct scan *s, const struct changes *c)
{
	int ret = 0;

	if (c->all)
		return scan_all(s);
	for (uint64_t i = 0; i < s->g->count && ret == 0; i++) {
		if ((i & 63) == 0 && c->bits[i / 64] == 0) {
			i += 63;
			continue;
		}
		if (getbit(c->bits, i))
			ret = scan_chunk(s, i);
	}
	return ret;
}

int scan_blocks(struct scan *s, const uint64_t *bits, uint64_t nblocks, uint32_t blk)
{
	uint64_t last = UINT64_MAX;
	int ret = 0;

	for (uint64_t b = 0; b < nblocks && ret == 0; b++) {
		uint64_t first, end, i;

		if ((b & 63) == 0 && bits[b / 64] == 0) {
			b += 63;
			continue;
		}
		if (!getbit(bits, b))
			continue;
		first = b * blk;
		if (first >= s->g->file_size)
			break;
		end = first + blk < s->g->file_size ? first + blk : s->g->file_size;
		/* A block may straddle two chunks (the data offset is not aligned). */
		for (i = grid_index(s->g, first); ret == 0 && i <= grid_index(s->g, end - 1); i++) {
			if (i == last)
				continue;
			ret = scan_chunk(s, i);
			last = i;
		}
	}
	return ret;
}
