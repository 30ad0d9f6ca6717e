/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "restore.h"
#include "afile.h"
#include "cli.h"
#include "input.h"
#include "manifest.h"
#include "point.h"
#include "quote.h"
#include "sparse.h"
#include "stream.h"
#include "sums.h"
#include "unpack.h"
#include "xstream.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * What a restore reads is found from its first bytes: an extent stream
 * (the magic, raw or once decompressed) or a whole COW file compressed
 * (written before 0.3).
 */
enum { MODE_UNKNOWN, MODE_COW, MODE_STREAM };

struct restore_ctx {
	struct sparse_out out;
	struct sums sums;
	int mode;
	struct xs_parser xp;
	bool xp_open;
	struct sums_at sa;
	bool sa_open;
	uint64_t file_size;
};

/* A record of a stream: written where it goes, summed as the file's bytes. */
static int restore_record(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
			  const uint8_t *data)
{
	struct restore_ctx *r = ctx;
	int ret;

	if (off == XS_HEADER_CALL) {
		/* Its base is the parent point's file, not an empty one. */
		if (h->flags & XS_FLAG_INCREMENTAL)
			return -ENOTSUP;
		r->file_size = h->file_size;
		ret = sums_at_init(&r->sa, &r->sums, h->file_size);
		r->sa_open = ret == 0;
		/* The size first: the file is sparse wherever no record writes. */
		return ret ? ret : ftruncate(r->out.fd, (off_t)h->file_size) < 0 ? -errno : 0;
	}
	/* A ZERO record over the new, empty file: zeros there already. */
	if (!data)
		return 0;
	sums_at_data(&r->sa, off, data, (size_t)len);
	ret = write_all(r->out.fd, data, (size_t)len, (off_t)off);
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
			r->xp_open = true;
		}
	}
	if (r->mode == MODE_STREAM)
		return xs_parser_feed(&r->xp, data, len);
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

		if (interrupted) {
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
 * The checksums the manifest next to FILE has for it: *crc and *sha stay
 * NULL without a manifest, or one that does not list FILE.  False after
 * a message: a manifest that cannot be read must not pass as checked.
 */
static bool expected_sums(const char *input, const char *base, struct manifest *m,
			  const char **crc, const char **sha, const char **xxh)
{
	char dir[PATH_MAX], mpath[PATH_MAX + 32];
	struct stat st;

	*crc = *sha = *xxh = NULL;
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
		*crc = m->dev[i].crc32;
		*sha = m->dev[i].sha256_tree;
		*xxh = m->dev[i].stream_xxh128;
		if (!*crc || !*sha) {
			cli_error("%s: the entry of %s has no checksums", quote_name(mpath),
				  quote_name(base));
			return false;
		}
	}
	return true;
}

