/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The extent stream (tools/backup/format/xstream.h) against docs/backup-format.md:
 * round trips (full and incremental, raw, LZ4 and gzip containers), a
 * stream that does not depend on how the writer's calls are cut, and
 * every kind of malformed stream the spec lists, each refused with the
 * byte offset of the problem.
 *   xs_test              exit 0 if all pass
 *   xs_test --seeds DIR  write the fuzz target's seed corpus into DIR
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pack.h"
#include "lz4_splice.h"
#include "stream.h"
#include "xstream.h"

#include <xxhash.h>

#include "../common/check.h"

/* A growing buffer as a sink. */
struct mem {
	uint8_t *p;
	size_t n, cap;
	size_t max_unit;                /* the longest piece the sink was given */
	int nulls;                      /* pieces given as NULL (must be none) */
};

static int mem_sink(void *ctx, const uint8_t *data, size_t len)
{
	struct mem *m = ctx;

	if (!data) {
		m->nulls++;
		return -EINVAL;
	}
	if (len > m->max_unit)
		m->max_unit = len;
	if (m->n + len > m->cap) {
		m->cap = (m->n + len) * 2;
		m->p = realloc(m->p, m->cap);
		if (!m->p)
			abort();
	}
	memcpy(m->p + m->n, data, len);
	m->n += len;
	return 0;
}

/* What a parser's records do to an image of the file. */
struct image {
	uint8_t *p;
	uint64_t size;
	struct xs_header h;
	int headers, datas, zeros;
	uint64_t last_end;
	int order_errors;
};

static int apply(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
		 const uint8_t *data)
{
	struct image *im = ctx;

	if (off == XS_HEADER_CALL) {
		im->headers++;
		im->h = *h;
		return 0;
	}
	if (off < im->last_end || off + len > im->size)
		im->order_errors++;
	else if (data)
		memcpy(im->p + off, data, len);
	else
		memset(im->p + off, 0, len);
	im->last_end = off + len;
	if (data)
		im->datas++;
	else
		im->zeros++;
	return 0;
}

static uint64_t rng = 88172645463325252ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* A file image: random data, zero 4 KiB blocks, a run past 4 MiB, a short tail. */
static uint8_t *make_image(size_t size)
{
	uint8_t *p = calloc(1, size);

	for (size_t off = 0; off < size; off += 4096) {
		size_t n = size - off < 4096 ? size - off : 4096;
		uint64_t r = next_rand();

		/* About a third of the blocks zero, except in [1 MiB, 7 MiB). */
		if (r % 3 == 0 && (off < (1U << 20) || off >= (7U << 20)))
			continue;
		for (size_t i = 0; i < n; i++)
			p[off + i] = (uint8_t)(next_rand() | 1);
		/* Some blocks zero but for a byte: not dropped. */
		if (r % 7 == 0)
			memset(p + off, 0, n - 1);
	}
	return p;
}

static struct xs_header header(uint64_t size, uint32_t flags)
{
	struct xs_header h = { .flags = flags, .chunk_size = XS_CHUNK_SIZE,
			       .file_size = size, .data_offset = 4608 };

	for (int i = 0; i < 16; i++) {
		h.point[i] = (uint8_t)(0xa0 + i);
		/* An incremental names its parent; a full stream has none. */
		h.parent[i] = flags & XS_FLAG_INCREMENTAL ? (uint8_t)(0x50 + i) : 0;
	}
	return h;
}

/* Write img as a stream in calls of `step` bytes (0: random sizes). */
static int write_stream(struct mem *m, const uint8_t *img, uint64_t size, uint32_t flags,
			size_t step, uint64_t *bytes, uint8_t digest[16])
{
	struct xs_header h = header(size, flags);
	struct xs_writer *w;
	uint64_t off = 0;
	int ret = xs_writer_open(&w, &h, mem_sink, m);

	if (ret < 0)
		return ret;
	while (off < size && ret == 0) {
		size_t n = step ? step : (size_t)(next_rand() % (next_rand() & 1 ? 9000 : 3U << 20)) + 1;

		if (n > size - off)
			n = (size_t)(size - off);
		ret = xs_data(w, off, img + off, n);
		off += n;
	}
	if (ret == 0)
		ret = xs_writer_finish(w, bytes, digest);
	xs_writer_free(w);
	return ret;
}

