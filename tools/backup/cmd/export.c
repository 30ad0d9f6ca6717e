/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * export.c - a point's device as an extent stream on stdout.  Streamed:
 * the stored file (a stream, or a COW file plain or compressed) is read
 * once and re-written through the stream writer, never to a temporary
 * file.  The writer's output depends on the COW's bytes only, so that the
 * same data exported twice is the same bytes (restic stores it once).
 *
 * Two kinds of export:
 *  - the whole device (default): a full stream of the COW file at the
 *    point.  A full point is its own file; an incremental point of a chain
 *    is its chain applied (docs/backup-format.md, Chains) to an unnamed
 *    sparse temporary file, whose chunks are then checked against the
 *    point's table as they are written out.
 *  - --own: the point's own stream as stored (a full point's full stream,
 *    an incremental's changed chunks over its parent), so that a store of
 *    every point grows by the changed data only; `restore -` applies such
 *    streams given one after another, the full one first.
 */
#define _GNU_SOURCE
#include "cmd/export.h"
#include "cli.h"
#include "input.h"
#include "format/manifest.h"
#include "chain/chainio.h"
#include "chain/point.h"
#include "quote.h"
#include "format/stream.h"
#include "format/sums.h"
#include "codec/unpack.h"
#include "format/xstream.h"
#include "ubdk_static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct export_ctx {
	const struct manifest_device *dv;
	struct xs_header h;
	struct xs_writer *w;
	int outfd;
	bool own;                       /* an incremental's records kept as they are */
	/* A 0.2.0 backup: its checksums; a later COW file: its chunk table. */
	bool want_sums;
	struct sums sums;
	struct sums_at sa;
	bool sa_open;
	struct chunk_grid g;
	bool tb_open;
	struct table_builder tb;
	struct chunk_table got;
	uint64_t off, data;             /* a COW file's units: where, and how much data */
	bool bad_cow;
};

static int open_writer(struct export_ctx *e)
{
	return xs_writer_open(&e->w, &e->h, xs_fd_sink, &e->outfd);
}

/* A stored stream's records, re-written as they come. */
static int export_record(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
			 const uint8_t *data)
{
	struct export_ctx *e = ctx;
	int ret;

	if (off == XS_HEADER_CALL) {
		if ((h->flags & XS_FLAG_INCREMENTAL) && !e->own)
			return -ENOTSUP;
		/* Its own header, parent and all: the same stream comes out. */
		e->h = *h;
		if (e->want_sums) {
			ret = sums_at_init(&e->sa, &e->sums, h->file_size);
			e->sa_open = ret == 0;
			if (ret < 0)
				return ret;
		}
		return open_writer(e);
	}
	if (!data) {
		/* The base of a full stream is empty: a ZERO record changes nothing. */
		return e->h.flags & XS_FLAG_INCREMENTAL ? xs_zero(e->w, off, len) : 0;
	}
	if (e->sa_open)
		sums_at_data(&e->sa, off, data, (size_t)len);
	e->data += len;
	return xs_data(e->w, off, data, (size_t)len);
}

/* A COW file's units (uncompressed since 0.3, or any backup of 0.2.0). */
static int export_unit(void *ctx, const uint8_t *data, size_t len)
{
	struct export_ctx *e = ctx;
	int ret = 0;

	if (!e->w) {
		struct ubdk_header hdr;
		struct ubdk_geometry geo;
		struct ubdk_err err = { 0 };

		/* The chunk grid starts at the COW's data offset: its header says. */
		if (!data || ubdk_header_decode(data, len, NULL, &hdr, &err) < 0 ||
		    ubdk_header_geometry(&hdr, NULL, &geo, &err) < 0) {
			e->bad_cow = true;
			return -EBADMSG;
		}
		e->h.data_offset = geo.data_offset;
		ret = open_writer(e);
		if (ret < 0)
			return ret;
	}
	if (e->want_sums)
		sums_unit(&e->sums, data, len);
	if (e->tb_open)
		ret = tb_data(&e->tb, e->off, data, len);
	if (data && ret == 0) {
		e->data += len;
		ret = xs_data(e->w, e->off, data, len);
	}
	e->off += len;
	return ret;
}

