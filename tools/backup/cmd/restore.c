/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "cmd/restore.h"
#include "afile.h"
#include "hostlock.h"
#include "cli.h"
#include "extent.h"
#include "input.h"
#include "format/manifest.h"
#include "chain/chainio.h"
#include "chain/point.h"
#include "quote.h"
#include "format/sparse.h"
#include "format/stream.h"
#include "format/sums.h"
#include "codec/unpack.h"
#include "format/xstream.h"
#include "ubdk_cow.h"
#include "codec/pack.h"
#include "codec/lz4_splice.h"

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
 * What a restore reads is found from its first bytes: an extent stream
 * (the magic, raw or once decompressed) or a whole COW file compressed
 * (written before 0.3).
 */
enum { MODE_UNKNOWN, MODE_COW, MODE_STREAM };

struct restore_ctx {
	struct sparse_out out;
	struct sums sums;
	bool want_sums;                 /* a manifest of 0.2.0: crc32 and sha256_tree */
	int mode;
	struct xs_parser xp;
	bool xp_open;
	struct sums_at sa;
	bool sa_open;
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
	int ret;

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
		if (r->want_sums) {
			ret = sums_at_init(&r->sa, &r->sums, h->file_size);
			r->sa_open = ret == 0;
			if (ret < 0)
				return ret;
		}
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
	if (r->sa_open)
		sums_at_data(&r->sa, off, data, (size_t)len);
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
	if (r->want_sums)
		sums_unit(&r->sums, data, len);
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
 * An uncompressed backup's COW file, copied as it is: its data extents
 * only, so the copy is as sparse as the backup (the table check follows).
 */
static int restore_copy(int fd, const struct stat *st, struct restore_ctx *rc, uint64_t *total)
{
	struct copy_ctx cc = { 0 };
	struct extent_iter it;
	enum copy_side side;
	uint64_t off, len;
	int ret;

	*total = (uint64_t)st->st_size;
	if (ftruncate(rc->out.fd, st->st_size) < 0)
		return -errno;
	extent_iter_init(&it, fd, 0, (uint64_t)st->st_size);
	while ((ret = extent_next(&it, &off, &len)) > 0) {
		if (tool_interrupted) {
			ret = -EINTR;
			break;
		}
		ret = copy_range(&cc, fd, off, rc->out.fd, off, len, &side);
		if (ret < 0)
			break;
		rc->out.written += len;
	}
	copy_ctx_free(&cc);
	rc->out.off = (uint64_t)st->st_size;
	return ret;
}

/*
 * What the manifest next to FILE says of it: *dv stays NULL without a
 * manifest, or one that does not list FILE.  False after a message: a
 * manifest that cannot be read must not pass as checked.
 */
static bool manifest_entry(const char *input, const char *base, struct manifest *m,
			   const struct manifest_device **dv)
{
	char dir[PATH_MAX], mpath[PATH_MAX + 32];
	struct stat st;

	*dv = NULL;
	if (!strcmp(input, "-"))
		return true;
	afile_dir_of(input, dir, sizeof(dir));
	snprintf(mpath, sizeof(mpath), "%s/%s", dir, MANIFEST);
	if (lstat(mpath, &st) != 0)
		return true;
	if (!manifest_read(dir, m))
		return false;
	for (size_t i = 0; i < m->ndev; i++) {
		if (!m->dev[i].file || !quote_json_matches(base, m->dev[i].file))
			continue;
		*dv = &m->dev[i];
		/* 0.2.0: crc32 and sha256_tree; since: the chunk table. */
		if (!(*dv)->chunks && (!(*dv)->crc32 || !(*dv)->sha256_tree)) {
			cli_error("%s: the entry of %s has no checksums", quote_name(mpath),
				  quote_name(base));
			return false;
		}
	}
	return true;
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

/* -f replaces a file, never a directory or a device node, FIFO, socket.  0 or EXIT_DEST. */
static int output_check(const struct options *o, const char *out)
{
	struct stat st;

	if (lstat(out, &st) == 0 && (!o->force || !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))) {
		cli_error("%s: %s", quote_name(out),
			  S_ISDIR(st.st_mode) ? "is a directory; name the "
			  "output file" : !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) ?
			  "not a regular file; not replacing it" :
			  "already exists; use -f to replace it");
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
	return output_check(o, out);
}

/*
 * The restored file against the point's chunk table: the chunks holding
 * data are read back (SEEK_DATA), so this follows the data too.  0, or
 * -EBADMSG after a message.
 */
static int check_table(const char *input, const struct manifest *m,
		       const struct manifest_device *dv, int fd, const char *out)
{
	char dir[PATH_MAX], msg[400];
	struct chunk_table want, got;
	uint64_t rd, diff;
	int ret;

	afile_dir_of(input, dir, sizeof(dir));
	if (!point_table(dir, m, dv, &want, msg, sizeof(msg))) {
		cli_error("%s: %s", quote_name(dir), msg);
		return -EBADMSG;
	}
	ret = table_of_fd(fd, &want.g, want.point, &got, &rd);
	if (ret < 0) {
		cli_error("%s: reading back: %s", quote_name(out), strerror(-ret));
		table_free(&want);
		return ret;
	}
	ret = table_same(&want, &got, &diff) ? 0 : -EBADMSG;
	if (ret < 0)
		cli_error("%s: the restored file differs from %s/%s at byte %llu",
			  quote_name(input), quote_name(dir), dv->chunks, (unsigned long long)diff);
	table_free(&want);
	table_free(&got);
	return ret;
}

/*
 * restore POINTDIR OUTPUT: the point's stream or COW file of the device
 * chosen as export chooses it (-d, or the only one), restored as if named.
 */
static int restore_point_dir(const struct options *o)
{
	const struct manifest_device *dv;
	struct options file_o = *o;
	struct manifest m;
	char path[PATH_MAX];

	if (!o->output) {
		cli_error("restore %s: a point directory; name the OUTPUT file", quote_name(o->input));
		return EXIT_USAGE;
	}
	if (!manifest_read(o->input, &m))
		return EXIT_FAILED;
	dv = manifest_pick_device(&m, o->input, o->ndevices ? o->devices[0] : NULL);
	if (!dv) {
		manifest_free(&m);
		return EXIT_DEVICE;
	}
	if (!dv->file || !*dv->file || strchr(dv->file, '/')) {
		cli_error("%s/%s: incomplete entry in the manifest", quote_name(o->input), MANIFEST);
		manifest_free(&m);
		return EXIT_FAILED;
	}
	snprintf(path, sizeof(path), "%s/%s", o->input, dv->file);
	manifest_free(&m);
	file_o.input = path;
	file_o.ndevices = 0;
	return restore_run(&file_o);
}

/*
 * --- a chain point ---------------------------------------------------------
 * The streams from its full point down to it, applied in order to a new
 * file, which must then hash to the point's chunk table.
 */

static int chain_restore(const struct options *o)
{
	char chaindir[PATH_MAX], name[NAME_MAX + 1], pdir[PATH_MAX], base[NAME_MAX + 1];
	char out[PATH_MAX], msg[600] = "", tpath[PATH_MAX + 80];
	static struct point pts[MAX_CHAIN];
	const struct manifest_device *dev = NULL;
	struct chunk_table want, got;
	struct afile af = { .fd = -1 };
	struct stat st;
	uint64_t rd, diff;
	int n = 0, st_exit = EXIT_FAILED, dirfd = -1, ret = 0;
	double t0 = tool_now();

	chainio_split_point_path(o->input, pdir, sizeof(pdir), base, sizeof(base));
	chainio_split_point_path(pdir, chaindir, sizeof(chaindir), name, sizeof(name));
	if (!chain_path(chaindir, name, pts, MAX_CHAIN, &n, msg, sizeof(msg))) {
		cli_error("%s: cannot restore: %s", quote_name(o->input), msg);
		return EXIT_FAILED;
	}
	for (size_t i = 0; i < pts[n - 1].m.ndev; i++)
		if (quote_json_matches(base, pts[n - 1].m.dev[i].file))
			dev = &pts[n - 1].m.dev[i];
	if (!dev) {
		cli_error("%s: not listed in %s/%s", quote_name(o->input), quote_name(pdir), MANIFEST);
		goto out;
	}
	if (o->output) {
		snprintf(out, sizeof(out), "%s", o->output);
	} else {
		cli_error("%s: name the OUTPUT (a chain point's stream has no suffix to strip)",
			  quote_name(o->input));
		st_exit = EXIT_USAGE;
		goto out;
	}
	ret = output_check(o, out);
	if (ret) {
		st_exit = ret;
		goto out;
	}
	for (int k = 0; k < n && lstat(out, &st) == 0; k++) {
		if (manifest_lists_file(&pts[k].m, pts[k].dir, &st)) {
			cli_error("%s: a file of point %s of the chain being restored; name "
				  "another OUTPUT", quote_name(out), quote_name(pts[k].name));
			st_exit = EXIT_DEST;
			goto out;
		}
	}
	ret = output_open(o, out, &af, &dirfd);
	if (ret) {
		st_exit = ret;
		goto out;
	}
	ret = chain_apply(pts, n, dev->device, af.fd, msg, sizeof(msg));
	if (ret == -EINTR) {
		st_exit = EXIT_INTERRUPTED;
		goto out;
	}
	if (ret < 0) {
		cli_error("%s: cannot restore: %s", quote_name(o->input), msg[0] ? msg :
			  strerror(-ret));
		st_exit = ret == -ENOSPC || ret == -EDQUOT || ret == -EFBIG ? EXIT_DEST :
			  EXIT_FAILED;
		goto out;
	}
	/* The result, chunk by chunk, against the point's table. */
	snprintf(tpath, sizeof(tpath), "%s/%s", pts[n - 1].dir, dev->chunks);
	if (!table_read(tpath, &want, msg, sizeof(msg))) {
		cli_error("%s: %s", quote_name(tpath), msg);
		goto out;
	}
	if (!chainio_hex_is(want.end, dev->chunks_xxh128)) {
		cli_error("%s: digest differs from its manifest's chunks_xxh128", quote_name(tpath));
		table_free(&want);
		goto out;
	}
	ret = table_of_fd(af.fd, &want.g, want.point, &got, &rd);
	if (ret < 0) {
		cli_error("%s: reading back: %s", quote_name(out), strerror(-ret));
		table_free(&want);
		goto out;
	}
	if (!table_same(&want, &got, &diff)) {
		cli_error("%s: the restored file differs from the point's chunk table at byte "
			  "%llu", quote_name(out), (unsigned long long)diff);
		table_free(&want);
		table_free(&got);
		goto out;
	}
	table_free(&want);
	table_free(&got);
	ret = fsync(af.fd) < 0 ? -errno : afile_publish(&af, out, o->force);
	if (ret < 0) {
		cli_error("%s: %s", quote_name(out), ret == -EEXIST ? "already exists; use -f to "
			  "replace it" : strerror(-ret));
		st_exit = EXIT_DEST;
		goto out;
	}
	fsync(dirfd);
	if (o->json)
		manifest_json_print(json_pack("{s:o, s:o, s:s, s:i, s:b, s:f}", "input",
				     quote_json_string(o->input), "output", quote_json_string(out),
				     "point", pts[n - 1].m.point, "streams", n, "checked", 1,
				     "seconds", manifest_json_round(tool_now() - t0, 1000)));
	if (!o->quiet)
		fprintf(stderr, "%s: restored %s to %s: %d stream%s applied (%s%s), chunk table "
			"matches\n", cli_prog, quote_name(o->input), quote_name(out), n,
			n == 1 ? "" : "s", n == 1 ? "a full point" : "full point ",
			n == 1 ? "" : pts[0].name);
	st_exit = 0;
out:
	afile_discard(&af);
	if (dirfd >= 0)
		close(dirfd);
	for (int k = 0; k < n; k++)
		point_free(&pts[k]);
	return st_exit;
}

int restore_run(const struct options *o)
{
	char out[PATH_MAX], dir[PATH_MAX], msg[300] = "", what[200] = "";
	const char *base = strrchr(o->input, '/'), *checked = NULL;
	const struct manifest_device *dv = NULL;
	bool from_stdin = !strcmp(o->input, "-");
	struct restore_ctx rc;
	struct afile af = { .fd = -1 };
	struct manifest manifest = { 0 };
	struct stat st, ost;
	uint64_t total = 0;
	int fd, fmt, ret, dirfd;
	char digest_hex[33] = "", point_hex[33] = "";
	double t0 = tool_now();

	base = base ? base + 1 : o->input;
	if (!from_stdin && stat(o->input, &st) == 0 && S_ISDIR(st.st_mode))
		return restore_point_dir(o);
	if (o->ndevices) {
		cli_error("restore: -d chooses a device of a point directory, not of %s",
			  quote_name(o->input));
		return EXIT_USAGE;
	}
	/* A stream of a chain point: the streams from its full point down. */
	afile_dir_of(o->input, dir, sizeof(dir));
	if (!from_stdin && chain_is_dir(dir))
		return chain_restore(o);
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
	if (ret) {
		if (!from_stdin)
			close(fd);
		return ret;
	}
	if (!manifest_entry(o->input, base, &manifest, &dv)) {
		close(fd);
		manifest_free(&manifest);
		return EXIT_FAILED;
	}
	/* OUTPUT must not be what is read: the input, or its backup's files. */
	if (lstat(out, &ost) == 0 && S_ISREG(ost.st_mode)) {
		afile_dir_of(o->input, dir, sizeof(dir));
		if ((!from_stdin && ost.st_dev == st.st_dev && ost.st_ino == st.st_ino) ||
		    (dv && manifest_lists_file(&manifest, dir, &ost))) {
			cli_error("%s: %s; name another OUTPUT", quote_name(out),
				  !from_stdin && ost.st_ino == st.st_ino ? "is the input" :
				  "a file of the backup being restored");
			if (!from_stdin)
				close(fd);
			manifest_free(&manifest);
			return EXIT_DEST;
		}
	}
	ret = output_open(o, out, &af, &dirfd);
	if (ret) {
		if (!from_stdin)
			close(fd);
		manifest_free(&manifest);
		return ret;
	}
	memset(&rc, 0, sizeof(rc));
	rc.out.fd = af.fd;
	rc.want_sums = dv && !dv->chunks;
	/* A backup's file holds one stream; a pipe or loose file, a chain of them. */
	rc.multi = !dv;
	sums_init(&rc.sums);
	if (fmt < 0 && dv && dv->chunks && (!dv->format || !strcmp(dv->format, "cow"))) {
		rc.mode = MODE_COW;
		ret = restore_copy(fd, &st, &rc, &total);
	} else if (fmt < 0) {
		ret = restore_raw(fd, &rc, &total, msg, sizeof(msg));
	} else {
		ret = pack_decompress(fd, fmt, restore_unit, &rc, &total, &tool_interrupted, msg,
				      sizeof(msg));
	}
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
		if (rc.sa_open)
			sums_at_finish(&rc.sa);
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
	sums_final(&rc.sums);
	afile_dir_of(o->input, dir, sizeof(dir));
	if (ret == -EBADMSG) {
		cli_error("%s: %s", from_stdin ? "stdin" : quote_name(o->input), msg);
	} else if (ret < 0 && ret != -EINTR) {
		cli_error("%s: %s", quote_name(out), strerror(-ret));
	} else if (ret == 0 && dv && dv->stream_xxh128 && strcmp(dv->stream_xxh128, digest_hex)) {
		cli_error("%s: stream digest mismatch with %s/%s (%s, manifest %s)",
			  quote_name(o->input), quote_name(dir), MANIFEST,
			  digest_hex[0] ? digest_hex : "none: not a stream",
			  quote_name(dv->stream_xxh128));
		ret = -EBADMSG;
	} else if (ret == 0 && dv && dv->chunks) {
		ret = check_table(o->input, &manifest, dv, af.fd, out);
		checked = "chunk table matches the manifest's";
	} else if (ret == 0 && dv) {
		if (strcmp(dv->crc32, rc.sums.crc_hex) || strcmp(dv->sha256_tree, rc.sums.sha_hex)) {
			cli_error("%s: checksum mismatch with %s/%s (crc32 %s, manifest %s)",
				  quote_name(o->input), quote_name(dir), MANIFEST, rc.sums.crc_hex,
				  quote_name(dv->crc32));
			ret = -EBADMSG;
		}
		checked = "checksums match the manifest";
	}
	if (ret == 0)
		ret = afile_publish(&af, out, o->force);
	if (ret == 0)
		fsync(dirfd);
	afile_discard(&af);
	close(dirfd);
	if (ret < 0) {
		manifest_free(&manifest);
		if (ret == -EINTR)
			return EXIT_INTERRUPTED;
		if (ret == -EBADMSG)
			return EXIT_FAILED;
		if (ret == -EEXIST)
			cli_error("%s: already exists; use -f to replace it", quote_name(out));
		return ret == -ENOSPC || ret == -EDQUOT || ret == -EFBIG || ret == -EEXIST ?
		       EXIT_DEST : EXIT_FAILED;
	}
	if (rc.mode == MODE_STREAM && !checked) {
		if (rc.xp.streams > 1)
			snprintf(what, sizeof(what), "%llu streams of one chain applied (a full "
				 "point and %llu incrementals), up to point %s; their digests checked",
				 (unsigned long long)rc.xp.streams,
				 (unsigned long long)rc.xp.streams - 1, point_hex);
		else
			snprintf(what, sizeof(what), "point %s, stream digest checked", point_hex);
	}
	if (o->json)
		manifest_json_print(json_pack("{s:o, s:o, s:s, s:s, s:I, s:I, s:s?, s:s?, s:s?, s:s?, s:I, "
				     "s:b, s:f}", "input", quote_json_string(o->input),
				     "output", quote_json_string(out),
				     "format", rc.mode == MODE_STREAM ? "ubdx" : "cow",
				     "compression", pack_name(fmt < 0 ? PACK_NONE : fmt),
				     "bytes", (json_int_t)total, "written", (json_int_t)rc.out.written,
				     "crc32", rc.want_sums ? rc.sums.crc_hex : NULL,
				     "sha256_tree", rc.want_sums ? rc.sums.sha_hex : NULL,
				     "stream_xxh128", digest_hex[0] ? digest_hex : NULL,
				     "point", point_hex[0] ? point_hex : NULL,
				     "streams", (json_int_t)(rc.mode == MODE_STREAM ?
							     (rc.multi ? rc.xp.streams : 1) : 0),
				     "checked", checked != NULL, "seconds",
				     manifest_json_round(tool_now() - t0, 1000)));
	if (!o->quiet)
		fprintf(stderr, "%s: restored %s to %s (%.1f MiB, %.1f MiB of data), %s\n",
			cli_prog, from_stdin ? "stdin" : quote_name(o->input), quote_name(out),
			(double)total / 1048576.0, (double)rc.out.written / 1048576.0,
			checked ? checked : what);
	manifest_free(&manifest);
	return 0;
}