/* Parse s (fed in pieces of `step`, 0: all at once); 0 or the error, msg set. */
static int parse(const uint8_t *s, size_t n, size_t step, struct image *im, char *msg,
		 size_t msglen)
{
	struct xs_parser p;
	int ret = xs_parser_init(&p, apply, im);

	msg[0] = '\0';
	for (size_t at = 0; at < n && ret == 0;) {
		size_t k = step && step < n - at ? step : n - at;

		ret = xs_parser_feed(&p, s + at, k);
		at += k;
	}
	if (ret < 0) {
		snprintf(msg, msglen, "%s", p.msg);
		xs_parser_free(&p);
		return ret;
	}
	return xs_parser_end(&p, msg, msglen);
}

static void image_init(struct image *im, uint64_t size)
{
	memset(im, 0, sizeof(*im));
	im->size = size;
	im->p = calloc(1, size ? size : 1);
}

static void test_round_trip(void)
{
	const size_t size = 9 * (1U << 20) + 1234;
	uint8_t *img = make_image(size), d1[16], d2[16];
	struct mem a = { 0 }, b = { 0 };
	struct image im;
	uint64_t bytes = 0, nonzero = 0;
	char msg[256];
	int ret;

	for (size_t i = 0; i < size; i += 4096) {
		size_t n = size - i < 4096 ? size - i : 4096;

		for (size_t j = 0; j < n; j++)
			if (img[i + j]) {
				nonzero += n;
				break;
			}
	}
	ret = write_stream(&a, img, size, 0, 1U << 20, &bytes, d1);
	CHECK(ret == 0 && bytes == a.n, "write: %d, %llu of %zu bytes", ret,
	      (unsigned long long)bytes, a.n);
	CHECK(a.max_unit <= PACK_UNIT && a.nulls == 0, "sink got %zu-byte pieces", a.max_unit);
	/* The same bytes, whatever the calls: a canonical stream. */
	ret = write_stream(&b, img, size, 0, 0, NULL, d2);
	CHECK(ret == 0 && a.n == b.n && !memcmp(a.p, b.p, a.n) && !memcmp(d1, d2, 16),
	      "random call sizes give another stream (%zu vs %zu bytes)", a.n, b.n);
	b.n = 0;
	ret = write_stream(&b, img, size, 0, 4096 + 17, NULL, NULL);
	CHECK(ret == 0 && a.n == b.n && !memcmp(a.p, b.p, a.n), "odd call sizes differ");
	b.n = 0;
	ret = write_stream(&b, img, size, 0, 1, NULL, NULL);
	CHECK(ret == 0 && a.n == b.n && !memcmp(a.p, b.p, a.n), "1-byte calls differ");
	/* Only the non-zero blocks, with heads: size follows the data. */
	CHECK(a.n > nonzero && a.n < nonzero + nonzero / 100 + 4096,
	      "stream of %zu bytes for %llu of data", a.n, (unsigned long long)nonzero);
	CHECK(!memcmp(a.p + a.n - 16, d1, 16), "digest is the stream's last 16 bytes");
	for (size_t step = 0; step < 5; step++) {
		size_t feed = step == 0 ? 0 : step == 1 ? 1 : step == 2 ? 15 : step == 3 ? 4097 :
			      PACK_UNIT;

		image_init(&im, size);
		ret = parse(a.p, a.n, feed, &im, msg, sizeof(msg));
		CHECK(ret == 0, "parse in %zu-byte pieces: %d %s", feed, ret, msg);
		CHECK(im.headers == 1 && im.h.file_size == size && im.h.data_offset == 4608 &&
		      im.h.chunk_size == XS_CHUNK_SIZE && im.h.point[15] == 0xaf,
		      "header %d %llu", im.headers, (unsigned long long)im.h.file_size);
		CHECK(im.order_errors == 0 && im.zeros == 0, "order %d zeros %d",
		      im.order_errors, im.zeros);
		CHECK(!memcmp(im.p, img, size), "round trip differs (pieces of %zu)", feed);
		free(im.p);
	}
	free(a.p);
	free(b.p);
	free(img);
}