/* OUTPUT: as given, or the input without its suffix; 0 or an exit status. */
static int output_name(const struct options *o, int fmt, char *out, size_t outlen)
{
	const char *suffix = pack_suffix(fmt);
	size_t l = strlen(o->input), sl = strlen(suffix);
	struct stat st;

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
	/* -f replaces a file, never a directory or a device node, FIFO, socket. */
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

static int report_json(const struct options *o, const char *out, const char *format,
		       int compression, uint64_t total, const struct restore_ctx *rc,
		       const char *digest_hex, bool checked, double secs)
{
	return json_print(json_pack("{s:o, s:o, s:s, s:s, s:I, s:I, s:s, s:s, s:s?, s:b, s:f}",
				    "input", quote_json_string(o->input),
				    "output", quote_json_string(out),
				    "format", format, "compression", pack_name(compression),
				    "bytes", (json_int_t)total,
				    "written", (json_int_t)rc->out.written, "crc32", rc->sums.crc_hex,
				    "sha256_tree", rc->sums.sha_hex,
				    "stream_xxh128", digest_hex[0] ? digest_hex : NULL,
				    "checked", checked, "seconds", json_round(secs, 1000)));
}

int restore(const struct options *o)
{
	char out[PATH_MAX], dir[PATH_MAX], msg[200] = "";
	const char *base = strrchr(o->input, '/'), *expect_crc, *expect_sha, *expect_xxh;
	bool from_stdin = !strcmp(o->input, "-");
	struct restore_ctx rc;
	struct afile af = { .fd = -1 };
	struct manifest manifest = { 0 };
	struct stat st;
	uint64_t total = 0;
	int fd, fmt, ret, dirfd;
	char digest_hex[33] = "";
	double t0 = now();

	base = base ? base + 1 : o->input;
	/* A stream of a chain point: the streams from its full point down. */
	afile_dir_of(o->input, dir, sizeof(dir));
	if (!from_stdin && is_chain_dir(dir))
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
	if (!expected_sums(o->input, base, &manifest, &expect_crc, &expect_sha, &expect_xxh)) {
		close(fd);
		manifest_free(&manifest);
		return EXIT_FAILED;
	}
	afile_dir_of(out, dir, sizeof(dir));
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = dirfd < 0 ? -errno : afile_open(&af, dirfd, out, 0644, false);
	if (ret < 0) {
		cli_error("%s: cannot create: %s", quote_name(out), strerror(-ret));
		if (!from_stdin)
			close(fd);
		if (dirfd >= 0)
			close(dirfd);
		manifest_free(&manifest);
		return EXIT_DEST;
	}
	memset(&rc, 0, sizeof(rc));
	rc.out.fd = af.fd;
	sums_init(&rc.sums);
	if (fmt < 0)
		ret = restore_raw(fd, &rc, &total, msg, sizeof(msg));
	else
		ret = pack_decompress(fd, fmt, restore_unit, &rc, &total, &interrupted, msg,
				      sizeof(msg));
	if (!from_stdin)
		close(fd);
	if (rc.mode == MODE_STREAM) {
		/* The parser's message: the decompressor only passed its error on. */
		if (ret == -EBADMSG && rc.xp.err == -EBADMSG)
			snprintf(msg, sizeof(msg), "%s", rc.xp.msg);
		if (ret == 0)
			ret = xs_parser_end(&rc.xp, msg, sizeof(msg));
		xs_parser_free(&rc.xp);
		if (ret == 0)
			xs_hex128(rc.xp.digest, digest_hex);
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
	if (ret == 0 && expect_crc && expect_sha &&
	    (strcmp(expect_crc, rc.sums.crc_hex) || strcmp(expect_sha, rc.sums.sha_hex))) {
		afile_dir_of(o->input, dir, sizeof(dir));
		cli_error("%s: checksum mismatch with %s/%s (crc32 %s, manifest %s)",
			  quote_name(o->input),
			  quote_name(dir), MANIFEST, rc.sums.crc_hex, quote_name(expect_crc));
		ret = -EBADMSG;
	} else if (ret == 0 && expect_xxh && strcmp(expect_xxh, digest_hex)) {
		afile_dir_of(o->input, dir, sizeof(dir));
		cli_error("%s: stream digest mismatch with %s/%s (%s, manifest %s)",
			  quote_name(o->input), quote_name(dir), MANIFEST,
			  digest_hex[0] ? digest_hex : "none: not a stream", quote_name(expect_xxh));
		ret = -EBADMSG;
	} else if (ret == -EBADMSG) {
		cli_error("%s: %s", from_stdin ? "stdin" : quote_name(o->input), msg);
	} else if (ret == -ENOTSUP) {
		cli_error("%s: an incremental stream: it applies over its parent point, not "
			  "an empty file", from_stdin ? "stdin" : quote_name(o->input));
		ret = -EBADMSG;
	} else if (ret < 0 && ret != -EINTR) {
		cli_error("%s: %s", quote_name(out), strerror(-ret));
	}
	if (ret == 0)
		ret = afile_publish(&af, out, o->force);
	if (ret == 0)
		fsync(dirfd);
	afile_discard(&af);
	close(dirfd);
	if (ret == -EINTR || ret == -EBADMSG || ret < 0) {
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
	if (o->json)
		report_json(o, out, rc.mode == MODE_STREAM ? "ubdx" : "cow",
			    fmt < 0 ? PACK_NONE : fmt, total, &rc, digest_hex,
			    expect_crc != NULL, now() - t0);
	if (!o->quiet)
		fprintf(stderr, "%s: restored %s to %s (%.1f MiB, %.1f MiB of data)%s%s\n",
			cli_prog, from_stdin ? "stdin" : quote_name(o->input), quote_name(out),
			(double)total / 1048576.0, (double)rc.out.written / 1048576.0,
			expect_crc ? ", checksums match the manifest" : "",
			rc.mode == MODE_STREAM && !expect_crc ? ", stream digest checked" : "");
	manifest_free(&manifest);
	return 0;
}
