/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * export.c - a point's device as an extent stream on stdout.  Streamed:
 * the stored file (a stream, or a COW file plain or compressed) is read
 * once and re-written through the stream writer, never to a temporary
 * file.  The writer's output depends on the COW's bytes only, so that the
 * same data exported twice is the same bytes (restic stores it once).
 *
 * A full point is its own file.  An incremental point (docs/backup-format.md,
 * Chains) would be exported by applying its chain from the full point
 * down to it; export_full() is the full case, which that builds on.
 */
#include "export.h"
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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct export_ctx {
	const struct manifest_device *dv;
	struct xs_header h;
	struct xs_writer *w;
	int outfd;
	struct sums sums;
	struct sums_at sa;              /* a stream's records: the COW's units */
	bool sa_open;
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
		if (h->flags & XS_FLAG_INCREMENTAL)
			return -ENOTSUP;
		e->h.chunk_size = h->chunk_size;
		e->h.file_size = h->file_size;
		e->h.data_offset = h->data_offset;
		ret = sums_at_init(&e->sa, &e->sums, h->file_size);
		e->sa_open = ret == 0;
		return ret ? ret : open_writer(e);
	}
	/* The base of a full stream is empty: a ZERO record changes nothing. */
	if (!data)
		return 0;
	sums_at_data(&e->sa, off, data, (size_t)len);
	e->data += len;
	return xs_data(e->w, off, data, (size_t)len);
}

/* A COW file's units (a backup before 0.3, or uncompressed). */
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
	sums_unit(&e->sums, data, len);
	if (data) {
		e->data += len;
		ret = xs_data(e->w, e->off, data, len);
	}
	e->off += len;
	return ret;
}

/* The device dv of a full point, from its file at path; 0 or -errno after msg. */
static int export_full(const struct manifest *m, const struct manifest_device *dv,
		       const char *path, struct export_ctx *e, char *msg, size_t msglen)
{
	struct stat st;
	int fd = input_open(path, &st), ret, fmt;
	uint8_t digest[16];

	msg[0] = '\0';
	if (fd < 0) {
		snprintf(msg, msglen, "%s%s", fd == INPUT_E_TYPE || fd == -EISDIR ? "" :
			 "cannot open: ", input_strerror(fd));
		return fd == INPUT_E_TYPE ? -EINVAL : fd;
	}
	e->h.chunk_size = XS_CHUNK_SIZE;
	e->h.file_size = dv->cow_bytes;
	(void)m;
	if (dv->format && !strcmp(dv->format, "ubdx")) {
		ret = xs_read_fd_ex(fd, export_record, e, NULL, NULL, digest, &interrupted, msg,
				    msglen);
		if (e->sa_open)
			sums_at_finish(&e->sa);
	} else {
		fmt = pack_detect(fd);
		if (fmt < 0)
			ret = pack_stream_fd(fd, (uint64_t)st.st_size, export_unit, e, &interrupted);
		else
			ret = pack_decompress(fd, fmt, export_unit, e, NULL, &interrupted, msg,
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

int export_point(const struct options *o)
{
	const struct manifest_device *dv = NULL;
	struct export_ctx e;
	struct manifest m;
	char path[PATH_MAX + 80], msg[300];
	uint64_t bytes = 0;
	int ret, st = 0;

	if (isatty(STDOUT_FILENO)) {
		cli_error("export: stdout is a terminal; pipe it (to restic, a file)");
		return EXIT_USAGE;
	}
	if (!manifest_read(o->dest, &m))
		return EXIT_FAILED;
	for (size_t i = 0; i < m.ndev; i++) {
		const char *name = m.dev[i].device;

		if (o->ndevices == 0 ? m.ndev == 1 :
		    name && parse_unit(name) >= 0 && parse_unit(name) == parse_unit(o->devices[0]))
			dv = &m.dev[i];
	}
	if (!dv) {
		if (o->ndevices)
			cli_error("%s: no device %s in this backup", quote_name(o->dest),
				  quote_name(o->devices[0]));
		else
			cli_error("%s: %zu devices in this backup: choose one with -d",
				  quote_name(o->dest), m.ndev);
		manifest_free(&m);
		return EXIT_DEVICE;
	}
	if (!dv->file || strchr(dv->file, '/') || dv->cow_bytes == MANIFEST_ABSENT ||
	    !dv->crc32 || !dv->sha256_tree) {
		cli_error("%s/%s: incomplete entry in the manifest", quote_name(o->dest), MANIFEST);
		manifest_free(&m);
		return EXIT_FAILED;
	}
	if (m.kind && strcmp(m.kind, "full")) {
		cli_error("%s: a point of kind %s: export takes full points", quote_name(o->dest),
			  quote_name(m.kind));
		manifest_free(&m);
		return EXIT_FAILED;
	}
	memset(&e, 0, sizeof(e));
	e.dv = dv;
	e.outfd = STDOUT_FILENO;
	sums_init(&e.sums);
	/* The point's id, as the stream's header carries it (zeros before 0.3). */
	for (int i = 0; m.point && strlen(m.point) == 32 && i < 16; i++) {
		unsigned v;

		if (sscanf(m.point + 2 * i, "%2x", &v) == 1)
			e.h.point[i] = (uint8_t)v;
	}
	snprintf(path, sizeof(path), "%s/%s", o->dest, dv->file);
	ret = export_full(&m, dv, path, &e, msg, sizeof(msg));
	if (ret == 0)
		ret = xs_writer_finish(e.w, &bytes, NULL);
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
	} else if (strcmp(e.sums.crc_hex, dv->crc32) || strcmp(e.sums.sha_hex, dv->sha256_tree)) {
		/* Written already: the exit status tells the pipeline. */
		cli_error("%s: checksum mismatch with the manifest (crc32 %s, manifest %s): "
			  "the stream written is of a damaged backup", quote_name(path),
			  e.sums.crc_hex, quote_name(dv->crc32));
		st = EXIT_FAILED;
	} else if (!o->quiet) {
		fprintf(stderr, "%s: exported %s of %s: a %.1f MiB stream of %.1f MiB of data, "
			"checksums match the manifest\n", cli_prog, quote_name(dv->device ?
									dv->device : "?"),
			quote_name(o->dest), (double)bytes / 1048576.0, (double)e.data / 1048576.0);
	}
	manifest_free(&m);
	return st;
}
