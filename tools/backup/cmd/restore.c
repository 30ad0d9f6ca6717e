/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "cmd/restore.h"
#include "afile.h"
#include "hostlock.h"
#include "cli.h"
#include "input.h"
#include "format/manifest.h"
#include "chain/chainio.h"
#include "chain/reader.h"
#include "quote.h"
#include "samefile.h"
#include "format/sparse.h"
#include "format/stream.h"
#include "codec/unpack.h"
#include "format/xstream.h"
#include "ubdk_cow.h"
#include "codec/pack.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

/*
 * A point (POINTDIR, or a file its manifest lists) is restored through
 * the point reader (chain/reader.h).  What else a restore reads, a loose
 * file or stdin, is found from its first bytes: an extent stream (the
 * magic, raw or once decompressed), a chain of them, or a whole COW file
 * compressed (written before 0.3).
 */
enum { MODE_UNKNOWN, MODE_COW, MODE_STREAM };

struct restore_ctx {
	struct sparse_out out;
	int mode;
	struct xs_parser xp;
	bool xp_open;
	uint64_t file_size;
	/* Streams one after another (restore -): the chain they make. */
	bool multi;
	uint64_t started;               /* headers seen */
	struct xs_header first;         /* the first stream's header */
	uint8_t last[16];               /* the point the streams so far made */
	bool have_last;
	char msg[300];
};

