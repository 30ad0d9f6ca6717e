/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reader.c - backup points read one way (reader.h): the point and its
 * path, a device's stored data as stream records, and a device applied
 * whole into a file and checked.
 */
#define _GNU_SOURCE
#include "chain/reader.h"
#include "chain/chainio.h"
#include "chain/point.h"
#include "codec/pack.h"
#include "codec/unpack.h"
#include "extent.h"
#include "input.h"
#include "quote.h"
#include "tool.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * A chain point: a kind and chunk tables, in a directory named by its
 * time (every backup since 0.3 has a kind and tables: a plain DESTDIR is
 * a full point of no chain).
 */
static bool in_chain(const char *dir, const struct manifest *m)
{
	char real[PATH_MAX];
	const char *slash;

	if (!m->kind || !m->ndev || !m->dev[0].chunks || !realpath(dir, real))
		return false;
	slash = strrchr(real, '/');
	return point_name_ok(slash ? slash + 1 : real);
}

bool point_reader_open(struct point_reader *r, const char *dir, char *msg, size_t msglen)
{
	char chaindir[PATH_MAX], name[NAME_MAX + 1];
	struct point *p;

	memset(r, 0, sizeof(*r));
	msg[0] = '\0';
	r->pts = calloc(MAX_CHAIN, sizeof(*r->pts));
	if (!r->pts) {
		snprintf(msg, msglen, "out of memory");
		return false;
	}
	p = &r->pts[0];
	chainio_split_point_path(dir, chaindir, sizeof(chaindir), name, sizeof(name));
	snprintf(p->name, sizeof(p->name), "%s", name);
	/* As given, but for trailing slashes: the name messages show. */
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	for (size_t l = strlen(p->dir); l > 1 && p->dir[l - 1] == '/'; l--)
		p->dir[l - 1] = '\0';
	if (!manifest_read(p->dir, &p->m))
		return false;
	p->have_m = true;
	r->n = 1;
	r->chain = in_chain(p->dir, &p->m);
	if (!r->chain) {
		/* Ids before 0.3: none (zeros, as their exports carry). */
		if (!point_id_parse(p->m.point, p->id))
			memset(p->id, 0, sizeof(p->id));
		p->incremental = p->m.kind && !strcmp(p->m.kind, "incremental");
		if (p->m.kind && !p->incremental && strcmp(p->m.kind, "full")) {
			snprintf(msg, msglen, "a point of kind %s", quote_name(p->m.kind));
			return false;
		}
		if (p->incremental) {
			snprintf(msg, msglen, "an incremental point outside its chain directory "
				 "(its directory is not named as a point)");
			return false;
		}
		return true;
	}
	if (!point_check(p, msg, msglen))
		return false;
	return chain_path_from(chaindir, r->pts, MAX_CHAIN, &r->n, msg, msglen);
}

void point_reader_close(struct point_reader *r)
{
	if (r->pts) {
		/* chain_path_from frees what it loaded when it fails. */
		for (int k = 0; k < (r->n ? r->n : 1); k++)
			point_free(&r->pts[k]);
	}
	free(r->pts);
	r->pts = NULL;
	r->n = 0;
}

const struct point *point_reader_point(const struct point_reader *r)
{
	return &r->pts[r->n - 1];
}

const char *point_reader_holds(const struct point_reader *r, const struct stat *st)
{
	for (int k = 0; k < r->n; k++)
		if (manifest_lists_file(&r->pts[k].m, r->pts[k].dir, st))
			return r->pts[k].name;
	return NULL;
}

const char *point_entry_problem(const struct manifest_device *d, char *msg, size_t msglen)
{
	if (!d->device || !d->file || !*d->file || strchr(d->file, '/') || !d->backing ||
	    d->size == MANIFEST_ABSENT || d->mtime == MANIFEST_ABSENT ||
	    d->cow_bytes == MANIFEST_ABSENT)
		snprintf(msg, msglen, "incomplete entry in the manifest");
	else if (!d->chunks && (!d->crc32 || !d->sha256_tree))
		snprintf(msg, msglen, "incomplete entry in the manifest: %s has no checksums (a "
			 "chunk table, or crc32 and sha256_tree)", d->device);
	else if (d->format && strcmp(d->format, "ubdx") && strcmp(d->format, "cow"))
		snprintf(msg, msglen, "unknown format in the manifest");
	else if (!d->compression || pack_parse(d->compression) < 0)
		snprintf(msg, msglen, "the manifest says compression %s, which is none known",
			 d->compression ? d->compression : "nothing");
	else
		return NULL;
	return msg;
}