/* Records never span a multiple of 4 MiB and hold at most 4 MiB. */
static void test_record_limits(void)
{
	const size_t size = 10U << 20;
	uint8_t *img = malloc(size);
	struct mem a = { 0 };
	uint64_t expect[] = { 0, 4U << 20, 8U << 20 };
	int ret;

	memset(img, 0x5a, size);
	ret = write_stream(&a, img, size, 0, 3000, NULL, NULL);
	CHECK(ret == 0, "write %d", ret);
	for (size_t i = 0, at = XS_HEADER_SIZE; i < 3 && at + 16 <= a.n; i++) {
		uint64_t off = 0, len = 0;

		for (int k = 7; k >= 0; k--) {
			off = off << 8 | a.p[at + k];
			len = len << 8 | a.p[at + 8 + k];
		}
		CHECK(off == expect[i] && len == (i < 2 ? 4U << 20 : 2U << 20),
		      "record %zu at %llu, %llu bytes", i, (unsigned long long)off,
		      (unsigned long long)len);
		at += 16 + len;
	}
	CHECK(a.n == XS_HEADER_SIZE + 3 * 16 + size + XS_END_SIZE, "%zu bytes", a.n);
	free(a.p);
	free(img);
}

/* An incremental stream: zero pieces become merged ZERO records, xs_zero too. */
static void test_incremental(void)
{
	const size_t size = 1U << 20;
	uint8_t *img = calloc(1, size);
	struct xs_header h = header(size, XS_FLAG_INCREMENTAL);
	struct xs_writer *w;
	struct mem a = { 0 };
	struct image im;
	char msg[256];
	int ret;

	memset(img + 8192, 7, 4096);            /* data, 4 KiB */
	memset(img + 100000, 9, 10);             /* data in an unaligned piece */
	ret = xs_writer_open(&w, &h, mem_sink, &a);
	CHECK(ret == 0, "open %d", ret);
	ret = xs_data(w, 0, img, 65536);        /* zero, data, zero */
	if (ret == 0)
		ret = xs_zero(w, 65536, 4096);   /* merges with the zeros before */
	if (ret == 0)
		ret = xs_data(w, 65536 + 4096, img + 65536 + 4096, 131072 - 65536 - 4096);
	if (ret == 0)
		ret = xs_writer_finish(w, NULL, NULL);
	xs_writer_free(w);
	CHECK(ret == 0, "write %d", ret);
	image_init(&im, size);
	memset(im.p, 0xee, size);               /* the base: anything */
	ret = parse(a.p, a.n, 0, &im, msg, sizeof(msg));
	CHECK(ret == 0, "parse %d %s", ret, msg);
	CHECK(im.datas == 2 && im.zeros == 3, "%d DATA, %d ZERO records (want 2, 3)",
	      im.datas, im.zeros);
	CHECK(!memcmp(im.p, img, 131072), "incremental apply differs");
	CHECK(im.p[131072] == 0xee, "past the written range: changed");
	free(im.p);
	free(a.p);
	free(img);
}

