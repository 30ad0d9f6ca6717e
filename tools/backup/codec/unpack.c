/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "codec/unpack.h"
#include "codec/lz4_splice.h"
#include "codec/pack.h"
#include "format/sums.h"
#include "ubdk_endian.h"

#include <errno.h>
#include <lz4frame.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* Buffered input with look-ahead. */
struct reader {
	int fd;
	uint8_t *buf;
	size_t cap, pos, len;
	bool eof;
	int err;                        /* what stopped avail(): -errno */
	volatile sig_atomic_t *intr;
};

/* Make at least n bytes available; -ENODATA at end of file. */
static int need(struct reader *r, size_t n)
{
	if (r->len - r->pos >= n)
		return 0;
	if (n > r->cap)
		return -EMSGSIZE;
	memmove(r->buf, r->buf + r->pos, r->len - r->pos);
	r->len -= r->pos;
	r->pos = 0;
	while (r->len < n && !r->eof) {
		ssize_t got;

		if (r->intr && *r->intr)
			return -EINTR;
		got = read(r->fd, r->buf + r->len, r->cap - r->len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			r->eof = true;
		r->len += (size_t)got;
	}
	return r->len - r->pos >= n ? 0 : -ENODATA;
}

/* Bytes available without reading more (refills when empty). */
static size_t avail(struct reader *r)
{
	int ret;

	if (r->pos == r->len && !r->eof) {
		ret = need(r, 1);
		if (ret < 0 && ret != -ENODATA)
			r->err = ret;
	}
	return r->len - r->pos;
}

static bool at_eof(struct reader *r)
{
	return avail(r) == 0;
}

static int bad(char *msg, size_t len, const char *what)
{
	snprintf(msg, len, "%s", what);
	return -EBADMSG;
}

static int truncated(int ret, char *msg, size_t len, const char *what)
{
	if (ret == -ENODATA || ret == -EMSGSIZE)
		return bad(msg, len, what);
	return ret;
}

/*
 * LZ4 frames, concatenated and skippable ones too, all decoded by liblz4
 * (LZ4F_decompress).  Frames we wrote (lz4_splice.h: the header tells)
 * are fed to it a block at a time, so that a block identical to one that
 * decoded to a whole unit of zeros is not decoded again: decoding a MiB of
 * zeros costs more than a fast disk takes to skip it, and most units of a
 * COW file are holes.  Such a frame's end mark is not fed: LZ4F would
 * count the skipped units missing from the content size, which is checked
 * here instead, and the context starts afresh.
 */
struct lz4_in {
	struct reader *r;
	struct assembler *a;
	LZ4F_dctx *dctx;
	uint8_t *out;
	uint8_t *zero;                  /* a block that decoded to a unit of zeros */
	size_t zero_len;
	size_t last;                    /* what LZ4F's last call put in out */
	char *msg;
	size_t msglen;
};

/*
 * Feed up to n bytes to LZ4F, not past the end of a frame; its hint (0:
 * the frame ended), or -errno after a message.
 */
static long long lz4_feed(struct lz4_in *in, size_t n, uint64_t *produced)
{
	struct reader *r = in->r;
	size_t hint = 1, done = 0;
	int ret;

	*produced = 0;
	while (done < n) {
		size_t dsz = PACK_UNIT, ssz = n - done;

		hint = LZ4F_decompress(in->dctx, in->out, &dsz, r->buf + r->pos + done, &ssz, NULL);
		if (LZ4F_isError(hint)) {
			snprintf(in->msg, in->msglen, "corrupt LZ4 data (%s)", LZ4F_getErrorName(hint));
			return -EBADMSG;
		}
		done += ssz;
		*produced += dsz;
		in->last = dsz;
		ret = asm_feed(in->a, in->out, dsz);
		if (ret < 0)
			return ret;
		if (hint == 0 || (ssz == 0 && dsz == 0))
			break;
	}
	r->pos += done;
	return (long long)hint;
}

/* A frame of ours, its header (LZ4S_HEADER bytes) available. */
static int lz4_our_frame(struct lz4_in *in, uint64_t content_size)
{
	struct reader *r = in->r;
	uint64_t total = 0, got;
	long long ret = lz4_feed(in, LZ4S_HEADER, &got);

	while (ret >= 0) {
		size_t len;
		const uint8_t *blk;
		bool at_unit = in->a->n == 0;

		ret = need(r, 4);
		if (ret < 0)
			return truncated((int)ret, in->msg, in->msglen, "truncated LZ4 data");
		blk = r->buf + r->pos;
		if (ubdk_get_le32(blk) == 0) {
			r->pos += LZ4S_END_MARK;
			/* A reset would keep the size left to decode, for the next frame. */
			LZ4F_freeDecompressionContext(in->dctx);
			if (LZ4F_isError(LZ4F_createDecompressionContext(&in->dctx, LZ4F_VERSION)))
				return -ENOMEM;
			return total == content_size ? 0 : bad(in->msg, in->msglen,
							       "corrupt LZ4 data (content size)");
		}
		/* Too large for a block of ours: LZ4F says why. */
		len = LZ4S_BLOCK_MAX(ubdk_get_le32(blk) & 0x7fffffffU);
		if (len > LZ4S_BLOCK_MAX(PACK_UNIT))
			len = 4;
		ret = need(r, len);
		if (ret < 0)
			return truncated((int)ret, in->msg, in->msglen, "truncated LZ4 data");
		blk = r->buf + r->pos;
		if (at_unit && len == in->zero_len && memcmp(blk, in->zero, len) == 0) {
			r->pos += len;
			total += PACK_UNIT;
			ret = asm_zero_unit(in->a);
			continue;
		}
		ret = lz4_feed(in, len, &got);
		total += got;
		/* Decoded in one call: out holds the whole unit. */
		if (ret >= 0 && !in->zero && at_unit && in->last == PACK_UNIT && got == PACK_UNIT &&
		    unit_is_zero(in->out, PACK_UNIT) && (in->zero = malloc(len))) {
			memcpy(in->zero, r->buf + r->pos - len, len);
			in->zero_len = len;
		}
	}
	return (int)ret;
}

/* Any other frame (or a skippable one): LZ4F until it ends. */
static int lz4_frame(struct lz4_in *in)
{
	long long hint = 1;
	uint64_t got;

	while (hint > 0) {
		size_t n = avail(in->r);

		if (n == 0)
			return in->r->err ? in->r->err : bad(in->msg, in->msglen, "truncated LZ4 data");
		hint = lz4_feed(in, n, &got);
	}
	return (int)hint;
}

static int lz4_stream(struct reader *r, struct assembler *a, char *msg, size_t msglen)
{
	struct lz4_in in = { .r = r, .a = a, .msg = msg, .msglen = msglen };
	int ret = 0;

	in.out = malloc(PACK_UNIT);
	if (!in.out || LZ4F_isError(LZ4F_createDecompressionContext(&in.dctx, LZ4F_VERSION))) {
		free(in.out);
		return -ENOMEM;
	}
	while (ret == 0 && !at_eof(r)) {
		uint64_t size;

		if (need(r, LZ4S_HEADER) == 0 && lz4s_is_ours(r->buf + r->pos, &size))
			ret = lz4_our_frame(&in, size);
		else
			ret = lz4_frame(&in);
	}
	if (ret == 0 && r->err)
		ret = r->err;
	LZ4F_freeDecompressionContext(in.dctx);
	free(in.out);
	free(in.zero);
	return ret;
}

/*
 * gzip members.  Raw inflate, the header and trailer handled here: after a
 * block that ends on a byte boundary, when the next bytes are a compressed
 * unit of zeros as we write them (at the level XFL suggests: 1, 9, or
 * 2 to 8), the unit is taken as zeros without inflating it.  The CRC is
 * checked all the same, so a foreign stream that happened to hold those
 * bytes cannot come out wrong unnoticed.
 */
static bool gz_zero_match(const uint8_t *p, size_t avail, int xfl, size_t *len)
{
	static const int mid[] = { 6, 2, 3, 4, 5, 7, 8 };
	const int *lv = xfl == 4 ? (const int[]){ 1 } : xfl == 2 ? (const int[]){ 9 } : mid;
	int n = xfl == 4 || xfl == 2 ? 1 : 7;

	for (int i = 0; i < n; i++) {
		const uint8_t *t = gz_zero_unit(lv[i], len);

		if (t && *len <= avail && memcmp(p, t, *len) == 0)
			return true;
	}
	return false;
}

static int gz_member(struct reader *r, z_stream *z, struct assembler *a,
		     char *msg, size_t msglen)
{
	uint8_t *h, flg, xfl, *out;
	size_t tlen = 0, pos;
	unsigned long crc = crc32(0L, Z_NULL, 0);
	uint64_t start = a->total;
	bool boundary = true;
	int ret, zr = Z_OK;

	ret = need(r, 10);
	if (ret < 0)
		return truncated(ret, msg, msglen, "truncated gzip header");
	h = r->buf + r->pos;
	if (h[0] != 0x1f || h[1] != 0x8b || h[2] != 8)
		return bad(msg, msglen, "not gzip data (bad magic)");
	flg = h[3];
	xfl = h[8];
	pos = 10;
	if (flg & 0x04) {
		ret = need(r, pos + 2);
		if (ret == 0) {
			h = r->buf + r->pos;
			pos += 2 + (h[pos] | (size_t)h[pos + 1] << 8);
			ret = need(r, pos);
		}
	}
	for (int field = 0x08; ret == 0 && field <= 0x10; field <<= 1) {
		if (!(flg & field))
			continue;
		/* NUL-terminated name or comment. */
		for (;;) {
			ret = need(r, pos + 1);
			if (ret < 0)
				break;
			if (r->buf[r->pos + pos++] == 0)
				break;
		}
	}
	if (ret == 0 && (flg & 0x02)) {
		ret = need(r, pos + 2);
		pos += 2;
	}
	if (ret < 0)
		return truncated(ret, msg, msglen, "truncated gzip header");
	r->pos += pos;
	out = malloc(PACK_UNIT);
	if (!out)
		return -ENOMEM;
	inflateReset(z);
	for (;;) {
		size_t in_before, produced;

		if (boundary && a->n == 0 && (need(r, 64 << 10), true) &&
		    gz_zero_match(r->buf + r->pos, r->len - r->pos, xfl, &tlen)) {
			r->pos += tlen;
			crc = crc_zero_unit(crc);
			ret = asm_zero_unit(a);
			if (ret < 0)
				break;
			continue;
		}
		if (avail(r) == 0) {
			ret = bad(msg, msglen, "truncated gzip data");
			break;
		}
		z->next_in = r->buf + r->pos;
		z->avail_in = (uInt)(r->len - r->pos);
		in_before = z->avail_in;
		z->next_out = out;
		z->avail_out = PACK_UNIT;
		zr = inflate(z, Z_BLOCK);
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
			snprintf(msg, msglen, "corrupt gzip data (%s)",
				 z->msg ? z->msg : "inflate failed");
			ret = -EBADMSG;
			break;
		}
		r->pos += in_before - z->avail_in;
		produced = PACK_UNIT - z->avail_out;
		crc = crc_update(crc, out, produced);
		ret = asm_feed(a, out, produced);
		if (ret < 0 || zr == Z_STREAM_END)
			break;
		/* Between two blocks, on a byte boundary, not after the last. */
		boundary = (z->data_type & 128) && !(z->data_type & 64) &&
			   (z->data_type & 63) == 0;
		if (zr == Z_BUF_ERROR && in_before == z->avail_in && produced == 0 &&
		    need(r, r->len - r->pos + 1) < 0) {
			ret = bad(msg, msglen, "truncated gzip data");
			break;
		}
	}
	free(out);
	if (ret < 0)
		return ret;
	ret = need(r, 8);
	if (ret < 0)
		return truncated(ret, msg, msglen, "truncated gzip data (no trailer)");
	h = r->buf + r->pos;
	if (ubdk_get_le32(h) != (uint32_t)crc)
		return bad(msg, msglen, "corrupt gzip data (CRC mismatch)");
	if (ubdk_get_le32(h + 4) != (uint32_t)(a->total - start))
		return bad(msg, msglen, "corrupt gzip data (length mismatch)");
	r->pos += 8;
	return 0;
}

