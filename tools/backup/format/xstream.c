/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xstream.c - extent stream writer and parser (xstream.h).  Depends on
 * libxxhash only, so that the fuzz target links it alone; reading files
 * (and the decompressors) is in xstream_fd.c.
 */
#include "format/xstream.h"
#include "ubdk_endian.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static bool all_zero(const uint8_t *p, size_t n)
{
	if (n == 0 || p[0])
		return n == 0;
	/* Overlapping memcmp: the library's vector loop, no zero buffer. */
	return memcmp(p, p + 1, n - 1) == 0;
}

/* Header fields every valid stream has; *why says which one is not. */
static bool header_ok(const struct xs_header *h, const char **why, unsigned *at)
{
	if (h->flags & ~XS_FLAG_INCREMENTAL) {
		*why = "unknown flags";
		*at = 12;
	} else if (h->chunk_size == 0 || (h->chunk_size & (h->chunk_size - 1))) {
		*why = "chunk_size is not a power of two";
		*at = 24;
	} else if (h->file_size >= XS_ZERO_BIT) {
		/* Offsets are off_t, and a ZERO record's length has one bit less. */
		*why = "file_size 2^63 or more";
		*at = 16;
	} else if (!(h->flags & XS_FLAG_INCREMENTAL) != all_zero(h->parent, 16)) {
		/* A full stream applies over nothing; an incremental names what. */
		*why = h->flags & XS_FLAG_INCREMENTAL ? "an incremental stream without a parent" :
		       "a full stream with a parent";
		*at = 56;
	} else {
		return true;
	}
	return false;
}

static void encode_header(uint8_t b[XS_HEADER_SIZE], const struct xs_header *h)
{
	memset(b, 0, XS_HEADER_SIZE);
	memcpy(b, XS_MAGIC, 8);
	ubdk_put_le32(b + 8, XS_VERSION);
	ubdk_put_le32(b + 12, h->flags);
	ubdk_put_le64(b + 16, h->file_size);
	ubdk_put_le32(b + 24, h->chunk_size);
	ubdk_put_le64(b + 32, h->data_offset);
	memcpy(b + 40, h->point, 16);
	memcpy(b + 56, h->parent, 16);
}