static bool is_stream(const struct manifest_device *d)
{
	return d->format && !strcmp(d->format, "ubdx");
}

/* --- a point's stored data as records ------------------------------------ */

struct own_read {
	const struct point *p;
	const struct manifest_device *d;
	xs_record_fn fn;
	void *ctx;
	struct point_data *out;
	struct xs_header h;             /* a COW file's: a full stream's */
	bool started, bad_cow;
	uint64_t off;                   /* a COW file's units: where */
};

static void keep_head(struct point_data *out, uint64_t off, const uint8_t *data, uint64_t len)
{
	size_t n;

	if (off >= out->headlen || !data)
		return;
	n = len < out->headlen - off ? (size_t)len : out->headlen - (size_t)off;
	memcpy(out->head + off, data, n);
}

static int own_record(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
		      const uint8_t *data)
{
	struct own_read *o = ctx;

	if (off == XS_HEADER_CALL) {
		o->out->file_size = h->file_size;
		o->out->headlen = h->file_size < sizeof(o->out->head) ? (size_t)h->file_size :
				  sizeof(o->out->head);
	} else if (data) {
		keep_head(o->out, off, data, len);
		o->out->data += len;
	}
	return o->fn(o->ctx, h, off, len, data);
}

/* A COW file's units (NULL: zeros) as a full stream's records. */
static int own_unit(void *ctx, const uint8_t *data, size_t len)
{
	struct own_read *o = ctx;
	int ret = 0;

	if (!o->started) {
		struct ubdk_header hdr;
		struct ubdk_geometry geo;
		struct ubdk_err err = { 0 };

		/* The chunk grid starts at the COW's data offset: its header says. */
		if (!data || ubdk_header_decode(data, len, NULL, &hdr, &err) < 0 ||
		    ubdk_header_geometry(&hdr, NULL, &geo, &err) < 0) {
			o->bad_cow = true;
			return -EBADMSG;
		}
		o->started = true;
		o->h.chunk_size = XS_CHUNK_SIZE;
		o->h.file_size = o->d->cow_bytes;
		o->h.data_offset = geo.data_offset;
		memcpy(o->h.point, o->p->id, 16);
		o->out->headlen = sizeof(o->out->head);
		ret = o->fn(o->ctx, &o->h, XS_HEADER_CALL, 0, NULL);
		if (ret < 0)
			return ret;
	}
	if (o->out->has_sums)
		sums_unit(&o->out->sums, data, len);
	keep_head(o->out, o->off, data, len);
	if (data) {
		o->out->data += len;
		ret = o->fn(o->ctx, &o->h, o->off, len, data);
	}
	o->off += len;
	return ret;
}

int point_read(const struct point *p, const struct manifest_device *d, xs_record_fn fn,
	       void *ctx, struct point_data *out)
{
	struct own_read o = { .p = p, .d = d, .fn = fn, .ctx = ctx, .out = out };
	struct stat st;
	uint64_t total = 0;
	int fd, ret;

	memset(out, 0, sizeof(*out));
	fd = chainio_open_stream(p, d, &st, out->msg, sizeof(out->msg));
	if (fd < 0)
		return fd == INPUT_E_TYPE ? -EBADMSG : fd;
	out->stored = (uint64_t)st.st_size;
	out->stream = is_stream(d);
	out->fmt = PACK_NONE;
	if (out->stream) {
		ret = xs_read_fd_ex(fd, own_record, &o, NULL, &out->fmt, out->digest,
				    &tool_interrupted, out->msg, sizeof(out->msg));
	} else {
		/* A backup of 0.2.0: the sums of the whole file, zeros and all. */
		out->has_sums = !d->chunks;
		sums_init(&out->sums);
		out->fmt = pack_detect(fd);
		if (out->fmt < 0) {
			out->fmt = PACK_NONE;
			ret = pack_stream_fd(fd, (uint64_t)st.st_size, own_unit, &o,
					     &tool_interrupted);
		} else {
			ret = pack_decompress(fd, out->fmt, own_unit, &o, &total, &tool_interrupted,
					      out->msg, sizeof(out->msg));
		}
		if (ret == 0 && !o.started)
			o.bad_cow = true, ret = -EBADMSG;
		if (o.bad_cow)
			snprintf(out->msg, sizeof(out->msg), "not a COW file");
		out->file_size = o.off;
		sums_final(&out->sums);
	}
	close(fd);
	return ret;
}

