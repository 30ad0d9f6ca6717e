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
#include "format/manifest.h"
#include "chain/point.h"
#include "chain/reader.h"
#include "quote.h"
#include "format/xstream.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct export_ctx {
	struct xs_header h;
	struct xs_writer *w;
	int outfd;
	bool own;                       /* an incremental's records kept as they are */
	/* A COW file since 0.3: its table, built as its data goes out. */
	bool tb_open;
	struct table_builder tb;
	struct chunk_table got;
};

/* The point's stored records (point_read), re-written as they come. */
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
		return xs_writer_open(&e->w, &e->h, xs_fd_sink, &e->outfd);
	}
	if (!data) {
		/* The base of a full stream is empty: a ZERO record changes nothing. */
		return e->h.flags & XS_FLAG_INCREMENTAL ? xs_zero(e->w, off, len) : 0;
	}
	ret = e->tb_open ? tb_data(&e->tb, off, data, len) : 0;
	return ret < 0 ? ret : xs_data(e->w, off, data, (size_t)len);
}

/*
 * An incremental point's whole device: the point reader applies its chain
 * to an unnamed temporary file (sparse: it costs the point's data, in
 * TMPDIR) and checks it, then a full stream of that file goes out, its
 * chunks checked against the point's table once more as they are read.
 * 0, or an exit status after a message.
 */
static int export_whole(const struct options *o, const struct point_reader *r,
			const struct manifest_device *dv, uint64_t *bytes, uint64_t *data)
{
	const struct point *p = point_reader_point(r);
	const char *tmp = getenv("TMPDIR");
	struct emit_result *er = calloc(1, sizeof(*er));
	struct chunk_table want;
	char msg[700];
	uint64_t diff, written;
	int fd = -1, out = STDOUT_FILENO, ret, st = EXIT_FAILED;

	if (!er) {
		cli_error("out of memory");
		return EXIT_FAILED;
	}
	if (!point_table(p->dir, &p->m, dv, &want, msg, sizeof(msg))) {
		cli_error("%s: %s", quote_name(o->dest), msg);
		free(er);
		return EXIT_FAILED;
	}
	tmp = tmp && *tmp ? tmp : "/tmp";
	fd = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		cli_error("%s: cannot make a temporary file to apply the chain in: %s",
			  quote_name(tmp), strerror(errno));
		st = EXIT_DEST;
		goto out;
	}
	ret = point_reader_apply(r, dv, fd, &written, msg, sizeof(msg));
	if (ret == -EINTR) {
		st = EXIT_INTERRUPTED;
		goto out;
	}
	if (ret < 0) {
		cli_error("%s: cannot export: %s", quote_name(o->dest), msg[0] ? msg :
			  strerror(-ret));
		st = ret == -ENOSPC || ret == -EDQUOT ? EXIT_DEST : EXIT_FAILED;
		goto out;
	}
	ret = point_emit(fd, tmp, &want.g, p->id, NULL, NULL, xs_fd_sink, &out, er);
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
out:
	table_free(&want);
	if (fd >= 0)
		close(fd);
	free(er);
	return st;
}