void xs_hex128(const uint8_t d[16], char out[33])
{
	static const char hx[] = "0123456789abcdef";

	for (int i = 0; i < 16; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[32] = '\0';
}

/* --- writer -------------------------------------------------------------- */

struct xs_writer {
	struct xs_header h;
	unit_fn sink;
	void *sink_ctx;
	XXH3_state_t *xxh;
	uint8_t *out;                   /* PACK_UNIT bytes for the sink */
	size_t outn;
	uint8_t *pend;                  /* the DATA record being gathered */
	uint64_t pend_off;
	size_t pend_len;
	uint64_t zoff, zlen;            /* the ZERO record being gathered */
	/*
	 * A block given in part, [blk_lo, blk_hi), kept until the rest
	 * comes, so that a block cut across calls is judged whole.
	 */
	uint8_t blk[XS_BLOCK];
	uint64_t blk_lo, blk_hi;
	uint64_t pos;                   /* calls may start here or later */
	uint64_t bytes, records, payload;
	int err;                        /* sticky */
};

static int out_flush(void *arg)
{
	struct xs_writer *w = arg;
	int ret = w->outn ? w->sink(w->sink_ctx, w->out, w->outn) : 0;

	w->outn = 0;
	return ret;
}

/* n bytes of the stream; hashed unless they are the digest. */
static int emit(struct xs_writer *w, const uint8_t *p, size_t n, bool hash)
{
	if (hash)
		XXH3_128bits_update(w->xxh, p, n);
	w->bytes += n;
	return unit_feed(w->out, &w->outn, p, n, out_flush, w);
}

static int emit_head(struct xs_writer *w, uint64_t off, uint64_t len)
{
	uint8_t b[XS_HEAD_SIZE];

	ubdk_put_le64(b, off);
	ubdk_put_le64(b + 8, len);
	w->records++;
	return emit(w, b, sizeof(b), true);
}

static int flush_data(struct xs_writer *w)
{
	int ret;

	if (w->pend_len == 0)
		return 0;
	ret = emit_head(w, w->pend_off, w->pend_len);
	if (ret == 0)
		ret = emit(w, w->pend, w->pend_len, true);
	w->payload += w->pend_len;
	w->pend_len = 0;
	return ret;
}

static int flush_zero(struct xs_writer *w)
{
	int ret;

	if (w->zlen == 0)
		return 0;
	ret = emit_head(w, w->zoff, w->zlen | XS_ZERO_BIT);
	w->zlen = 0;
	return ret;
}

/* Non-zero bytes within one XS_BLOCK: merged into the pending DATA record. */
static int add_data(struct xs_writer *w, uint64_t off, const uint8_t *p, size_t n)
{
	int ret = flush_zero(w);

	/* Records never span a multiple of XS_MAX_DATA: boundaries stay put. */
	if (ret == 0 && w->pend_len && (w->pend_off + w->pend_len != off || off % XS_MAX_DATA == 0))
		ret = flush_data(w);
	if (ret < 0)
		return ret;
	if (w->pend_len == 0)
		w->pend_off = off;
	memcpy(w->pend + w->pend_len, p, n);
	w->pend_len += n;
	return 0;
}

static int add_zero(struct xs_writer *w, uint64_t off, uint64_t n)
{
	int ret = flush_data(w);

	if (ret < 0)
		return ret;
	if (w->zlen && w->zoff + w->zlen == off) {
		w->zlen += n;
		return 0;
	}
	ret = flush_zero(w);
	w->zoff = off;
	w->zlen = n;
	return ret;
}

int xs_writer_open(struct xs_writer **out, const struct xs_header *h, unit_fn sink,
		   void *sink_ctx)
{
	struct xs_writer *w;
	uint8_t b[XS_HEADER_SIZE];
	const char *why;
	unsigned at;
	int ret;

	*out = NULL;
	if (!header_ok(h, &why, &at))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->h = *h;
	w->sink = sink;
	w->sink_ctx = sink_ctx;
	w->xxh = XXH3_createState();
	w->out = malloc(PACK_UNIT);
	w->pend = malloc(XS_MAX_DATA);
	if (!w->xxh || !w->out || !w->pend) {
		xs_writer_free(w);
		return -ENOMEM;
	}
	XXH3_128bits_reset(w->xxh);
	encode_header(b, h);
	ret = emit(w, b, sizeof(b), true);
	if (ret < 0) {
		xs_writer_free(w);
		return ret;
	}
	*out = w;
	return 0;
}

/* A call's range: in order and within the file, else the writer is done. */
static int check_range(struct xs_writer *w, uint64_t off, uint64_t len)
{
	if (w->err)
		return w->err;
	if (off < w->pos || off > w->h.file_size || len > w->h.file_size - off)
		return w->err = -EINVAL;
	w->pos = off + len;
	return 0;
}

/* A piece within one block: DATA, or zeros (left out, or a ZERO record). */
static int add_piece(struct xs_writer *w, uint64_t off, const uint8_t *q, size_t n)
{
	if (!all_zero(q, n))
		return add_data(w, off, q, n);
	return w->h.flags & XS_FLAG_INCREMENTAL ? add_zero(w, off, n) : 0;
}

/* The part of a block kept, as it is: the rest of it will not come. */
static int flush_block(struct xs_writer *w)
{
	uint64_t lo = w->blk_lo, n = w->blk_hi - w->blk_lo;

	w->blk_lo = w->blk_hi = 0;
	return n ? add_piece(w, lo, w->blk + lo % XS_BLOCK, (size_t)n) : 0;
}

int xs_data(struct xs_writer *w, uint64_t off, const uint8_t *p, size_t len)
{
	uint64_t end = off + len, cur = off;
	int ret = check_range(w, off, len);

	/* A kept part of a block that this call does not continue is complete. */
	if (ret == 0 && w->blk_hi != w->blk_lo && (w->blk_hi != off || len == 0))
		ret = flush_block(w);
	while (ret == 0 && cur < end) {
		uint64_t bstart = cur / XS_BLOCK * XS_BLOCK, bend = bstart + XS_BLOCK;
		uint64_t piece_end = bend < end ? bend : end;
		size_t n = (size_t)(piece_end - cur);
		const uint8_t *q = p + (cur - off);

		if (bend > w->h.file_size)
			bend = w->h.file_size;
		if (w->blk_hi == cur && w->blk_hi != w->blk_lo) {
			/* Continues the kept part. */
			memcpy(w->blk + cur % XS_BLOCK, q, n);
			w->blk_hi += n;
			if (w->blk_hi == bend)
				ret = flush_block(w);
		} else if (piece_end < bend) {
			/* Ends inside its block: kept until the rest comes. */
			memcpy(w->blk + cur % XS_BLOCK, q, n);
			w->blk_lo = cur;
			w->blk_hi = piece_end;
		} else {
			ret = add_piece(w, cur, q, n);
		}
		cur += n;
	}
	if (ret < 0)
		w->err = ret;
	return ret;
}

int xs_zero(struct xs_writer *w, uint64_t off, uint64_t len)
{
	int ret = check_range(w, off, len);

	if (ret == 0)
		ret = flush_block(w);

	/* The base of a full stream is empty: zeros there already. */
	if (ret == 0 && len && (w->h.flags & XS_FLAG_INCREMENTAL))
		ret = add_zero(w, off, len);
	if (ret < 0)
		w->err = ret;
	return ret;
}

int xs_writer_finish(struct xs_writer *w, uint64_t *bytes_out, uint8_t digest[16])
{
	XXH128_canonical_t c;
	uint8_t b[24];
	int ret = w->err;

	if (ret == 0)
		ret = flush_block(w);
	if (ret == 0)
		ret = flush_data(w);
	if (ret == 0)
		ret = flush_zero(w);
	if (ret == 0) {
		ubdk_put_le64(b, XS_END_OFFSET);
		ubdk_put_le64(b + 8, w->records);
		ubdk_put_le64(b + 16, w->payload);
		ret = emit(w, b, sizeof(b), true);
	}
	if (ret == 0) {
		XXH128_canonicalFromHash(&c, XXH3_128bits_digest(w->xxh));
		ret = emit(w, c.digest, sizeof(c.digest), false);
	}
	if (ret == 0)
		ret = out_flush(w);
	if (ret < 0)
		return w->err = ret;
	if (bytes_out)
		*bytes_out = w->bytes;
	if (digest)
		memcpy(digest, c.digest, 16);
	w->err = -EINVAL;               /* nothing may follow the end */
	return 0;
}

void xs_writer_free(struct xs_writer *w)
{
	if (!w)
		return;
	if (w->xxh)
		XXH3_freeState(w->xxh);
	free(w->out);
	free(w->pend);
	free(w);
}

/* --- parser -------------------------------------------------------------- */

enum { S_HEADER, S_HEAD, S_DATA, S_END, S_DONE };

__attribute__((format(printf, 3, 4)))
static int fail(struct xs_parser *p, uint64_t at, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(p->msg, sizeof(p->msg), "stream byte %llu: ", (unsigned long long)at);

	va_start(ap, fmt);
	vsnprintf(p->msg + n, sizeof(p->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return p->err = -EBADMSG;
}

int xs_parser_init(struct xs_parser *p, xs_record_fn fn, void *ctx)
{
	memset(p, 0, sizeof(*p));
	p->fn = fn;
	p->ctx = ctx;
	p->state = S_HEADER;
	p->need = XS_HEADER_SIZE;
	p->xxh = XXH3_createState();
	if (!p->xxh)
		return p->err = -ENOMEM;
	XXH3_128bits_reset(p->xxh);
	return 0;
}

void xs_parser_free(struct xs_parser *p)
{
	if (p->xxh)
		XXH3_freeState(p->xxh);
	p->xxh = NULL;
}

/*
 * The n bytes gathered for a header after the end of a stream (multi),
 * when they cannot be one: too few (the input ended) or not the magic.
 * Named as what they most likely are: bytes that do not belong, after a
 * complete stream, not a damaged next stream.  false if not that case.
 */
static bool after_end(struct xs_parser *p, size_t n)
{
	size_t m = n < 8 ? n : 8;

	if (!p->multi || p->streams == 0)
		return false;
	if (memcmp(p->buf, XS_MAGIC, m) && n < XS_HEADER_SIZE)
		fail(p, p->pos - n, "%zu stray byte%s after the end of stream %llu (not a "
		     "stream: no magic)", n, n == 1 ? "" : "s", (unsigned long long)p->streams);
	else if (memcmp(p->buf, XS_MAGIC, m))
		/* A whole header's worth: more may follow, uncounted. */
		fail(p, p->pos - n, "stray bytes after the end of stream %llu (not a "
		     "stream: no magic)", (unsigned long long)p->streams);
	else
		fail(p, p->pos - n, "%zu byte%s after the end of stream %llu: a next stream "
		     "cut inside its header", n, n == 1 ? "" : "s", (unsigned long long)p->streams);
	return true;
}

static int got_header(struct xs_parser *p)
{
	const uint8_t *b = p->buf;
	struct xs_header *h = &p->h;
	const char *why;
	unsigned at;

	if (memcmp(b, XS_MAGIC, 8))
		return after_end(p, XS_HEADER_SIZE) ? p->err :
		       fail(p, 0, "bad magic (not an extent stream)");
	if (ubdk_get_le32(b + 8) != XS_VERSION)
		return fail(p, 8, "version %u (this reader knows %u)", ubdk_get_le32(b + 8), XS_VERSION);
	h->flags = ubdk_get_le32(b + 12);
	h->file_size = ubdk_get_le64(b + 16);
	h->chunk_size = ubdk_get_le32(b + 24);
	h->data_offset = ubdk_get_le64(b + 32);
	memcpy(h->point, b + 40, 16);
	memcpy(h->parent, b + 56, 16);
	/* Offsets in messages are of the whole input: this stream's start added. */
	if (!header_ok(h, &why, &at))
		return fail(p, p->pos - XS_HEADER_SIZE + at, "%s", why);
	if (ubdk_get_le32(b + 28) || ubdk_get_le64(b + 72))
		return fail(p, p->pos - XS_HEADER_SIZE + (ubdk_get_le32(b + 28) ? 28 : 72),
			    "reserved field not zero");
	p->state = S_HEAD;
	p->need = XS_HEAD_SIZE;
	return p->fn(p->ctx, h, XS_HEADER_CALL, 0, NULL);
}

static int got_head(struct xs_parser *p)
{
	uint64_t at = p->pos - XS_HEAD_SIZE;
	uint64_t off = ubdk_get_le64(p->buf), len = ubdk_get_le64(p->buf + 8);
	bool zero = len & XS_ZERO_BIT;

	if (off == XS_END_OFFSET) {
		if (len != p->records)
			return fail(p, at + 8, "the end record counts %llu records, the stream "
				    "has %llu", (unsigned long long)len,
				    (unsigned long long)p->records);
		p->state = S_END;
		p->have = 0;
		p->need = XS_END_SIZE - XS_HEAD_SIZE;
		return 0;
	}
	len &= ~XS_ZERO_BIT;
	if (off < p->next)
		return fail(p, at, "record at offset %llu out of order (the previous one ends "
			    "at %llu)", (unsigned long long)off, (unsigned long long)p->next);
	if (len == 0)
		return fail(p, at + 8, "%s record of length 0", zero ? "ZERO" : "DATA");
	if (!zero && len > XS_MAX_DATA)
		return fail(p, at + 8, "DATA record of %llu bytes (at most %u)",
			    (unsigned long long)len, XS_MAX_DATA);
	if (off > p->h.file_size || len > p->h.file_size - off)
		return fail(p, at, "record [%llu, +%llu) past file_size %llu",
			    (unsigned long long)off, (unsigned long long)len,
			    (unsigned long long)p->h.file_size);
	p->records++;
	p->next = off + len;
	p->have = 0;
	if (zero)
		return p->fn(p->ctx, &p->h, off, len, NULL);
	p->payload += len;
	p->rec_off = off;
	p->rec_left = len;
	p->state = S_DATA;
	return 0;
}

static int got_end(struct xs_parser *p)
{
	uint64_t payload = ubdk_get_le64(p->buf);
	XXH128_canonical_t c;

	if (payload != p->payload)
		return fail(p, p->pos - 24, "the end record counts %llu payload bytes, the "
			    "stream has %llu", (unsigned long long)payload,
			    (unsigned long long)p->payload);
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(p->xxh));
	memcpy(p->digest, p->buf + 8, 16);
	if (memcmp(c.digest, p->digest, 16)) {
		char want[33], got[33];

		xs_hex128(p->digest, want);
		xs_hex128(c.digest, got);
		return fail(p, p->pos - 16, "digest mismatch (stored %s, computed %s)", want, got);
	}
	p->state = S_DONE;
	if (!p->multi)
		return 0;
	/* The next stream, if any, starts from scratch: its own digest and counts. */
	p->streams++;
	p->state = S_HEADER;
	p->need = XS_HEADER_SIZE;
	p->records = p->payload = p->next = 0;
	XXH3_128bits_reset(p->xxh);
	return p->fn(p->ctx, &p->h, XS_END_CALL, 0, NULL);
}

/* len real bytes (not NULL). */
static int consume(struct xs_parser *p, const uint8_t *d, size_t len)
{
	int ret = 0;

	while (len > 0 && ret == 0) {
		size_t take;

		switch (p->state) {
		case S_DATA:
			take = p->rec_left < len ? (size_t)p->rec_left : len;
			XXH3_128bits_update(p->xxh, d, take);
			ret = p->fn(p->ctx, &p->h, p->rec_off, take, d);
			p->rec_off += take;
			p->rec_left -= take;
			if (p->rec_left == 0) {
				p->state = S_HEAD;
				p->need = XS_HEAD_SIZE;
			}
			break;
		case S_DONE:
			return fail(p, p->pos, "%zu bytes after the end record", len);
		default:
			take = p->need - p->have < len ? p->need - p->have : len;
			memcpy(p->buf + p->have, d, take);
			/* The end's last 16 bytes are the digest: not hashed. */
			if (p->state != S_END)
				XXH3_128bits_update(p->xxh, d, take);
			else if (p->have < 8)
				XXH3_128bits_update(p->xxh, d, take < 8 - p->have ? take : 8 - p->have);
			p->have += take;
			break;
		}
		p->pos += take;
		d += take;
		len -= take;
		if (ret == 0 && p->state != S_DATA && p->state != S_DONE && p->have == p->need) {
			int st = p->state;

			p->have = 0;
			ret = st == S_HEADER ? got_header(p) : st == S_HEAD ? got_head(p) : got_end(p);
		}
	}
	if (ret < 0 && !p->err)
		p->err = ret;
	return ret;
}

int xs_parser_feed(void *ctx, const uint8_t *data, size_t len)
{
	static const uint8_t zeros[65536];
	struct xs_parser *p = ctx;
	int ret = 0;

	if (p->err)
		return p->err;
	if (data)
		return consume(p, data, len);
	while (len > 0 && ret == 0) {
		size_t n = len < sizeof(zeros) ? len : sizeof(zeros);

		ret = consume(p, zeros, n);
		len -= n;
	}
	return ret;
}

int xs_parser_end(struct xs_parser *p, char *msg, size_t msglen)
{
	int ret = p->err;

	if (ret == 0 && p->state == S_HEADER && p->have > 0 && after_end(p, p->have))
		ret = p->err;
	if (ret == 0 && p->state != S_DONE &&
	    !(p->multi && p->streams > 0 && p->state == S_HEADER && p->have == 0))
		ret = fail(p, p->pos, "the stream ends %s", p->state == S_HEADER ?
			   "inside its header" : p->state == S_DATA ? "inside a DATA record" :
			   p->state == S_END ? "inside its end record" :
			   p->have ? "inside a record's head" :
			   "before its end record");
	if (ret == -EBADMSG && msg && msglen)
		snprintf(msg, msglen, "%s", p->msg);
	xs_parser_free(p);
	return ret;
}