static void test_writer_refuses(void)
{
	struct xs_header h = header(1U << 20, 0);
	struct xs_writer *w;
	struct mem a = { 0 };
	uint8_t b[4096] = { 1 };

	h.flags = 2;
	CHECK(xs_writer_open(&w, &h, mem_sink, &a) == -EINVAL, "unknown flags taken");
	h = header(1U << 20, 0);
	h.chunk_size = 65535;
	CHECK(xs_writer_open(&w, &h, mem_sink, &a) == -EINVAL, "chunk_size 65535 taken");
	h = header(1U << 20, 0);
	h.parent[3] = 1;
	CHECK(xs_writer_open(&w, &h, mem_sink, &a) == -EINVAL, "full stream with a parent taken");
	h = header(1U << 20, XS_FLAG_INCREMENTAL);
	memset(h.parent, 0, sizeof(h.parent));
	CHECK(xs_writer_open(&w, &h, mem_sink, &a) == -EINVAL, "incremental without parent taken");
	h = header(1U << 20, 0);
	CHECK(xs_writer_open(&w, &h, mem_sink, &a) == 0, "open");
	CHECK(xs_data(w, 8192, b, sizeof(b)) == 0, "data");
	CHECK(xs_data(w, 4096, b, sizeof(b)) == -EINVAL, "out of order taken");
	CHECK(xs_writer_finish(w, NULL, NULL) == -EINVAL, "finish after an error");
	xs_writer_free(w);
	CHECK(xs_writer_open(&w, &h, mem_sink, &a) == 0, "open");
	CHECK(xs_data(w, (1U << 20) - 100, b, 200) == -EINVAL, "past file_size taken");
	xs_writer_free(w);
	free(a.p);
}

/* A small valid stream to break: two DATA records. */
static struct mem small_stream(uint32_t flags)
{
	struct mem a = { 0 };
	uint8_t *img = calloc(1, 65536);

	memset(img + 4096, 1, 100);
	memset(img + 40000, 2, 5000);
	if (write_stream(&a, img, 65536, flags, 0, NULL, NULL) < 0)
		abort();
	free(img);
	return a;
}

static void put64(uint8_t *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

/* Refused, the message naming byte `at` and containing `what`. */
static void expect_bad(const char *name, const uint8_t *s, size_t n, uint64_t at,
		       const char *what)
{
	struct image im;
	char msg[256], want[64];
	int ret;

	image_init(&im, 65536);
	ret = parse(s, n, 0, &im, msg, sizeof(msg));
	snprintf(want, sizeof(want), "stream byte %llu: ", (unsigned long long)at);
	CHECK(ret == -EBADMSG && !strncmp(msg, want, strlen(want)) && strstr(msg, what),
	      "%s: %d \"%s\" (want \"%s...%s\")", name, ret, msg, want, what);
	free(im.p);
}

/* Rewrite the digest after an edit, so that only the edit is wrong. */
static void redigest(uint8_t *s, size_t n)
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(s, n - 16));
	memcpy(s + n - 16, c.digest, 16);
}

