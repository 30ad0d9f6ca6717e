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

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct restore_ctx {
	struct sparse_out out;
	struct sums sums;
};

static int restore_unit(void *ctx, const uint8_t *data, size_t len)
{
	struct restore_ctx *r = ctx;

	sums_unit(&r->sums, data, len);
	return sparse_unit(&r->out, data, len);
}

/*
 * The checksums the manifest next to FILE has for it: *crc and *sha stay
 * NULL without a manifest, or one that does not list FILE.  False after
 * a message: a manifest that cannot be read must not pass as checked.
 */
static bool expected_sums(const char *input, const char *base, struct manifest *m,
			  const char **crc, const char **sha)
{
	char dir[PATH_MAX], mpath[PATH_MAX + 32];
	struct stat st;

	*crc = *sha = NULL;
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

static int report_json(const struct options *o, const char *out, int fmt, uint64_t total,
		       const struct restore_ctx *rc, bool checked, double secs)
{
	return json_print(json_pack("{s:o, s:o, s:s, s:I, s:I, s:s, s:s, s:b, s:f}",
				    "input", quote_json_string(o->input),
				    "output", quote_json_string(out),
				    "format", pack_name(fmt), "bytes", (json_int_t)total,
				    "written", (json_int_t)rc->out.written, "crc32", rc->sums.crc_hex,
				    "sha256_tree", rc->sums.sha_hex, "checked", checked,
				    "seconds", json_round(secs, 1000)));
}

int restore(const struct options *o)
{
	char out[PATH_MAX], dir[PATH_MAX], msg[200];
	const char *base = strrchr(o->input, '/'), *expect_crc, *expect_sha;
	struct restore_ctx rc;
	struct afile af = { .fd = -1 };
	struct manifest manifest = { 0 };
	struct stat st;
	uint64_t total = 0;
	int fd, fmt, ret, dirfd;
	double t0 = now();

	base = base ? base + 1 : o->input;
	/* A stream of a chain point: the streams from its full point down. */
	afile_dir_of(o->input, dir, sizeof(dir));
	if (is_chain_dir(dir))
		return chain_restore(o);
	fd = input_open(o->input, &st);
	if (fd < 0) {
		cli_error("%s: %s%s", quote_name(o->input),
			  fd == INPUT_E_TYPE || fd == -EISDIR ? "" :
			  "cannot open: ", input_strerror(fd));
		return EXIT_FAILED;
	}
	fmt = pack_detect(fd);
	if (fmt < 0) {
		cli_error("%s: not an LZ4 or gzip file (an uncompressed backup is a COW "
			  "file already)", quote_name(o->input));
		close(fd);
		return EXIT_FAILED;
	}
	ret = output_name(o, fmt, out, sizeof(out));
	if (ret) {
		close(fd);
		return ret;
	}
	if (!expected_sums(o->input, base, &manifest, &expect_crc, &expect_sha)) {
		close(fd);
		manifest_free(&manifest);
		return EXIT_FAILED;
	}
	afile_dir_of(out, dir, sizeof(dir));
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = dirfd < 0 ? -errno : afile_open(&af, dirfd, out, 0644, false);
	if (ret < 0) {
		cli_error("%s: cannot create: %s", quote_name(out), strerror(-ret));
		close(fd);
		if (dirfd >= 0)
			close(dirfd);
		manifest_free(&manifest);
		return EXIT_DEST;
	}
	memset(&rc, 0, sizeof(rc));
	rc.out.fd = af.fd;
	sums_init(&rc.sums);
	ret = pack_decompress(fd, fmt, restore_unit, &rc, &total, &interrupted, msg, sizeof(msg));
	close(fd);
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
	} else if (ret == -EBADMSG) {
		cli_error("%s: %s", quote_name(o->input), msg);
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
		report_json(o, out, fmt, total, &rc, expect_crc != NULL, now() - t0);
	if (!o->quiet)
		fprintf(stderr, "%s: restored %s to %s (%.1f MiB, %.1f MiB of data)%s\n",
			cli_prog, quote_name(o->input), quote_name(out), (double)total / 1048576.0,
			(double)rc.out.written / 1048576.0,
			expect_crc ? ", checksums match the manifest" : "");
	manifest_free(&manifest);
	return 0;
}