int pack_decompress(int fd, int format, unit_fn fn, void *ctx, uint64_t *total,
		    volatile sig_atomic_t *intr, char *msg, size_t msglen)
{
	struct assembler a = { .fn = fn, .ctx = ctx };
	struct reader r = { .fd = fd, .cap = 8U << 20, .intr = intr };
	z_stream z;
	int ret = 0;

	msg[0] = '\0';
	memset(&z, 0, sizeof(z));
	a.buf = malloc(PACK_UNIT);
	r.buf = malloc(r.cap);
	if (!a.buf || !r.buf) {
		ret = -ENOMEM;
		goto out;
	}
	if (at_eof(&r)) {
		ret = r.err ? r.err : bad(msg, msglen, "empty file");
		goto out;
	}
	if (format == PACK_LZ4) {
		ret = lz4_stream(&r, &a, msg, msglen);
	} else {
		if (inflateInit2(&z, -15) != Z_OK) {
			ret = -ENOMEM;
			goto out;
		}
		do {
			ret = gz_member(&r, &z, &a, msg, msglen);
		} while (ret == 0 && !at_eof(&r));
		inflateEnd(&z);
	}
	if (ret == 0)
		ret = r.err ? r.err : asm_flush(&a);
	if (total)
		*total = a.total;
out:
	free(a.buf);
	free(r.buf);
	return ret;
}