static void test_malformed(void)
{
	struct mem a = small_stream(0);
	size_t n = a.n;
	uint8_t *s = malloc(n + 64);
	/* The first record's head is at 80, its payload the 4 KiB block at 4096. */
	const size_t r2 = XS_HEADER_SIZE + 16 + 4096, end = n - XS_END_SIZE;

#define FRESH() memcpy(s, a.p, n)
	FRESH();
	s[3] ^= 1;
	expect_bad("magic", s, n, 0, "bad magic");
	FRESH();
	s[8] = 2;
	expect_bad("version", s, n, 8, "version 2");
	FRESH();
	s[12] = 4;
	expect_bad("flags", s, n, 12, "unknown flags");
	FRESH();
	s[29] = 1;
	expect_bad("reserved 28", s, n, 28, "reserved");
	FRESH();
	s[75] = 1;
	expect_bad("reserved 72", s, n, 72, "reserved");
	FRESH();
	s[60] = 1;
	expect_bad("parent of a full stream", s, n, 56, "a full stream with a parent");
	FRESH();
	s[12] = XS_FLAG_INCREMENTAL;
	expect_bad("incremental without parent", s, n, 56, "without a parent");
	FRESH();
	s[24] = 3;
	expect_bad("chunk_size", s, n, 24, "power of two");
	FRESH();
	s[23] = 0x80;
	expect_bad("file_size", s, n, 16, "2^63");
	/* Second record before the first one's end. */
	FRESH();
	put64(s + r2, 4096 + 50);
	redigest(s, n);
	expect_bad("order", s, n, r2, "out of order");
	/* DATA of length 0, ZERO of length 0. */
	FRESH();
	put64(s + r2 + 8, 0);
	expect_bad("data 0", s, n, r2 + 8, "DATA record of length 0");
	FRESH();
	put64(s + r2 + 8, XS_ZERO_BIT);
	expect_bad("zero 0", s, n, r2 + 8, "ZERO record of length 0");
	FRESH();
	put64(s + r2 + 8, (4U << 20) + 1);
	expect_bad("data > 4 MiB", s, n, r2 + 8, "at most");
	/* Past file_size, by a DATA record and a ZERO record. */
	FRESH();
	put64(s + r2, 65536 - 4000);
	expect_bad("past end", s, n, r2, "past file_size");
	FRESH();
	put64(s + r2 + 8, XS_ZERO_BIT | 65536);
	expect_bad("zero past end", s, n, r2, "past file_size");
	FRESH();
	put64(s + r2, UINT64_MAX - 10);
	expect_bad("offset wraps", s, n, r2, "past file_size");
	/* Counts and digest. */
	FRESH();
	s[end + 8]++;
	expect_bad("record count", s, n, end + 8, "records");
	FRESH();
	s[end + 16]++;
	redigest(s, n);
	expect_bad("payload count", s, n, end + 16, "payload bytes");
	FRESH();
	s[n - 1] ^= 0x40;
	expect_bad("digest", s, n, n - 16, "digest mismatch");
	FRESH();
	s[r2 + 16 + 7] ^= 1;                    /* a payload byte */
	expect_bad("payload", s, n, n - 16, "digest mismatch");
	/* Bytes after the end. */
	FRESH();
	s[n] = 0;
	expect_bad("trailing", s, n + 1, n, "after the end record");
	/* Every truncation is refused, at the byte where the stream stops. */
	for (size_t k = 0; k < n; k++) {
		struct image im;
		char msg[256], want[64];
		int ret;

		image_init(&im, 65536);
		ret = parse(a.p, k, 7, &im, msg, sizeof(msg));
		snprintf(want, sizeof(want), "stream byte %zu: the stream ends", k);
		CHECK(ret == -EBADMSG && !strncmp(msg, want, strlen(want)),
		      "cut at %zu: %d %s", k, ret, msg);
		free(im.p);
	}
	/* Every single-byte change is refused (the digest covers them all). */
	for (size_t k = 0; k < n; k++) {
		struct image im;
		char msg[256];

		FRESH();
		s[k] ^= 0x10;
		image_init(&im, 65536);
		CHECK(parse(s, n, 0, &im, msg, sizeof(msg)) == -EBADMSG,
		      "byte %zu changed: taken", k);
		free(im.p);
	}
#undef FRESH
	free(s);
	free(a.p);
}

/* NULL units (how decompressors pass zeros) are zero bytes to the parser. */
static void test_null_feed(void)
{
	struct mem a = small_stream(0);
	struct xs_parser p;
	struct image im;
	char msg[256];
	int ret;

	image_init(&im, 65536);
	ret = xs_parser_init(&p, apply, &im);
	/* A stream of zeros: the magic is wrong at byte 0. */
	if (ret == 0)
		ret = xs_parser_feed(&p, NULL, 100);
	CHECK(ret == -EBADMSG && strstr(p.msg, "stream byte 0: bad magic"), "%d %s", ret, p.msg);
	CHECK(xs_parser_end(&p, msg, sizeof(msg)) == -EBADMSG, "end after an error");
	free(im.p);
	free(a.p);
}

/* A callback's error stops the parser and is returned as is. */
static int refuse(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
		  const uint8_t *data)
{
	(void)ctx, (void)h, (void)len, (void)data;
	return off == XS_HEADER_CALL ? 0 : -ENOSPC;
}