/* The device dv of a point, from its file at path; 0 or -errno after msg. */
static int export_file(const struct manifest_device *dv, const char *path,
		       struct export_ctx *e, uint8_t digest[16], char *msg, size_t msglen)
{
	struct stat st;
	int fd = input_open(path, &st), ret, fmt;

	msg[0] = '\0';
	if (fd < 0) {
		snprintf(msg, msglen, "%s%s", fd == INPUT_E_TYPE || fd == -EISDIR ? "" :
			 "cannot open: ", input_strerror(fd));
		return fd == INPUT_E_TYPE ? -EINVAL : fd;
	}
	e->h.chunk_size = XS_CHUNK_SIZE;
	e->h.file_size = dv->cow_bytes;
	if (dv->format && !strcmp(dv->format, "ubdx")) {
		ret = xs_read_fd_ex(fd, export_record, e, NULL, NULL, digest, &tool_interrupted, msg,
				    msglen);
		if (e->sa_open)
			sums_at_finish(&e->sa);
	} else {
		fmt = pack_detect(fd);
		if (fmt < 0)
			ret = pack_stream_fd(fd, (uint64_t)st.st_size, export_unit, e, &tool_interrupted);
		else
			ret = pack_decompress(fd, fmt, export_unit, e, NULL, &tool_interrupted, msg,
					      msglen);
		if (e->bad_cow)
			snprintf(msg, msglen, "not a COW file");
		if (ret == 0 && !e->w)
			ret = open_writer(e);
	}
	close(fd);
	if (ret == -ENOTSUP)
		snprintf(msg, msglen, "an incremental stream in a full point");
	return ret;
}

/* POINTDIR as its chain directory and name. */
static bool point_place(const char *dir, char *chaindir, size_t cl, char *name, size_t nl)
{
	char real[PATH_MAX];
	char *slash;

	if (!realpath(dir, real) || !(slash = strrchr(real, '/')))
		return false;
	snprintf(name, nl, "%s", slash + 1);
	*slash = '\0';
	snprintf(chaindir, cl, "%s", real[0] ? real : "/");
	return true;
}

/*
 * An incremental point's whole device: its chain applied to an unnamed
 * temporary file (sparse: it costs the point's data, in TMPDIR), then a
 * full stream of that file, its chunks checked against the point's table.
 * 0, or an exit status after a message.
 */