/* A chain of streams that does not hold together: the stream and its byte named. */
__attribute__((format(printf, 2, 3)))
static int bad_stream(struct restore_ctx *r, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(r->msg, sizeof(r->msg), "stream %llu (byte %llu): ",
			 (unsigned long long)r->started,
			 (unsigned long long)(r->xp.pos - XS_HEADER_SIZE));

	va_start(ap, fmt);
	vsnprintf(r->msg + n, sizeof(r->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

/* A stream's header: the first must be full, each next one over the previous. */
static int stream_header(struct restore_ctx *r, const struct xs_header *h)
{
	char got[33], want[33];

	r->started++;
	xs_hex128(h->parent, got);
	if (r->started == 1) {
		if (h->flags & XS_FLAG_INCREMENTAL)
			return bad_stream(r, "an incremental stream (over point %s): it applies "
					  "over its parent point, not an empty file; give the "
					  "streams of its chain, the full one first", got);
		/* Every backup is of a COW file, never an empty one. */
		if (h->file_size == 0)
			return bad_stream(r, "builds a file of 0 bytes, not a COW file");
		r->first = *h;
		r->file_size = h->file_size;
		/* The size first: the file is sparse wherever no record writes. */
		return ftruncate(r->out.fd, (off_t)h->file_size) < 0 ? -errno : 0;
	}
	xs_hex128(r->last, want);
	if (!(h->flags & XS_FLAG_INCREMENTAL))
		return bad_stream(r, "a full stream after point %s: give one chain, its full "
				  "stream first", want);
	if (memcmp(h->parent, r->last, 16))
		return bad_stream(r, "applies over point %s, but the previous stream made point "
				  "%s: give a chain's streams in order", got, want);
	if (h->file_size != r->first.file_size || h->chunk_size != r->first.chunk_size ||
	    h->data_offset != r->first.data_offset)
		return bad_stream(r, "of another file than the first stream (size or chunk "
				  "grid differ)");
	return 0;
}

/* A record of a stream: written where it goes (summed for a 0.2.0 manifest). */
static int restore_record(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
			  const uint8_t *data)
{
	struct restore_ctx *r = ctx;
	int ret;

	if (off == XS_HEADER_CALL)
		return stream_header(r, h);
	if (off == XS_END_CALL) {
		memcpy(r->last, h->point, 16);
		r->have_last = true;
		return 0;
	}
	if (!data) {
		/* Over the new, empty file a ZERO record changes nothing. */
		return r->started == 1 ? 0 : chainio_punch_zero(r->out.fd, off, len);
	}
	ret = stream_write_all(r->out.fd, data, (size_t)len, (off_t)off);
	r->out.written += len;
	return ret;
}

static int restore_unit(void *ctx, const uint8_t *data, size_t len)
{
	struct restore_ctx *r = ctx;
	int ret;

	if (r->mode == MODE_UNKNOWN) {
		r->mode = data && len >= 8 && !memcmp(data, XS_MAGIC, 8) ? MODE_STREAM : MODE_COW;
		if (r->mode == MODE_STREAM) {
			ret = xs_parser_init(&r->xp, restore_record, r);
			if (ret < 0)
				return ret;
			r->xp.multi = r->multi;
			r->xp_open = true;
		}
	}
	if (r->mode == MODE_STREAM)
		return xs_parser_feed(&r->xp, data, len);
	return sparse_unit(&r->out, data, len);
}

/* A raw file or pipe: a stream, or refused (a plain COW needs no restore). */
static int restore_raw(int fd, struct restore_ctx *rc, uint64_t *total, char *msg, size_t msglen)
{
	uint8_t *buf = malloc(PACK_UNIT);
	size_t have = 0;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	*total = 0;
	for (;;) {
		ssize_t got;

		if (tool_interrupted) {
			ret = -EINTR;
			break;
		}
		got = read(fd, buf + have, PACK_UNIT - have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			ret = -errno;
			break;
		}
		have += (size_t)got;
		*total += (uint64_t)got;
		/* The magic decides; a pipe may give it in pieces. */
		if (rc->mode == MODE_UNKNOWN && have < 8 && got > 0)
			continue;
		if (rc->mode == MODE_UNKNOWN && (have < 8 || memcmp(buf, XS_MAGIC, 8))) {
			snprintf(msg, msglen, "not an extent stream, LZ4 or gzip file (an "
				 "uncompressed backup is a COW file already)");
			ret = -EBADMSG;
			break;
		}
		if (have > 0)
			ret = restore_unit(rc, buf, have);
		have = 0;
		if (ret < 0 || got == 0)
			break;
	}
	free(buf);
	return ret;
}

/*
 * What the streams built must be a COW file, as every backup is: its
 * header decodes, and the streams' chunk grid started at its data offset.
 * 0, or -EBADMSG with the reason in msg.
 */
static int built_cow(const struct restore_ctx *rc, int fd, char *msg, size_t msglen)
{
	struct ubdk_header hdr;
	struct ubdk_geometry geo;
	struct ubdk_err err = { 0 };

	if (ubdk_header_read_fd(fd, "the restored file", &hdr, &geo, &err) < 0) {
		snprintf(msg, msglen, "the stream builds a file that is not a COW file (%.200s)",
			 err.msg);
		return -EBADMSG;
	}
	if (geo.data_offset != rc->first.data_offset) {
		snprintf(msg, msglen, "the stream builds a COW file whose data starts at byte "
			 "%llu, but its chunk grid at %llu: not a backup of that COW",
			 (unsigned long long)geo.data_offset,
			 (unsigned long long)rc->first.data_offset);
		return -EBADMSG;
	}
	return 0;
}

/*
 * OUTPUT may be replaced: -f replaces a file, never a directory or a
 * device node, FIFO, socket; and a restore never writes over what it
 * reads, the input file (NULL: stdin or a directory) or a file of the
 * points r reads (NULL: none).  0 or EXIT_DEST.
 */
static int output_check(const struct options *o, const char *out, const char *input,
			const struct point_reader *r)
{
	const char *point;
	struct stat st;

	if (lstat(out, &st) != 0)
		return 0;
	if (!o->force || !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))) {
		cli_error("%s: %s", quote_name(out),
			  S_ISDIR(st.st_mode) ? "is a directory; name the "
			  "output file" : !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) ?
			  "not a regular file; not replacing it" :
			  "already exists; use -f to replace it");
		return EXIT_DEST;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	if (input && same_file(input, &st, true)) {
		cli_error("%s: is the input; name another OUTPUT", quote_name(out));
		return EXIT_DEST;
	}
	point = r ? point_reader_holds(r, &st) : NULL;
	if (point && r->chain) {
		cli_error("%s: a file of point %s of the chain being restored; name another "
			  "OUTPUT", quote_name(out), quote_name(point));
		return EXIT_DEST;
	}
	if (point) {
		cli_error("%s: a file of the backup being restored; name another OUTPUT",
			  quote_name(out));
		return EXIT_DEST;
	}
	return 0;
}

/*
 * OUTPUT as an unnamed file in its directory (*dirfd), published once
 * checked.  0, or an exit status with nothing left open.
 */
static int output_open(const struct options *o, const char *out, struct afile *af, int *dirfd)
{
	char dir[PATH_MAX];
	int ret;

	afile_dir_of(out, dir, sizeof(dir));
	*dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* Readable: a new backup's restore reads its chunks back for the table. */
	ret = *dirfd < 0 ? -errno : afile_open(af, *dirfd, out, 0644, true);
	if (ret < 0) {
		cli_error("%s: cannot create: %s", quote_name(out), strerror(-ret));
		ret = EXIT_DEST;
	} else {
		/* Held until published: a guest or server on it would lose writes. */
		ret = o->force ? hostlock_replace(af, out) : 0;
		if (ret < 0)
			ret = ret == -EAGAIN ? EXIT_LOCKED : EXIT_FAILED;
	}
	if (ret) {
		afile_discard(af);
		if (*dirfd >= 0)
			close(*dirfd);
		*dirfd = -1;
	}
	return ret;
}

/* OUTPUT: as given, or the input without its suffix; 0 or an exit status. */
static int output_name(const struct options *o, int fmt, char *out, size_t outlen)
{
	const char *suffix = pack_suffix(fmt);
	size_t l = strlen(o->input), sl = strlen(suffix);

	if (o->output) {
		snprintf(out, outlen, "%s", o->output);
	} else if (!strcmp(o->input, "-")) {
		cli_error("restore -: name the OUTPUT");
		return EXIT_USAGE;
	} else if (l > sl + 5 && !strcmp(o->input + l - sl, suffix) &&
		   !strncmp(o->input + l - sl - 5, ".ubdx", 5)) {
		/* ubd0.ubdx.lz4 holds ubd0.cow. */
		snprintf(out, outlen, "%.*s.cow", (int)(l - sl - 5), o->input);
	} else if (l <= sl || strcmp(o->input + l - sl, suffix)) {
		cli_error("%s: no %s suffix to strip: name the OUTPUT", quote_name(o->input),
			  suffix);
		return EXIT_USAGE;
	} else {
		snprintf(out, outlen, "%.*s", (int)(l - sl), o->input);
	}
	return 0;
}

/* Exit status of a failed apply or publish (-errno). */
static int failed_status(int ret)
{
	return ret == -EINTR ? EXIT_INTERRUPTED : ret == -ENOSPC || ret == -EDQUOT ||
	       ret == -EFBIG || ret == -EEXIST ? EXIT_DEST : EXIT_FAILED;
}

/* What restore_point says it did. */
static void restored(const struct options *o, const struct point_reader *r,
		     const struct manifest_device *dv, const char *out, uint64_t written,
		     double t0)
{
	const struct point *p = point_reader_point(r);
	bool stream = dv->format && !strcmp(dv->format, "ubdx");
	char what[400];

	if (o->json)
		manifest_json_print(json_pack("{s:o, s:o, s:s?, s:i, s:s, s:s, s:I, s:I, s:s?, "
				     "s:s?, s:s?, s:i, s:b, s:f}", "input",
				     quote_json_string(o->input), "output", quote_json_string(out),
				     "point", p->m.point, "points", r->n,
				     "format", stream ? "ubdx" : "cow", "compression", dv->compression,
				     "bytes", (json_int_t)dv->cow_bytes, "written", (json_int_t)written,
				     "stream_xxh128", stream ? dv->stream_xxh128 : NULL,
				     "crc32", dv->chunks ? NULL : dv->crc32,
				     "sha256_tree", dv->chunks ? NULL : dv->sha256_tree,
				     "streams", stream ? r->n : 0, "checked", 1,
				     "seconds", manifest_json_round(tool_now() - t0, 1000)));
	if (o->quiet)
		return;
	if (!stream)
		snprintf(what, sizeof(what), "its COW file %s", dv->chunks ? "copied" : "read");
	else if (r->n == 1)
		snprintf(what, sizeof(what), "1 stream applied (a full point)");
	else
		snprintf(what, sizeof(what), "%d streams applied (full point %s and %d "
			 "incremental%s)", r->n, r->pts[0].name, r->n - 1, r->n == 2 ? "" : "s");
	fprintf(stderr, "%s: restored %s to %s (%.1f MiB, %.1f MiB of data): %s, %s\n",
		cli_prog, quote_name(o->input), quote_name(out), (double)dv->cow_bytes / 1048576.0,
		(double)written / 1048576.0, what, dv->chunks ? "chunk table matches the "
		"manifest's" : "checksums match the manifest");
}

/*
 * A point, as the point reader gives it: POINTDIR (file NULL: the device
 * -d names, or the only one), or a file of a point (a plain backup's, a
 * chain point's).  The device at that point goes to a new file, checked
 * against the point's chunk table (0.2.0: its checksums) before it takes
 * OUTPUT's name.  NOT_LISTED when the point does not list file (restored
 * as a loose stream), else 0 or an exit status.
 */
#define NOT_LISTED (-1)
static int restore_point(const struct options *o, const char *dir, const char *file)
{
	const struct manifest_device *dv = NULL;
	const struct point *p;
	struct point_reader r;
	struct afile af = { .fd = -1 };
	char out[PATH_MAX], msg[600];
	uint64_t written = 0;
	int st = EXIT_FAILED, dirfd = -1, ret;
	double t0 = tool_now();

	if (!point_reader_open(&r, dir, msg, sizeof(msg))) {
		if (msg[0])
			cli_error("%s: cannot restore: %s", quote_name(o->input), msg);
		goto out;
	}
	p = point_reader_point(&r);
	if (!file) {
		dv = manifest_pick_device(&p->m, dir, o->ndevices ? o->devices[0] : NULL);
		if (!dv) {
			st = EXIT_DEVICE;
			goto out;
		}
	}
	for (size_t i = 0; file && i < p->m.ndev; i++)
		if (p->m.dev[i].file && quote_json_matches(file, p->m.dev[i].file))
			dv = &p->m.dev[i];
	if (!dv) {
		st = NOT_LISTED;
		goto out;
	}
	if (point_entry_problem(dv, msg, sizeof(msg))) {
		cli_error("%s: %s", quote_name(o->input), msg);
		goto out;
	}
	if (o->output) {
		snprintf(out, sizeof(out), "%s", o->output);
	} else if (r.chain) {
		cli_error("%s: name the OUTPUT (a chain point's stream has no suffix to strip)",
			  quote_name(o->input));
		st = EXIT_USAGE;
		goto out;
	} else {
		st = output_name(o, pack_parse(dv->compression), out, sizeof(out));
		if (st)
			goto out;
		st = EXIT_FAILED;
	}
	ret = output_check(o, out, file ? o->input : NULL, &r);
	if (ret == 0)
		ret = output_open(o, out, &af, &dirfd);
	if (ret) {
		st = ret;
		goto out;
	}
	ret = point_reader_apply(&r, dv, af.fd, &written, msg, sizeof(msg));
	if (ret == 0 && fsync(af.fd) < 0)
		ret = -errno;
	if (ret < 0 && ret != -EINTR)
		cli_error("%s: cannot restore: %s", quote_name(o->input), msg[0] ? msg :
			  strerror(-ret));
	if (ret == 0) {
		ret = afile_publish(&af, out, o->force);
		if (ret < 0)
			cli_error("%s: %s", quote_name(out), ret == -EEXIST ? "already exists; "
				  "use -f to replace it" : strerror(-ret));
	}
	if (ret < 0) {
		st = failed_status(ret);
		goto out;
	}
	fsync(dirfd);
	restored(o, &r, dv, out, written, t0);
	st = 0;
out:
	afile_discard(&af);
	if (dirfd >= 0)
		close(dirfd);
	point_reader_close(&r);
	return st;
}

int restore_run(const struct options *o)
{
	char out[PATH_MAX], dir[PATH_MAX], mpath[PATH_MAX + 32], msg[300] = "", what[200] = "";
	const char *base = strrchr(o->input, '/');
	bool from_stdin = !strcmp(o->input, "-");
	struct restore_ctx rc;
	struct afile af = { .fd = -1 };
	struct stat st;
	uint64_t total = 0;
	int fd, fmt, ret, dirfd;
	char digest_hex[33] = "", point_hex[33] = "";
	double t0 = tool_now();

	base = base ? base + 1 : o->input;
	if (!from_stdin && stat(o->input, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (!o->output) {
			cli_error("restore %s: a point directory; name the OUTPUT file",
				  quote_name(o->input));
			return EXIT_USAGE;
		}
		return restore_point(o, o->input, NULL);
	}
	if (o->ndevices) {
		cli_error("restore: -d chooses a device of a point directory, not of %s",
			  quote_name(o->input));
		return EXIT_USAGE;
	}
	/* A file of a point (its manifest lists it): restored as the point. */
	afile_dir_of(o->input, dir, sizeof(dir));
	snprintf(mpath, sizeof(mpath), "%s/%s", dir, MANIFEST);
	if (!from_stdin && lstat(mpath, &st) == 0) {
		ret = restore_point(o, dir, base);
		if (ret != NOT_LISTED)
			return ret;
	}
	/* Else a loose file or a pipe: a stream (or a chain of them) or a compressed COW. */
	fd = from_stdin ? 0 : input_open(o->input, &st);
	if (fd < 0) {
		cli_error("%s: %s%s", quote_name(o->input),
			  fd == INPUT_E_TYPE || fd == -EISDIR ? "" :
			  "cannot open: ", input_strerror(fd));
		return EXIT_FAILED;
	}
	/* A pipe is raw: its bytes cannot be looked at twice. */
	fmt = from_stdin ? -1 : pack_detect(fd);
	ret = output_name(o, fmt < 0 ? PACK_NONE : fmt, out, sizeof(out));
	if (ret == 0)
		ret = output_check(o, out, from_stdin ? NULL : o->input, NULL);
	if (ret == 0)
		ret = output_open(o, out, &af, &dirfd);
	if (ret) {
		if (!from_stdin)
			close(fd);
		return ret;
	}
	memset(&rc, 0, sizeof(rc));
	rc.out.fd = af.fd;
	/* A pipe or loose file may hold a chain of streams. */
	rc.multi = true;
	if (fmt < 0)
		ret = restore_raw(fd, &rc, &total, msg, sizeof(msg));
	else
		ret = pack_decompress(fd, fmt, restore_unit, &rc, &total, &tool_interrupted, msg,
				      sizeof(msg));
	if (!from_stdin)
		close(fd);
	if (rc.mode == MODE_STREAM) {
		/* Ours or the parser's message: the decompressor only passed the error on. */
		if (ret == -EBADMSG && rc.msg[0])
			snprintf(msg, sizeof(msg), "%s", rc.msg);
		else if (ret == -EBADMSG && rc.xp.err == -EBADMSG && rc.xp.msg[0])
			snprintf(msg, sizeof(msg), "%s", rc.xp.msg);
		if (ret == 0)
			ret = xs_parser_end(&rc.xp, msg, sizeof(msg));
		xs_parser_free(&rc.xp);
		if (ret == 0)
			ret = built_cow(&rc, af.fd, msg, sizeof(msg));
		if (ret == 0) {
			xs_hex128(rc.xp.digest, digest_hex);
			xs_hex128(rc.xp.h.point, point_hex);
		}
		total = rc.file_size;
		rc.out.off = rc.file_size;
	} else if (ret == 0 && rc.mode == MODE_UNKNOWN && fmt < 0) {
		snprintf(msg, sizeof(msg), "empty");
		ret = -EBADMSG;
	}
	if (ret == 0)
		ret = sparse_finish(&rc.out);
	if (ret == 0 && fsync(af.fd) < 0)
		ret = -errno;
	if (ret == -EBADMSG)
		cli_error("%s: %s", from_stdin ? "stdin" : quote_name(o->input), msg);
	else if (ret < 0 && ret != -EINTR)
		cli_error("%s: %s", quote_name(out), strerror(-ret));
	if (ret == 0) {
		ret = afile_publish(&af, out, o->force);
		if (ret == -EEXIST)
			cli_error("%s: already exists; use -f to replace it", quote_name(out));
	}
	if (ret == 0)
		fsync(dirfd);
	afile_discard(&af);
	close(dirfd);
	if (ret < 0)
		return ret == -EBADMSG ? EXIT_FAILED : failed_status(ret);
	if (rc.mode == MODE_STREAM) {
		if (rc.xp.streams > 1)
			snprintf(what, sizeof(what), "%llu streams of one chain applied (a full "
				 "point and %llu incrementals), up to point %s; their digests checked",
				 (unsigned long long)rc.xp.streams,
				 (unsigned long long)rc.xp.streams - 1, point_hex);
		else
			snprintf(what, sizeof(what), "point %s, stream digest checked", point_hex);
	} else {
		snprintf(what, sizeof(what), "a COW file, not checked (no manifest lists it)");
	}
	if (o->json)
		manifest_json_print(json_pack("{s:o, s:o, s:s?, s:i, s:s, s:s, s:I, s:I, s:s?, "
				     "s:s?, s:s?, s:I, s:b, s:f}", "input", quote_json_string(o->input),
				     "output", quote_json_string(out),
				     "point", point_hex[0] ? point_hex : NULL, "points",
				     rc.mode == MODE_STREAM ? (int)rc.xp.streams : 0,
				     "format", rc.mode == MODE_STREAM ? "ubdx" : "cow",
				     "compression", pack_name(fmt < 0 ? PACK_NONE : fmt),
				     "bytes", (json_int_t)total, "written", (json_int_t)rc.out.written,
				     "stream_xxh128", digest_hex[0] ? digest_hex : NULL,
				     "crc32", NULL, "sha256_tree", NULL,
				     "streams", (json_int_t)(rc.mode == MODE_STREAM ? rc.xp.streams : 0),
				     "checked", 0, "seconds", manifest_json_round(tool_now() - t0, 1000)));
	if (!o->quiet)
		fprintf(stderr, "%s: restored %s to %s (%.1f MiB, %.1f MiB of data): %s\n",
			cli_prog, from_stdin ? "stdin" : quote_name(o->input), quote_name(out),
			(double)total / 1048576.0, (double)rc.out.written / 1048576.0, what);
	return 0;
}