/* Whether what went out matches what the manifest says; else a message. */
static int check_export(const struct point *p, const struct manifest_device *dv,
			const char *path, const struct export_ctx *e,
			const struct point_data *pd, const uint8_t out_digest[16])
{
	char hex[33], msg[400];
	struct chunk_table want;
	uint64_t diff;
	bool same;

	if (pd->stream) {
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
	if (pd->has_sums) {
		if (strcmp(pd->sums.crc_hex, dv->crc32) || strcmp(pd->sums.sha_hex,
								  dv->sha256_tree)) {
			cli_error("%s: checksum mismatch with the manifest (crc32 %s, manifest %s): "
				  "the stream written is of a damaged backup", quote_name(path),
				  pd->sums.crc_hex, quote_name(dv->crc32));
			return EXIT_FAILED;
		}
		return 0;
	}
	if (!point_table(p->dir, &p->m, dv, &want, msg, sizeof(msg))) {
		cli_error("%s: %s", quote_name(p->dir), msg);
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

/* The point's own stream (a full point's is its whole device); an exit status. */
static int export_own(const struct options *o, const struct point *p,
		      const struct manifest_device *dv, uint64_t *bytes, uint64_t *data)
{
	struct point_data *pd = malloc(sizeof(*pd));
	struct export_ctx e = { .outfd = STDOUT_FILENO, .own = o->own };
	char path[PATH_MAX + 80], msg[400];
	uint8_t out_digest[16];
	int ret = 0, st;

	if (!pd) {
		cli_error("out of memory");
		return EXIT_FAILED;
	}
	snprintf(path, sizeof(path), "%s/%s", p->dir, dv->file);
	/* A COW file since 0.3: its chunks against the table, as they go out. */
	if (dv->chunks && !(dv->format && !strcmp(dv->format, "ubdx"))) {
		/* The table's header has the grid (the COW's data offset). */
		struct chunk_table want;

		if (!point_table(p->dir, &p->m, dv, &want, msg, sizeof(msg))) {
			cli_error("%s: %s", quote_name(o->dest), msg);
			free(pd);
			return EXIT_FAILED;
		}
		ret = tb_init(&e.tb, &want.g, p->id, &e.got);
		table_free(&want);
		e.tb_open = ret == 0;
	}
	if (ret == 0)
		ret = point_read(p, dv, export_record, &e, pd);
	if (ret == -ENOTSUP)
		snprintf(pd->msg, sizeof(pd->msg), "an incremental stream in a full point");
	if (e.tb_open) {
		int tr = tb_finish(&e.tb);

		ret = ret ? ret : tr;
	}
	if (ret == 0)
		ret = xs_writer_finish(e.w, bytes, out_digest);
	xs_writer_free(e.w);
	*data = pd->data;
	if (ret == -EINTR) {
		st = EXIT_INTERRUPTED;
	} else if (ret == -EPIPE || (ret < 0 && !pd->msg[0] && e.w)) {
		cli_error("stdout: %s", strerror(-ret));
		st = EXIT_FAILED;
	} else if (ret < 0) {
		cli_error("%s: %s", quote_name(path), pd->msg[0] ? pd->msg : strerror(-ret));
		st = EXIT_FAILED;
	} else {
		st = check_export(p, dv, path, &e, pd, out_digest);
	}
	table_free(&e.got);
	free(pd);
	return st;
}

int export_point(const struct options *o)
{
	const struct manifest_device *dv = NULL;
	const struct point *p;
	struct point_reader r;
	char msg[700];
	uint64_t bytes = 0, data = 0;
	int st;

	if (isatty(STDOUT_FILENO)) {
		cli_error("export: stdout is a terminal; pipe it (to restic, a file)");
		return EXIT_USAGE;
	}
	if (!point_reader_open(&r, o->dest, msg, sizeof(msg))) {
		if (msg[0])
			cli_error("%s: cannot export: %s", quote_name(o->dest), msg);
		point_reader_close(&r);
		return EXIT_FAILED;
	}
	p = point_reader_point(&r);
	dv = manifest_pick_device(&p->m, o->dest, o->ndevices ? o->devices[0] : NULL);
	if (!dv) {
		point_reader_close(&r);
		return EXIT_DEVICE;
	}
	if (point_entry_problem(dv, msg, sizeof(msg))) {
		cli_error("%s/%s: %s", quote_name(o->dest), MANIFEST, msg);
		point_reader_close(&r);
		return EXIT_FAILED;
	}
	if (p->incremental && !o->own)
		st = export_whole(o, &r, dv, &bytes, &data);
	else
		st = export_own(o, p, dv, &bytes, &data);
	if (st == 0 && !o->quiet)
		fprintf(stderr, "%s: exported %s of %s: %s, a %.1f MiB stream of %.1f MiB of "
			"data, checked against the manifest\n", cli_prog, quote_name(dv->device),
			quote_name(o->dest), p->incremental && o->own ? "its own incremental stream" :
			p->incremental ? "the whole device (its chain applied)" : "the whole device",
			(double)bytes / 1048576.0, (double)data / 1048576.0);
	point_reader_close(&r);
	return st;
}