static int export_chain(const struct options *o, const struct manifest *m,
			const struct manifest_device *dv, uint64_t *bytes, uint64_t *data)
{
	static struct point pts[1024];
	char chaindir[PATH_MAX], name[NAME_MAX + 1], msg[700];
	const char *tmp = getenv("TMPDIR");
	struct chunk_table want;
	struct emit_result *er = calloc(1, sizeof(*er));
	uint8_t id[16];
	uint64_t diff;
	int n = 0, fd = -1, out = STDOUT_FILENO, ret, st = EXIT_FAILED;

	if (!er) {
		cli_error("out of memory");
		return EXIT_FAILED;
	}
	if (!point_place(o->dest, chaindir, sizeof(chaindir), name, sizeof(name)) ||
	    !chain_path(chaindir, name, pts, 1024, &n, msg, sizeof(msg))) {
		cli_error("%s: cannot export: %s", quote_name(o->dest), n == 0 && !msg[0] ?
			  strerror(errno) : msg);
		free(er);
		return EXIT_FAILED;
	}
	if (!point_table(o->dest, m, dv, &want, msg, sizeof(msg))) {
		cli_error("%s: %s", quote_name(o->dest), msg);
		goto out;
	}
	tmp = tmp && *tmp ? tmp : "/tmp";
	fd = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		cli_error("%s: cannot make a temporary file to apply the chain in: %s",
			  quote_name(tmp), strerror(errno));
		st = EXIT_DEST;
		goto out_table;
	}
	ret = chain_apply(pts, n, dv->device, fd, msg, sizeof(msg));
	if (ret == -EINTR) {
		st = EXIT_INTERRUPTED;
		goto out_table;
	}
	if (ret < 0) {
		cli_error("%s: cannot export: %s", quote_name(o->dest), ret == -EBADMSG ||
			  msg[0] ? msg : strerror(-ret));
		st = ret == -ENOSPC || ret == -EDQUOT ? EXIT_DEST : EXIT_FAILED;
		goto out_table;
	}
	point_id_parse(m->point, id);
	ret = point_emit(fd, tmp, &want.g, id, NULL, NULL, xs_fd_sink, &out, er);
	if (ret == -EINTR) {
		st = EXIT_INTERRUPTED;
	} else if (ret < 0) {
		cli_error("%s", er->msg[0] ? er->msg : strerror(-ret));
	} else if (!table_same(&want, &er->tab, &diff)) {
		/* Written already: the exit status tells the pipeline. */
		cli_error("%s: its chain makes a file that differs from its chunk table at byte "
			  "%llu: the stream written is of a damaged chain", quote_name(o->dest),
			  (unsigned long long)diff);
	} else {
		*bytes = er->stream_bytes;
		*data = er->read_bytes;
		st = 0;
	}
	table_free(&er->tab);
out_table:
	table_free(&want);
out:
	if (fd >= 0)
		close(fd);
	for (int k = 0; k < n; k++)
		point_free(&pts[k]);
	free(er);
	return st;
}

/* Whether the exported device matches what the manifest says; else a message. */
static int check_export(const struct options *o, const struct manifest *m,
			const struct manifest_device *dv, const char *path, struct export_ctx *e,
			const uint8_t out_digest[16])
{
	char hex[33], msg[400];
	struct chunk_table want;
	uint64_t diff;
	bool same;

	if (dv->format && !strcmp(dv->format, "ubdx")) {
		/* The writer re-made the stored stream: the same bytes, the same digest. */
		xs_hex128(out_digest, hex);
		if (!dv->stream_xxh128 || strcmp(hex, dv->stream_xxh128)) {
			cli_error("%s: stream digest %s, the manifest says %s: the stream written "
				  "is of a damaged backup", quote_name(path), hex,
				  dv->stream_xxh128 ? quote_name(dv->stream_xxh128) : "nothing");
			return EXIT_FAILED;
		}
		return 0;
	}
	if (e->want_sums) {
		if (strcmp(e->sums.crc_hex, dv->crc32) || strcmp(e->sums.sha_hex, dv->sha256_tree)) {
			cli_error("%s: checksum mismatch with the manifest (crc32 %s, manifest %s): "
				  "the stream written is of a damaged backup", quote_name(path),
				  e->sums.crc_hex, quote_name(dv->crc32));
			return EXIT_FAILED;
		}
		return 0;
	}
	if (!point_table(o->dest, m, dv, &want, msg, sizeof(msg))) {
		cli_error("%s: %s", quote_name(o->dest), msg);
		return EXIT_FAILED;
	}
	same = table_same(&want, &e->got, &diff);
	table_free(&want);
	if (!same) {
		cli_error("%s: differs from its chunk table at byte %llu: the stream written is "
			  "of a damaged backup", quote_name(path), (unsigned long long)diff);
		return EXIT_FAILED;
	}
	return 0;
}