static void test_callback_error(void)
{
	struct mem a = small_stream(0);
	struct xs_parser p;
	char msg[64];

	CHECK(xs_parser_init(&p, refuse, NULL) == 0, "init");
	CHECK(xs_parser_feed(&p, a.p, a.n) == -ENOSPC, "callback error lost");
	CHECK(xs_parser_feed(&p, a.p, 1) == -ENOSPC, "not sticky");
	CHECK(xs_parser_end(&p, msg, sizeof(msg)) == -ENOSPC, "end");
	free(a.p);
}

/* What a multi parser saw: headers and ends in order. */
struct multi_seen {
	struct image im;
	int ends;
	uint8_t points[4][16], parents[4][16];
};

static int multi_apply(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
		       const uint8_t *data)
{
	struct multi_seen *m = ctx;

	if (off == XS_END_CALL) {
		m->ends++;
		return 0;
	}
	if (off == XS_HEADER_CALL && m->im.headers < 4) {
		memcpy(m->points[m->im.headers], h->point, 16);
		memcpy(m->parents[m->im.headers], h->parent, 16);
	}
	/* Each stream's records are in order by themselves: start over. */
	if (off == XS_HEADER_CALL)
		m->im.last_end = 0;
	return apply(&m->im, h, off, len, data);
}

/*
 * Streams one after another (multi): a full one, then an incremental
 * over it; each header and end reported, the result the second image.
 * Without multi the same bytes are refused after the first end; a cut
 * between or inside streams is refused, at the byte.
 */
static void test_multi(void)
{
	struct mem full = small_stream(0), incr = small_stream(XS_FLAG_INCREMENTAL), both = { 0 };
	struct multi_seen m;
	struct xs_parser p;
	char msg[256];
	int ret;

	mem_sink(&both, full.p, full.n);
	mem_sink(&both, incr.p, incr.n);
	for (size_t step = 1; step <= 7919; step = step * 7 + 3) {
		memset(&m, 0, sizeof(m));
		image_init(&m.im, 65536);
		ret = xs_parser_init(&p, multi_apply, &m);
		p.multi = true;
		for (size_t at = 0; ret == 0 && at < both.n; at += step)
			ret = xs_parser_feed(&p, both.p + at, both.n - at < step ? both.n - at : step);
		if (ret == 0)
			ret = xs_parser_end(&p, msg, sizeof(msg));
		else
			xs_parser_free(&p);
		CHECK(ret == 0 && m.im.headers == 2 && m.ends == 2 && p.streams == 2 &&
		      m.im.order_errors == 0, "multi, step %zu: %d headers %d ends %d",
		      step, ret, m.im.headers, m.ends);
		CHECK(!memcmp(m.parents[1], (uint8_t[16]){ 0x50, 0x51, 0x52, 0x53, 0x54, 0x55,
				0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f }, 16),
		      "the second header's parent");
		free(m.im.p);
	}
	/* The same bytes to a parser of one stream: trailing bytes. */
	memset(&m, 0, sizeof(m));
	image_init(&m.im, 65536);
	ret = parse(both.p, both.n, 0, &m.im, msg, sizeof(msg));
	{
		char want[64];

		snprintf(want, sizeof(want), "stream byte %zu: %zu bytes after the end record",
			 full.n, incr.n);
		CHECK(ret == -EBADMSG && strstr(msg, want), "one-stream parser: %d %s", ret, msg);
	}
	free(m.im.p);
	/* Cut between the streams, and inside the second one's header. */
	for (size_t cut = full.n; cut <= full.n + 10; cut += 10) {
		memset(&m, 0, sizeof(m));
		image_init(&m.im, 65536);
		ret = xs_parser_init(&p, multi_apply, &m);
		p.multi = true;
		if (ret == 0)
			ret = xs_parser_feed(&p, both.p, cut);
		if (ret == 0)
			ret = xs_parser_end(&p, msg, sizeof(msg));
		else
			xs_parser_free(&p);
		if (cut == full.n)
			CHECK(ret == 0 && m.ends == 1, "cut after the first stream: %d %s", ret, msg);
		else
			CHECK(ret == -EBADMSG && strstr(msg, "inside its header"),
			      "cut inside the second header: %d %s", ret, msg);
		free(m.im.p);
	}
	/* One stray byte after a whole stream: named as that, at its byte. */
	{
		char want[96];
		uint8_t x = full.p[0] ^ 0xff;

		memset(&m, 0, sizeof(m));
		image_init(&m.im, 65536);
		ret = xs_parser_init(&p, multi_apply, &m);
		p.multi = true;
		if (ret == 0)
			ret = xs_parser_feed(&p, full.p, full.n);
		if (ret == 0)
			ret = xs_parser_feed(&p, &x, 1);
		if (ret == 0)
			ret = xs_parser_end(&p, msg, sizeof(msg));
		else
			xs_parser_free(&p);
		snprintf(want, sizeof(want), "stream byte %zu: 1 stray byte after the end of "
			 "stream 1 (not a stream: no magic)", full.n);
		CHECK(ret == -EBADMSG && !strcmp(msg, want), "a stray byte: %d %s", ret, msg);
		free(m.im.p);
	}
	/* A bad field of the second header is named at its byte in the whole input. */
	both.p[full.n + 75] = 1;
	memset(&m, 0, sizeof(m));
	image_init(&m.im, 65536);
	ret = xs_parser_init(&p, multi_apply, &m);
	p.multi = true;
	if (ret == 0)
		ret = xs_parser_feed(&p, both.p, both.n);
	xs_parser_end(&p, msg, sizeof(msg));
	{
		char want[64];

		snprintf(want, sizeof(want), "stream byte %zu: reserved", full.n + 72);
		CHECK(ret == -EBADMSG && strstr(msg, want), "second header: %d %s", ret, msg);
	}
	free(m.im.p);
	free(full.p);
	free(incr.p);
	free(both.p);
}

