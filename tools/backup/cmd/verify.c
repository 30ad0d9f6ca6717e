/* SPDX-License-Identifier: GPL-2.0-or-later */
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

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