int export_point(const struct options *o)
{
	const struct manifest_device *dv = NULL;
	struct export_ctx e;
	struct manifest m;
	char path[PATH_MAX + 80], msg[300];
	uint8_t digest[16], out_digest[16];
	uint64_t bytes = 0;
	bool incremental;
	int ret, st = 0;

	if (isatty(STDOUT_FILENO)) {
		cli_error("export: stdout is a terminal; pipe it (to restic, a file)");
		return EXIT_USAGE;
	}
	if (!manifest_read(o->dest, &m))
		return EXIT_FAILED;
	dv = manifest_pick_device(&m, o->dest, o->ndevices ? o->devices[0] : NULL);
	if (!dv) {
		manifest_free(&m);
		return EXIT_DEVICE;
	}
	if (!dv->file || !dv->device || strchr(dv->file, '/') || dv->cow_bytes == MANIFEST_ABSENT ||
	    (!dv->chunks && (!dv->crc32 || !dv->sha256_tree))) {
		cli_error("%s/%s: incomplete entry in the manifest", quote_name(o->dest), MANIFEST);
		manifest_free(&m);
		return EXIT_FAILED;
	}
	if (m.kind && strcmp(m.kind, "full") && strcmp(m.kind, "incremental")) {
		cli_error("%s: a point of kind %s", quote_name(o->dest), quote_name(m.kind));
		manifest_free(&m);
		return EXIT_FAILED;
	}
	incremental = m.kind && !strcmp(m.kind, "incremental");
	snprintf(path, sizeof(path), "%s/%s", o->dest, dv->file);
	memset(&e, 0, sizeof(e));
	if (incremental && !o->own) {
		st = export_chain(o, &m, dv, &bytes, &e.data);
		goto done;
	}
	e.dv = dv;
	e.outfd = STDOUT_FILENO;
	e.own = o->own;
	e.want_sums = !dv->chunks;
	sums_init(&e.sums);
	/* The point's id, as the stream's header carries it (zeros before 0.3). */
	if (m.point && !point_id_parse(m.point, e.h.point))
		memset(e.h.point, 0, sizeof(e.h.point));
	/* A COW file since 0.3: its chunks against the table, as they go out. */
	ret = dv->chunks && !(dv->format && !strcmp(dv->format, "ubdx")) ? 1 : 0;
	if (ret) {
		/* The table's header has the grid (the COW's data offset). */
		struct chunk_table want;

		if (!point_table(o->dest, &m, dv, &want, msg, sizeof(msg))) {
			cli_error("%s: %s", quote_name(o->dest), msg);
			manifest_free(&m);
			return EXIT_FAILED;
		}
		e.g = want.g;
		table_free(&want);
		ret = tb_init(&e.tb, &e.g, e.h.point, &e.got);
		e.tb_open = ret == 0;
	}
	if (ret == 0)
		ret = export_file(dv, path, &e, digest, msg, sizeof(msg));
	if (ret == 0 && e.tb_open)
		ret = tb_finish(&e.tb);
	else if (e.tb_open)
		tb_finish(&e.tb);
	if (ret == 0)
		ret = xs_writer_finish(e.w, &bytes, out_digest);
	xs_writer_free(e.w);
	sums_final(&e.sums);
	if (ret == -EINTR) {
		st = EXIT_INTERRUPTED;
	} else if (ret == -EPIPE || (ret < 0 && !msg[0] && e.w)) {
		cli_error("stdout: %s", strerror(-ret));
		st = EXIT_FAILED;
	} else if (ret < 0) {
		cli_error("%s: %s", quote_name(path), msg[0] ? msg : strerror(-ret));
		st = EXIT_FAILED;
	} else {
		st = check_export(o, &m, dv, path, &e, out_digest);
	}
	table_free(&e.got);
done:
	if (st == 0 && !o->quiet)
		fprintf(stderr, "%s: exported %s of %s: %s, a %.1f MiB stream of %.1f MiB of "
			"data, checked against the manifest\n", cli_prog, quote_name(dv->device),
			quote_name(o->dest), incremental && o->own ? "its own incremental stream" :
			incremental ? "the whole device (its chain applied)" : "the whole device",
			(double)bytes / 1048576.0, (double)e.data / 1048576.0);
	manifest_free(&m);
	return st;
}
