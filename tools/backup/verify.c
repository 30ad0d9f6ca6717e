/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "verify.h"
#include "cli.h"
#include "input.h"
#include "manifest.h"
#include "quote.h"
#include "stream.h"
#include "sums.h"
#include "unpack.h"
#include "xstream.h"

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

/* A stream's records: the COW file's bytes for the sums, its header kept. */
struct verify_xs {
	struct verify_ctx *v;
	struct sums_at sa;
	bool sa_open, incremental;
	uint64_t file_size;
	uint8_t point[16];
};

static int verify_record(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
			 const uint8_t *data)
{
	struct verify_xs *x = ctx;
	int ret;

	if (off == XS_HEADER_CALL) {
		if (h->flags & XS_FLAG_INCREMENTAL)
			return -ENOTSUP;
		x->file_size = h->file_size;
		memcpy(x->point, h->point, sizeof(x->point));
		/* What no record covers is zeros, as head is already. */
		x->v->headlen = h->file_size < sizeof(x->v->head) ? (size_t)h->file_size :
				sizeof(x->v->head);
		ret = sums_at_init(&x->sa, &x->v->sums, h->file_size);
		x->sa_open = ret == 0;
		return ret;
	}
	/* ZERO records of a full stream change nothing: its base is empty. */
	if (!data)
		return 0;
	if (off < sizeof(x->v->head)) {
		size_t n = len < sizeof(x->v->head) - off ? (size_t)len : sizeof(x->v->head) - off;

		memcpy(x->v->head + off, data, n);
	}
	sums_at_data(&x->sa, off, data, (size_t)len);
	return 0;
}

/*
 * A device stored as an extent stream: its digest against the manifest's,
 * then the COW file's checksums as for any other.  0, or -errno after a
 * message in problem.
 */
static int verify_stream(int fd, const struct manifest *m, const struct manifest_device *dv,
			 struct verify_ctx *v, uint64_t *total, char *problem, size_t plen)
{
	struct verify_xs x = { .v = v };
	uint8_t digest[16];
	char hex[33], msg[200], point[33];
	int ret;

	ret = xs_read_fd_ex(fd, verify_record, &x, NULL, NULL, digest, &interrupted, msg,
			    sizeof(msg));
	if (x.sa_open)
		sums_at_finish(&x.sa);
	*total = x.file_size;
	if (ret == -ENOTSUP) {
		snprintf(problem, plen, "an incremental stream in a full point");
		return ret;
	}
	if (ret < 0) {
		snprintf(problem, plen, "%s", msg[0] ? msg : strerror(-ret));
		return ret;
	}
	xs_hex128(digest, hex);
	if (!dv->stream_xxh128 || strcmp(hex, dv->stream_xxh128)) {
		snprintf(problem, plen, "stream digest %s, the manifest says %s", hex,
			 dv->stream_xxh128 ? dv->stream_xxh128 : "nothing");
		return -EBADMSG;
	}
	xs_hex128(x.point, point);
	if (m->point && strcmp(point, m->point)) {
		snprintf(problem, plen, "a stream of point %s, the manifest's is %s", point,
			 m->point);
		return -EBADMSG;
	}
	return 0;
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

	if (!file || !dv->compression || !dv->crc32 || !dv->sha256_tree || !dv->backing ||
	    strchr(file, '/') || dv->size == MANIFEST_ABSENT || dv->mtime == MANIFEST_ABSENT ||
	    dv->cow_bytes == MANIFEST_ABSENT || (fmt = pack_parse(dv->compression)) < 0)
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
	sums_init(&v.sums);
	if (dv->format && !strcmp(dv->format, "ubdx")) {
		ret = verify_stream(fd, m, dv, &v, &total, problem, sizeof(problem));
		close(fd);
		if (ret < 0)
			return problem;
		fd = -1;
	} else if (dv->format && strcmp(dv->format, "cow")) {
		close(fd);
		return "unknown format in the manifest";
	} else if (fmt == PACK_NONE) {
		ret = pack_stream_fd(fd, (uint64_t)st.st_size, verify_unit, &v, &interrupted);
		total = (uint64_t)st.st_size;
		msg[0] = '\0';
	} else {
		ret = pack_decompress(fd, fmt, verify_unit, &v, &total, &interrupted, msg,
				      sizeof(msg));
	}
	if (fd >= 0)
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
	if (ubdk_header_decode(v.head, v.headlen, file, &h, &err) < 0)
		return "not a COW file";
	if (!quote_json_matches(h.backing, dv->backing) || h.size != dv->size ||
	    h.mtime != (uint32_t)dv->mtime)
		return "its COW header differs from the manifest";
	/* Bootable as it is: the backing file must still match the header. */
	if (ubdk_backing_check(&h, h.backing, &chk, &err) < 0) {
		snprintf(problem, sizeof(problem), "the backing file changed: %s",
			 lib_msg(&err, h.backing));
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

		if (interrupted) {
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
	if (print && o->json && json_print(json_pack("{s:o, s:b}", "verified", list, "ok", !bad)) < 0)
		bad++;
	else if (!(print && o->json))
		json_decref(list);
	return bad ? EXIT_FAILED : 0;
}
