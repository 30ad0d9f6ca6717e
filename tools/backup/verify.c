/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "verify.h"
#include "cli.h"
#include "input.h"
#include "manifest.h"
#include "quote.h"
#include "stream.h"
#include "sums.h"
#include "unpack.h"

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

/* Check one device's file; NULL if fine, else what is wrong (static buffer). */
static const char *verify_device(const char *dir, const struct manifest_device *dv)
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
	if (fmt == PACK_NONE) {
		ret = pack_stream_fd(fd, (uint64_t)st.st_size, verify_unit, &v, &interrupted);
		total = (uint64_t)st.st_size;
		msg[0] = '\0';
	} else {
		ret = pack_decompress(fd, fmt, verify_unit, &v, &total, &interrupted, msg,
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
		const char *problem = verify_device(dir, &m.dev[i]);

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