/* Through the packers into a file, and back with xs_read_fd_ex. */
static void test_containers(void)
{
	const size_t size = 5 * (1U << 20) + 999;
	uint8_t *img = make_image(size), digest[16], got_digest[16];
	char path[] = "/tmp/xs_test.XXXXXX", msg[256];
	int fmts[] = { PACK_NONE, PACK_LZ4, PACK_GZIP };

	for (int i = 0; i < 3; i++) {
		int fd = mkstemp(path), fmt = -2, ret;
		struct xs_header h = header(size, 0), hin;
		struct packer *pk = NULL;
		struct xs_writer *w;
		struct image im;

		if (fd < 0)
			abort();
		unlink(path);
		strcpy(path, "/tmp/xs_test.XXXXXX");
		ret = fmts[i] ? packer_open(&pk, fmts[i], 0, fd, LZ4S_NO_SIZE) : 0;
		if (ret == 0)
			ret = pk ? xs_writer_open(&w, &h, packer_unit, pk) :
			      xs_writer_open(&w, &h, xs_fd_sink, &fd);
		for (size_t off = 0; ret == 0 && off < size; off += 300000)
			ret = xs_data(w, off, img + off, size - off < 300000 ? size - off : 300000);
		if (ret == 0)
			ret = xs_writer_finish(w, NULL, digest);
		if (ret == 0 && pk)
			ret = packer_finish(pk, NULL);
		xs_writer_free(w);
		packer_free(pk);
		CHECK(ret == 0, "%s: write %d", pack_name(fmts[i]), ret);
		image_init(&im, size);
		lseek(fd, 0, SEEK_SET);
		ret = xs_read_fd_ex(fd, apply, &im, &hin, &fmt, got_digest, NULL, msg, sizeof(msg));
		CHECK(ret == 0 && fmt == fmts[i] && hin.file_size == size &&
		      !memcmp(digest, got_digest, 16) && !memcmp(im.p, img, size),
		      "%s: read %d fmt %d %s", pack_name(fmts[i]), ret, fmt, msg);
		/* Cut short inside the container: refused with a message. */
		if (ftruncate(fd, lseek(fd, 0, SEEK_END) - 20) == 0) {
			memset(im.p, 0, size);
			lseek(fd, 0, SEEK_SET);
			ret = xs_read_fd(fd, apply, &im, NULL, msg, sizeof(msg));
			CHECK(ret == -EBADMSG && msg[0], "%s cut: %d \"%s\"", pack_name(fmts[i]),
			      ret, msg);
		}
		free(im.p);
		close(fd);
	}
	free(img);
}

