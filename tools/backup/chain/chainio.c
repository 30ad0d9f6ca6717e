/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chainio.c - reading a point's stream for the chain commands (chainio.h).
 */
#define _GNU_SOURCE
#include "chain/chainio.h"
#include "afile.h"
#include "cli.h"
#include "extent.h"
#include "input.h"
#include "codec/pack.h"
#include "codec/lz4_splice.h"
#include "quote.h"
#include "format/xstream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void chainio_split_point_path(const char *path, char *chaindir, size_t cl, char *name, size_t nl)
{
	char tmp[PATH_MAX];
	char *slash;

	snprintf(tmp, sizeof(tmp), "%s", path);
	/* Trailing slashes: "chain/point/" is "chain/point". */
	for (size_t l = strlen(tmp); l > 1 && tmp[l - 1] == '/'; l--)
		tmp[l - 1] = '\0';
	slash = strrchr(tmp, '/');
	if (!slash) {
		snprintf(chaindir, cl, ".");
		snprintf(name, nl, "%s", tmp);
	} else {
		snprintf(name, nl, "%s", slash + 1);
		*slash = '\0';
		snprintf(chaindir, cl, "%s", tmp[0] ? tmp : "/");
	}
}

/* --- reading a point's stream ---------------------------------------------- */

bool chainio_hex_is(const uint8_t d[16], const char *hex)
{
	char h[XXH_HEX];

	digest_hex(d, h);
	return hex && !strcmp(h, hex);
}

/* Check a stream's header against its point; 0 or -EBADMSG with msg. */
int chainio_check_header(const struct xs_header *h, const struct point *p,
			const struct manifest_device *d, char *msg, size_t msglen)
{
	if (memcmp(h->point, p->id, 16)) {
		snprintf(msg, msglen, "the stream is of another point");
		return -EBADMSG;
	}
	if (!(h->flags & XS_FLAG_INCREMENTAL) != !p->incremental) {
		snprintf(msg, msglen, "the stream is %s, the manifest says %s",
			 h->flags & XS_FLAG_INCREMENTAL ? "incremental" : "full", p->m.kind);
		return -EBADMSG;
	}
	if (p->incremental && !chainio_hex_is(h->parent, p->m.parent_point)) {
		snprintf(msg, msglen, "the stream applies over another parent than its "
			 "manifest's %s", p->m.parent_point);
		return -EBADMSG;
	}
	if (h->file_size != d->cow_bytes) {
		snprintf(msg, msglen, "the stream makes a file of %llu bytes, the manifest "
			 "says %llu", (unsigned long long)h->file_size,
			 (unsigned long long)d->cow_bytes);
		return -EBADMSG;
	}
	return 0;
}


int chainio_punch_zero(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t z[65536];

	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		      (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	while (len) {
		size_t n = len > sizeof(z) ? sizeof(z) : (size_t)len;
		int ret = stream_write_all(fd, z, n, (off_t)off);

		if (ret < 0)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

int chainio_apply_record(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
			const uint8_t *data)
{
	struct apply_ctx *a = ctx;

	if (off == XS_HEADER_CALL) {
		a->file_size = h->file_size;
		return chainio_check_header(h, a->p, a->d, a->msg, sizeof(a->msg));
	}
	if (!data)
		return chainio_punch_zero(a->fd, off, len);
	a->written += len;
	return stream_write_all(a->fd, data, (size_t)len, (off_t)off);
}

int chainio_open_stream(const struct point *p, const struct manifest_device *d, struct stat *st,
			char *msg, size_t msglen)
{
	char path[PATH_MAX + 80];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", p->dir, d->file);
	fd = input_open(path, st);
	if (fd >= 0 && !S_ISREG(st->st_mode)) {
		close(fd);
		fd = INPUT_E_TYPE;
	}
	if (fd < 0)
		snprintf(msg, msglen, "point %s: %s: %s", p->name, d->file, input_strerror(fd));
	return fd;
}

int chain_apply(const struct point *pts, int n, const char *dev, int fd, uint64_t *written,
		char *msg, size_t msglen)
{
	*written = 0;
	for (int k = 0; k < n; k++) {
		const struct manifest_device *d = point_device(&pts[k], dev);
		struct apply_ctx a = { .fd = fd, .p = &pts[k], .d = d };
		struct stat st;
		char why[300] = "";
		uint8_t digest[16];
		int sfd, ret;

		if (!d) {
			snprintf(msg, msglen, "point %s has no %s", pts[k].name, dev);
			return -EBADMSG;
		}
		sfd = chainio_open_stream(&pts[k], d, &st, msg, msglen);
		if (sfd < 0)
			return sfd == INPUT_E_TYPE ? -EBADMSG : sfd;
		ret = xs_read_fd_ex(sfd, chainio_apply_record, &a, NULL, NULL, digest, &tool_interrupted, why,
				    sizeof(why));
		close(sfd);
		*written += a.written;
		if (ret == 0 && !chainio_hex_is(digest, d->stream_xxh128)) {
			snprintf(why, sizeof(why), "digest differs from its manifest's stream_xxh128");
			ret = -EBADMSG;
		}
		if (ret < 0) {
			if (ret != -EINTR)
				snprintf(msg, msglen, "point %s: %s: %s", pts[k].name,
					 quote_name(d->file), a.msg[0] ? a.msg : why[0] ? why :
					 strerror(-ret));
			return ret;
		}
		if (k == n - 1 && ftruncate(fd, (off_t)a.file_size) < 0)
			return -errno;
	}
	return 0;
}