/* --- a device whole into a file ------------------------------------------- */

/* A record of a 0.2.0 COW file into the file a->fd. */
static int write_record(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
			const uint8_t *data)
{
	struct apply_ctx *a = ctx;

	(void)h;
	if (off == XS_HEADER_CALL || !data)
		return 0;
	a->written += len;
	return stream_write_all(a->fd, data, (size_t)len, (off_t)off);
}

/*
 * An uncompressed backup's COW file, copied as it is: its data extents
 * only, so the copy is as sparse as the backup (the table check follows).
 */
static int copy_cow(const struct point *p, const struct manifest_device *d, int fd,
		    uint64_t *written, char *msg, size_t msglen)
{
	struct copy_ctx cc = { 0 };
	struct extent_iter it;
	enum copy_side side;
	struct stat st;
	uint64_t off, len;
	int in, ret;

	in = chainio_open_stream(p, d, &st, msg, msglen);
	if (in < 0)
		return in == INPUT_E_TYPE ? -EBADMSG : in;
	if ((uint64_t)st.st_size != d->cow_bytes) {
		snprintf(msg, msglen, "%s: holds %llu bytes, the manifest says %llu", d->file,
			 (unsigned long long)st.st_size, (unsigned long long)d->cow_bytes);
		close(in);
		return -EBADMSG;
	}
	if (ftruncate(fd, st.st_size) < 0) {
		close(in);
		return -errno;
	}
	extent_iter_init(&it, in, 0, (uint64_t)st.st_size);
	while ((ret = extent_next(&it, &off, &len)) > 0) {
		if (tool_interrupted) {
			ret = -EINTR;
			break;
		}
		ret = copy_range(&cc, in, off, fd, off, len, &side);
		if (ret < 0)
			break;
		*written += len;
	}
	copy_ctx_free(&cc);
	close(in);
	return ret;
}

/* The file in fd against point p's chunk table of d.  0, or -EBADMSG with msg. */
static int check_table(const struct point *p, const struct manifest_device *d, int fd,
		       char *msg, size_t msglen)
{
	struct chunk_table want, got;
	uint64_t rd, diff;
	int ret;

	if (!point_table(p->dir, &p->m, d, &want, msg, msglen))
		return -EBADMSG;
	ret = table_of_fd(fd, &want.g, want.point, &got, &rd);
	if (ret < 0) {
		snprintf(msg, msglen, "reading back: %s", strerror(-ret));
		table_free(&want);
		return ret;
	}
	if (!table_same(&want, &got, &diff)) {
		snprintf(msg, msglen, "the restored file differs from its chunk table %s at byte "
			 "%llu", d->chunks, (unsigned long long)diff);
		ret = -EBADMSG;
	}
	table_free(&want);
	table_free(&got);
	return ret;
}

int point_reader_apply(const struct point_reader *r, const struct manifest_device *d, int fd,
		       uint64_t *written, char *msg, size_t msglen)
{
	const struct point *p = point_reader_point(r);
	int ret;

	*written = 0;
	msg[0] = '\0';
	if (point_entry_problem(d, msg, msglen))
		return -EBADMSG;
	if (is_stream(d)) {
		ret = chain_apply(r->pts, r->n, d->device, fd, written, msg, msglen);
	} else if (d->chunks) {
		ret = copy_cow(p, d, fd, written, msg, msglen);
	} else {
		struct apply_ctx a = { .fd = fd };
		struct point_data *pd = malloc(sizeof(*pd));

		if (!pd)
			return -ENOMEM;
		ret = point_read(p, d, write_record, &a, pd);
		*written = a.written;
		if (ret == 0 && ftruncate(fd, (off_t)pd->file_size) < 0)
			ret = -errno;
		if (ret < 0 && ret != -EINTR)
			snprintf(msg, msglen, "%s: %s", d->file, pd->msg[0] ? pd->msg :
				 strerror(-ret));
		if (ret == 0 && (strcmp(pd->sums.crc_hex, d->crc32) ||
				 strcmp(pd->sums.sha_hex, d->sha256_tree))) {
			snprintf(msg, msglen, "%s: checksum mismatch with the manifest (crc32 %s, "
				 "manifest %s)", d->file, pd->sums.crc_hex, d->crc32);
			ret = -EBADMSG;
		}
		free(pd);
		return ret;
	}
	if (ret == 0)
		ret = check_table(p, d, fd, msg, msglen);
	return ret;
}