/*
 * Seeds for the fuzz target: valid streams of each kind, from the writer,
 * each after the target's first byte (how to feed it: pieces of 8 bytes;
 * top bit: streams may follow each other, as in seed-chain).
 */
static int write_seeds(const char *dir)
{
	struct { const char *name; uint8_t how; struct mem m; } seeds[4];
	struct mem incr;
	char path[4096];

	seeds[0].name = "seed-full";
	seeds[0].how = 7;
	seeds[0].m = small_stream(0);
	seeds[1].name = "seed-incremental";
	seeds[1].how = 7;
	seeds[1].m = small_stream(XS_FLAG_INCREMENTAL);
	seeds[2].name = "seed-empty";
	seeds[2].how = 7;
	memset(&seeds[2].m, 0, sizeof(seeds[2].m));
	{
		uint8_t z[16] = { 0 };

		if (write_stream(&seeds[2].m, z, 16, 0, 16, NULL, NULL) < 0)
			return 1;
	}
	seeds[3].name = "seed-chain";
	seeds[3].how = 0x80 | 7;
	seeds[3].m = small_stream(0);
	incr = small_stream(XS_FLAG_INCREMENTAL);
	mem_sink(&seeds[3].m, incr.p, incr.n);
	free(incr.p);
	for (int i = 0; i < 4; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, seeds[i].name);
		f = fopen(path, "wb");
		if (!f || fputc(seeds[i].how, f) == EOF ||
		    fwrite(seeds[i].m.p, 1, seeds[i].m.n, f) != seeds[i].m.n || fclose(f) != 0) {
			fprintf(stderr, "xs_test: %s: cannot write: %s\n", path, strerror(errno));
			return 1;
		}
		free(seeds[i].m.p);
	}
	return 0;
}

/*
 * `xs_test --stream DATA_OFFSET <FILE >STREAM`: a full stream of FILE's
 * bytes with any header data offset, for shell tests of what a restore
 * must refuse (streams no backup writes: an empty file, not a COW file).
 */
static int stream_of_stdin(const char *data_offset)
{
	struct mem in = { 0 };
	struct xs_header h = { .chunk_size = XS_CHUNK_SIZE };
	struct xs_writer *w;
	uint8_t buf[65536];
	size_t got;
	int out = 1, ret;

	while ((got = fread(buf, 1, sizeof(buf), stdin)) > 0)
		mem_sink(&in, buf, got);
	h.file_size = in.n;
	h.data_offset = strtoull(data_offset, NULL, 0);
	ret = xs_writer_open(&w, &h, xs_fd_sink, &out);
	if (ret == 0 && in.n)
		ret = xs_data(w, 0, in.p, in.n);
	if (ret == 0)
		ret = xs_writer_finish(w, NULL, NULL);
	xs_writer_free(w);
	free(in.p);
	if (ret < 0)
		fprintf(stderr, "xs_test: --stream: %s\n", strerror(-ret));
	return ret < 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--seeds"))
		return write_seeds(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "--stream"))
		return stream_of_stdin(argv[2]);
	test_round_trip();
	test_record_limits();
	test_incremental();
	test_writer_refuses();
	test_malformed();
	test_null_feed();
	test_callback_error();
	test_multi();
	test_containers();
	if (failures) {
		fprintf(stderr, "xs_test: %d failures\n", failures);
		return 1;
	}
	printf("extent stream tests: all passed\n");
	return 0;
}
