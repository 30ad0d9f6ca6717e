/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "pack.h"
#include "extent.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <lz4frame.h>
#include <lz4hc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_CLMUL 1
#endif

#define OUTBUF (4U << 20)

const char *pack_name(int format)
{
	return format == PACK_LZ4 ? "lz4" : format == PACK_GZIP ? "gzip" : "none";
}

const char *pack_suffix(int format)
{
	return format == PACK_LZ4 ? ".lz4" : format == PACK_GZIP ? ".gz" : "";
}

int pack_parse(const char *s)
{
	if (!strcmp(s, "lz4"))
		return PACK_LZ4;
	if (!strcmp(s, "gzip") || !strcmp(s, "gz"))
		return PACK_GZIP;
	if (!strcmp(s, "none"))
		return PACK_NONE;
	return -1;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	if (n < 16) {
		for (size_t i = 0; i < n; i++)
			if (p[i])
				return false;
		return true;
	}
	for (int i = 0; i < 16; i++)
		if (p[i])
			return false;
	return memcmp(p, p + 16, n - 16) == 0;
}

static const uint8_t *zeros(void)
{
	static uint8_t *z;

	if (!z)
		z = calloc(1, PACK_UNIT);
	return z;
}

/* --- checksums ----------------------------------------------------------- */

#ifdef HAVE_CLMUL
/*
 * CRC-32 (the gzip polynomial, reflected) by folding 64 bytes at a time
 * with carry-less multiplication, then Barrett reduction ("Fast CRC
 * Computation for Generic Polynomials Using PCLMULQDQ", Gopal et al.).
 * len >= 64 and a multiple of 16; crc is the inverted running value.
 */
__attribute__((target("pclmul,sse4.1")))
static uint32_t crc32_clmul(const uint8_t *buf, size_t len, uint32_t crc)
{
	static const uint64_t k1k2[2] __attribute__((aligned(16))) = { 0x0154442bd4, 0x01c6e41596 };
	static const uint64_t k3k4[2] __attribute__((aligned(16))) = { 0x01751997d0, 0x00ccaa009e };
	static const uint64_t k5k0[2] __attribute__((aligned(16))) = { 0x0163cd6124, 0 };
	static const uint64_t poly[2] __attribute__((aligned(16))) = { 0x01db710641, 0x01f7011641 };
	__m128i x0, x1, x2, x3, x4, x5, x6, x7, x8;

	x1 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
	x2 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
	x3 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
	x4 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
	x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
	x0 = _mm_load_si128((const __m128i *)k1k2);
	buf += 64;
	len -= 64;
	while (len >= 64) {
		x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
		x6 = _mm_clmulepi64_si128(x2, x0, 0x00);
		x7 = _mm_clmulepi64_si128(x3, x0, 0x00);
		x8 = _mm_clmulepi64_si128(x4, x0, 0x00);
		x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
		x2 = _mm_clmulepi64_si128(x2, x0, 0x11);
		x3 = _mm_clmulepi64_si128(x3, x0, 0x11);
		x4 = _mm_clmulepi64_si128(x4, x0, 0x11);
		x1 = _mm_xor_si128(_mm_xor_si128(x1, x5), _mm_loadu_si128((const __m128i *)(buf + 0x00)));
		x2 = _mm_xor_si128(_mm_xor_si128(x2, x6), _mm_loadu_si128((const __m128i *)(buf + 0x10)));
		x3 = _mm_xor_si128(_mm_xor_si128(x3, x7), _mm_loadu_si128((const __m128i *)(buf + 0x20)));
		x4 = _mm_xor_si128(_mm_xor_si128(x4, x8), _mm_loadu_si128((const __m128i *)(buf + 0x30)));
		buf += 64;
		len -= 64;
	}
	/* Fold the four lanes into one. */
	x0 = _mm_load_si128((const __m128i *)k3k4);
	x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
	x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, x0, 0x11), x2), x5);
	x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
	x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, x0, 0x11), x3), x5);
	x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
	x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, x0, 0x11), x4), x5);
	while (len >= 16) {
		x2 = _mm_loadu_si128((const __m128i *)buf);
		x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
		x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, x0, 0x11), x2), x5);
		buf += 16;
		len -= 16;
	}
	/* 128 bits to 64. */
	x2 = _mm_clmulepi64_si128(x1, x0, 0x10);
	x3 = _mm_setr_epi32(~0, 0, ~0, 0);
	x1 = _mm_srli_si128(x1, 8);
	x1 = _mm_xor_si128(x1, x2);
	x0 = _mm_loadl_epi64((const __m128i *)k5k0);
	x2 = _mm_srli_si128(x1, 4);
	x1 = _mm_and_si128(x1, x3);
	x1 = _mm_clmulepi64_si128(x1, x0, 0x00);
	x1 = _mm_xor_si128(x1, x2);
	/* Barrett reduction to 32 bits. */
	x0 = _mm_load_si128((const __m128i *)poly);
	x2 = _mm_and_si128(x1, x3);
	x2 = _mm_clmulepi64_si128(x2, x0, 0x10);
	x2 = _mm_and_si128(x2, x3);
	x2 = _mm_clmulepi64_si128(x2, x0, 0x00);
	x1 = _mm_xor_si128(x1, x2);
	return (uint32_t)_mm_extract_epi32(x1, 1);
}

static int have_clmul = -1;
#endif

/* zlib's crc32 where the CPU cannot do better. */
static unsigned long crc_update(unsigned long crc, const uint8_t *p, size_t n)
{
#ifdef HAVE_CLMUL
	if (have_clmul < 0) {
		unsigned a, b, c, d;

		have_clmul = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_PCLMUL) &&
			     (c & bit_SSE4_1) && !getenv("UBDK_CRC_GENERIC");
	}
	if (have_clmul && n >= 64) {
		size_t chunk = n & ~(size_t)15;

		crc = ~crc32_clmul(p, chunk, ~(uint32_t)crc) & 0xffffffffUL;
		p += chunk;
		n -= chunk;
	}
#endif
	return n ? crc32_z(crc, p, n) : crc;
}

void sums_init(struct pack_sums *s)
{
	memset(s, 0, sizeof(*s));
	s->crc = crc32(0L, Z_NULL, 0);
	sha256_init(&s->tree);
}

/* CRC-32 and SHA-256 of a full unit of zeros, computed once. */
static unsigned long zero_crc;
static uint8_t zero_leaf[32];
static bool zero_ready;

static void zero_sums(void)
{
	struct sha256 c;

	if (zero_ready)
		return;
	zero_crc = crc32_z(crc32(0L, Z_NULL, 0), zeros(), PACK_UNIT);
	sha256_init(&c);
	sha256_update(&c, zeros(), PACK_UNIT);
	sha256_final(&c, zero_leaf);
	zero_ready = true;
}

void sums_unit(struct pack_sums *s, const uint8_t *data, size_t len)
{
	uint8_t leaf[32];
	struct sha256 c;

	if (!data && len == PACK_UNIT) {
		zero_sums();
		s->crc = crc32_combine(s->crc, zero_crc, (z_off_t)len);
		memcpy(leaf, zero_leaf, 32);
	} else {
		if (!data)
			data = zeros();
		s->crc = crc_update(s->crc, data, len);
		sha256_init(&c);
		sha256_update(&c, data, len);
		sha256_final(&c, leaf);
	}
	sha256_update(&s->tree, leaf, 32);
	s->len += len;
}

void sums_final(struct pack_sums *s)
{
	uint8_t d[32];

	snprintf(s->crc_hex, sizeof(s->crc_hex), "%08lx", s->crc & 0xffffffffUL);
	sha256_final(&s->tree, d);
	sha256_hex(d, s->sha_hex);
}

/* --- reading a file as units --------------------------------------------- */

int pack_stream_fd(int fd, uint64_t size, unit_fn fn, void *ctx,
		   volatile sig_atomic_t *intr)
{
	uint8_t *buf = malloc(PACK_UNIT);
	struct extent_iter it;
	/* [data, data_end): the first data extent that ends past off. */
	uint64_t off = 0, data = 0, data_end = 0, data_len;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	extent_iter_init(&it, fd, 0, size);
	while (off < size && ret == 0) {
		size_t len = size - off < PACK_UNIT ? (size_t)(size - off) : PACK_UNIT;

		if (intr && *intr) {
			ret = -EINTR;
			break;
		}
		/* A walk that fails gives the rest as data: reading it is safe. */
		while (data_end <= off) {
			if (extent_next(&it, &data, &data_len) == 0) {
				data = data_end = size;
				break;
			}
			data_end = data + data_len;
		}
		if (data >= off + len) {
			ret = fn(ctx, NULL, len);
		} else {
			size_t got = 0;

			while (got < len) {
				ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));

				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0) {
					ret = -errno;
					break;
				}
				if (n == 0) {
					memset(buf + got, 0, len - got);
					break;
				}
				got += (size_t)n;
			}
			if (ret == 0)
				ret = fn(ctx, all_zero(buf, len) ? NULL : buf, len);
		}
		off += len;
	}
	free(buf);
	return ret;
}

/* --- xxHash32, for the LZ4 frame ----------------------------------------- */

#define XP1 2654435761U
#define XP2 2246822519U
#define XP3 3266489917U
#define XP4 668265263U
#define XP5 374761393U

struct xxh32 {
	uint32_t v[4];
	uint64_t total;
	uint8_t mem[16];
	unsigned memsize;
};

static inline uint32_t rotl32(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint32_t xround(uint32_t acc, uint32_t in)
{
	return rotl32(acc + in * XP2, 13) * XP1;
}

static void xxh_init(struct xxh32 *x)
{
	memset(x, 0, sizeof(*x));
	x->v[0] = XP1 + XP2;
	x->v[1] = XP2;
	x->v[2] = 0;
	x->v[3] = 0U - XP1;
}

static void xxh_stripes(struct xxh32 *x, const uint8_t *p, size_t n)
{
	uint32_t v0 = x->v[0], v1 = x->v[1], v2 = x->v[2], v3 = x->v[3];

	for (; n >= 16; n -= 16, p += 16) {
		v0 = xround(v0, rd32(p));
		v1 = xround(v1, rd32(p + 4));
		v2 = xround(v2, rd32(p + 8));
		v3 = xround(v3, rd32(p + 12));
	}
	x->v[0] = v0; x->v[1] = v1; x->v[2] = v2; x->v[3] = v3;
}

/* data NULL: n zero bytes, without touching memory. */
static void xxh_update(struct xxh32 *x, const uint8_t *p, size_t n)
{
	x->total += n;
	if (x->memsize) {
		size_t take = 16 - x->memsize < n ? 16 - x->memsize : n;

		if (p)
			memcpy(x->mem + x->memsize, p, take);
		else
			memset(x->mem + x->memsize, 0, take);
		x->memsize += (unsigned)take;
		n -= take;
		if (p)
			p += take;
		if (x->memsize < 16)
			return;
		xxh_stripes(x, x->mem, 16);
		x->memsize = 0;
	}
	if (p) {
		xxh_stripes(x, p, n & ~(size_t)15);
		p += n & ~(size_t)15;
	} else {
		uint32_t v0 = x->v[0], v1 = x->v[1], v2 = x->v[2], v3 = x->v[3];

		for (size_t k = n / 16; k > 0; k--) {
			v0 = rotl32(v0, 13) * XP1;
			v1 = rotl32(v1, 13) * XP1;
			v2 = rotl32(v2, 13) * XP1;
			v3 = rotl32(v3, 13) * XP1;
		}
		x->v[0] = v0; x->v[1] = v1; x->v[2] = v2; x->v[3] = v3;
	}
	n &= 15;
	if (p)
		memcpy(x->mem, p, n);
	else
		memset(x->mem, 0, n);
	x->memsize = (unsigned)n;
}

static uint32_t xxh_digest(const struct xxh32 *x)
{
	const uint8_t *p = x->mem, *end = x->mem + x->memsize;
	uint32_t h;

	if (x->total >= 16)
		h = rotl32(x->v[0], 1) + rotl32(x->v[1], 7) + rotl32(x->v[2], 12) +
		    rotl32(x->v[3], 18);
	else
		h = XP5;
	h += (uint32_t)x->total;
	for (; p + 4 <= end; p += 4)
		h = rotl32(h + rd32(p) * XP3, 17) * XP4;
	for (; p < end; p++)
		h = rotl32(h + *p * XP5, 11) * XP1;
	h ^= h >> 15;
	h *= XP2;
	h ^= h >> 13;
	h *= XP3;
	h ^= h >> 16;
	return h;
}

static uint32_t xxh32(const void *p, size_t n)
{
	struct xxh32 x;

	xxh_init(&x);
	xxh_update(&x, p, n);
	return xxh_digest(&x);
}

/* --- compressors --------------------------------------------------------- */

struct packer {
	int format, level, fd;
	uint64_t bytes;                 /* written so far */
	uint8_t *out;                   /* output buffer */
	size_t outn;
	uint8_t *block;                 /* lz4: one compressed block */
	uint8_t *zero_block;            /* compressed full unit of zeros */
	size_t zero_len;
	z_stream z;                     /* gzip: raw deflate */
	bool z_open, z_dirty;           /* z_dirty: data since the last flush */
	unsigned long crc;              /* gzip: CRC-32 of the content */
	uint64_t total;
};

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -ENOSPC;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int out_flush(struct packer *p)
{
	int ret = write_all(p->fd, p->out, p->outn);

	p->outn = 0;
	return ret;
}

static int out_put(struct packer *p, const void *data, size_t n)
{
	int ret;

	if (p->outn + n > OUTBUF) {
		ret = out_flush(p);
		if (ret < 0)
			return ret;
	}
	if (n > OUTBUF) {
		p->bytes += n;
		return write_all(p->fd, data, n);
	}
	memcpy(p->out + p->outn, data, n);
	p->outn += n;
	p->bytes += n;
	return 0;
}

static void le32(uint8_t *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

/* One LZ4 block: size, data (compressed, or stored if that is no smaller), checksum. */
static size_t lz4_block(const struct packer *p, const uint8_t *src, size_t len,
			uint8_t *dst)
{
	int c;

	if (p->level >= 3)
		c = LZ4_compress_HC((const char *)src, (char *)dst + 4, (int)len,
				    (int)len - 1, p->level);
	else
		c = LZ4_compress_fast((const char *)src, (char *)dst + 4, (int)len,
				      (int)len - 1, 1);
	if (c <= 0) {
		le32(dst, (uint32_t)len | 0x80000000U);
		memcpy(dst + 4, src, len);
		c = (int)len;
	} else {
		le32(dst, (uint32_t)c);
	}
	le32(dst + 4 + c, xxh32(dst + 4, (size_t)c));
	return (size_t)c + 8;
}

static int gz_run(struct packer *p, int flush)
{
	int zr;

	do {
		if (p->outn == OUTBUF) {
			int ret = out_flush(p);

			if (ret < 0)
				return ret;
		}
		p->z.next_out = p->out + p->outn;
		p->z.avail_out = (uInt)(OUTBUF - p->outn);
		zr = deflate(&p->z, flush);
		if (zr == Z_STREAM_ERROR)
			return -EIO;
		p->bytes += (OUTBUF - p->outn) - p->z.avail_out;
		p->outn = OUTBUF - p->z.avail_out;
	} while (p->z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
	return 0;
}

/*
 * A unit of zeros deflated on its own and ended by a full flush: byte
 * aligned and referring to nothing before it, so it can stand anywhere the
 * main stream was fully flushed.  One per level, made once.
 */
static const uint8_t *gz_zero_template(int level, size_t *len)
{
	static uint8_t *tmpl[10];
	static size_t tlen[10];
	z_stream zz;
	uint8_t *zb;

	if (level < 1 || level > 9 || !zeros())
		return NULL;
	if (tmpl[level]) {
		*len = tlen[level];
		return tmpl[level];
	}
	memset(&zz, 0, sizeof(zz));
	zb = malloc(PACK_UNIT);
	if (!zb || deflateInit2(&zz, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(zb);
		return NULL;
	}
	zz.next_in = (Bytef *)zeros();
	zz.avail_in = PACK_UNIT;
	zz.next_out = zb;
	zz.avail_out = PACK_UNIT;
	if (deflate(&zz, Z_FULL_FLUSH) != Z_OK || zz.avail_in != 0 || zz.avail_out == 0) {
		deflateEnd(&zz);
		free(zb);
		return NULL;
	}
	deflateEnd(&zz);
	tlen[level] = PACK_UNIT - zz.avail_out;
	tmpl[level] = zb;
	*len = tlen[level];
	return zb;
}

int packer_open(struct packer **out, int format, int level, int outfd,
		uint64_t content_size)
{
	struct packer *p = calloc(1, sizeof(*p));
	int ret = 0;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->format = format;
	p->fd = outfd;
	p->out = malloc(OUTBUF);
	if (!p->out) {
		free(p);
		return -ENOMEM;
	}
	if (format == PACK_LZ4) {
		uint8_t hdr[15];

		p->level = level;
		p->block = malloc(PACK_UNIT + 8);
		p->zero_block = malloc(PACK_UNIT + 8);
		if (!p->block || !p->zero_block || !zeros()) {
			packer_free(p);
			return -ENOMEM;
		}
		p->zero_len = lz4_block(p, zeros(), PACK_UNIT, p->zero_block);
		le32(hdr, 0x184D2204U);
		/*
		 * Version 01, independent blocks, block checksums, content
		 * size; blocks of at most 1 MiB.  No content checksum: it
		 * would have to hash every zero of the holes (the manifest's
		 * checksums cover the content).
		 */
		hdr[4] = 0x40 | 0x20 | 0x10 | 0x08;
		hdr[5] = 6 << 4;
		for (int i = 0; i < 8; i++)
			hdr[6 + i] = (uint8_t)(content_size >> (8 * i));
		hdr[14] = (uint8_t)(xxh32(hdr + 4, 10) >> 8);
		ret = out_put(p, hdr, sizeof(hdr));
	} else {
		uint8_t hdr[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };

		p->level = level > 0 ? level : 6;
		if (p->level > 9)
			p->level = 9;
		/* XFL as gzip sets it; a restore takes the level from it. */
		hdr[8] = p->level == 9 ? 2 : p->level == 1 ? 4 : 0;
		if (deflateInit2(&p->z, p->level, Z_DEFLATED, -15, 8,
				 Z_DEFAULT_STRATEGY) != Z_OK) {
			packer_free(p);
			return -ENOMEM;
		}
		p->z_open = true;
		p->crc = crc32(0L, Z_NULL, 0);
		if (!gz_zero_template(p->level, &p->zero_len)) {
			packer_free(p);
			return -ENOMEM;
		}
		ret = out_put(p, hdr, sizeof(hdr));
	}
	if (ret < 0) {
		packer_free(p);
		return ret;
	}
	*out = p;
	return 0;
}

static void gz_crc_zero_unit(struct packer *p)
{
	zero_sums();
	p->crc = crc32_combine(p->crc, zero_crc, PACK_UNIT);
}

int packer_unit(void *ctx, const uint8_t *data, size_t len)
{
	struct packer *p = ctx;
	int ret;

	p->total += len;
	if (p->format == PACK_LZ4) {
		if (!data && len == PACK_UNIT)
			return out_put(p, p->zero_block, p->zero_len);
		return out_put(p, p->block, lz4_block(p, data ? data : zeros(), len, p->block));
	}
	if (!data && len == PACK_UNIT) {
		if (p->z_dirty) {
			ret = gz_run(p, Z_FULL_FLUSH);
			if (ret < 0)
				return ret;
			p->z_dirty = false;
		}
		gz_crc_zero_unit(p);
		return out_put(p, gz_zero_template(p->level, &p->zero_len), p->zero_len);
	}
	if (!data)
		data = zeros();
	p->crc = crc_update(p->crc, data, len);
	p->z.next_in = (Bytef *)data;
	p->z.avail_in = (uInt)len;
	p->z_dirty = true;
	return gz_run(p, Z_NO_FLUSH);
}

int packer_finish(struct packer *p, uint64_t *bytes)
{
	uint8_t tail[8];
	int ret;

	if (p->format == PACK_LZ4) {
		le32(tail, 0);
		ret = out_put(p, tail, 4);
	} else {
		p->z.next_in = NULL;
		p->z.avail_in = 0;
		ret = gz_run(p, Z_FINISH);
		le32(tail, (uint32_t)p->crc);
		le32(tail + 4, (uint32_t)p->total);
		if (ret == 0)
			ret = out_put(p, tail, 8);
	}
	if (ret == 0)
		ret = out_flush(p);
	if (bytes)
		*bytes = p->bytes;
	return ret;
}

void packer_free(struct packer *p)
{
	if (!p)
		return;
	if (p->z_open)
		deflateEnd(&p->z);
	free(p->out);
	free(p->block);
	free(p->zero_block);
	free(p);
}

/* --- decompression ------------------------------------------------------- */

int pack_detect(int fd)
{
	uint8_t m[4];

	if (pread(fd, m, 4, 0) != 4)
		return -1;
	if (m[0] == 0x04 && m[1] == 0x22 && m[2] == 0x4d && m[3] == 0x18)
		return PACK_LZ4;
	if (m[0] == 0x1f && m[1] == 0x8b)
		return PACK_GZIP;
	return -1;
}

/* Gathers decompressed bytes into units. */
struct assembler {
	uint8_t *buf;
	size_t n;
	unit_fn fn;
	void *ctx;
	uint64_t total;
};

static int asm_emit(struct assembler *a)
{
	int ret = a->fn(a->ctx, all_zero(a->buf, a->n) ? NULL : a->buf, a->n);

	a->n = 0;
	return ret;
}

static int asm_feed(struct assembler *a, const uint8_t *p, size_t n)
{
	int ret;

	a->total += n;
	while (n > 0) {
		size_t take = PACK_UNIT - a->n < n ? PACK_UNIT - a->n : n;

		memcpy(a->buf + a->n, p, take);
		a->n += take;
		p += take;
		n -= take;
		if (a->n == PACK_UNIT) {
			ret = asm_emit(a);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

/* A whole unit of zeros at a unit boundary: no bytes to look at. */
static int asm_zero_unit(struct assembler *a)
{
	a->total += PACK_UNIT;
	return a->fn(a->ctx, NULL, PACK_UNIT);
}

/* Buffered input with look-ahead. */
struct reader {
	int fd;
	uint8_t *buf;
	size_t cap, pos, len;
	bool eof;
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
	if (r->pos == r->len && !r->eof)
		need(r, 1);
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
 * LZ4 frames.  Frames with independent blocks are decoded here, block by
 * block; once a block decoded to a whole unit of zeros, identical blocks
 * are recognised by their bytes and not decoded again.  Frames with linked
 * blocks go through liblz4's frame decoder.
 */
static int lz4_linked(struct reader *r, struct assembler *a, char *msg, size_t msglen)
{
	LZ4F_dctx *dctx;
	uint8_t *out = malloc(PACK_UNIT);
	size_t hint = 1;
	int ret = 0;

	if (!out || LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) {
		free(out);
		return -ENOMEM;
	}
	while (hint != 0) {
		size_t dsz = PACK_UNIT, ssz = avail(r);

		if (ssz == 0) {
			ret = bad(msg, msglen, "truncated LZ4 data");
			break;
		}
		hint = LZ4F_decompress(dctx, out, &dsz, r->buf + r->pos, &ssz, NULL);
		if (LZ4F_isError(hint)) {
			snprintf(msg, msglen, "corrupt LZ4 data (%s)", LZ4F_getErrorName(hint));
			ret = -EBADMSG;
			break;
		}
		r->pos += ssz;
		ret = asm_feed(a, out, dsz);
		if (ret < 0)
			break;
	}
	LZ4F_freeDecompressionContext(dctx);
	free(out);
	return ret;
}

static int lz4_frame(struct reader *r, struct assembler *a, char *msg, size_t msglen)
{
	uint8_t *hdr, flg, bd, *zero_tmpl = NULL, *out = NULL;
	size_t hlen = 7, bmax, zero_len = 0;
	uint64_t csize = 0, start = a->total;
	struct xxh32 content;
	int ret;

	ret = need(r, 7);
	if (ret < 0)
		return truncated(ret, msg, msglen, "truncated LZ4 frame header");
	hdr = r->buf + r->pos;
	flg = hdr[4];
	bd = hdr[5];
	if ((flg >> 6) != 1 || (flg & 0x02) || (bd & 0x8f) || ((bd >> 4) & 7) < 4)
		return bad(msg, msglen, "unsupported LZ4 frame header");
	if (!(flg & 0x20)) {
		/* Linked blocks: let liblz4 decode the frame from its magic. */
		return lz4_linked(r, a, msg, msglen);
	}
	hlen += (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0);
	ret = need(r, hlen);
	if (ret < 0)
		return truncated(ret, msg, msglen, "truncated LZ4 frame header");
	hdr = r->buf + r->pos;
	if (((xxh32(hdr + 4, hlen - 5) >> 8) & 0xff) != hdr[hlen - 1])
		return bad(msg, msglen, "corrupt LZ4 frame header (checksum)");
	for (int i = 0; (flg & 0x08) && i < 8; i++)
		csize |= (uint64_t)hdr[6 + i] << (8 * i);
	r->pos += hlen;
	bmax = (size_t)1 << (8 + 2 * ((bd >> 4) & 7));
	out = malloc(bmax);
	if (!out)
		return -ENOMEM;
	xxh_init(&content);
	for (;;) {
		uint32_t bsize;
		size_t len, dlen, total;
		const uint8_t *blk;
		bool stored;

		ret = need(r, 4);
		if (ret < 0) {
			ret = truncated(ret, msg, msglen, "truncated LZ4 data");
			break;
		}
		bsize = rd32(r->buf + r->pos);
		r->pos += 4;
		if (bsize == 0)
			break;
		stored = bsize & 0x80000000U;
		len = bsize & 0x7fffffffU;
		if (len > bmax) {
			ret = bad(msg, msglen, "corrupt LZ4 data (block too large)");
			break;
		}
		total = len + (flg & 0x10 ? 4 : 0);
		ret = need(r, total);
		if (ret < 0) {
			ret = truncated(ret, msg, msglen, "truncated LZ4 data");
			break;
		}
		blk = r->buf + r->pos;
		if ((flg & 0x10) && xxh32(blk, len) != rd32(blk + len)) {
			ret = bad(msg, msglen, "corrupt LZ4 data (block checksum)");
			break;
		}
		r->pos += total;
		if (zero_tmpl && !stored && len == zero_len && a->n == 0 &&
		    !(flg & 0x04) && memcmp(blk, zero_tmpl, len) == 0) {
			ret = asm_zero_unit(a);
			if (ret < 0)
				break;
			continue;
		}
		if (stored) {
			memcpy(out, blk, len);
			dlen = len;
		} else {
			int d = LZ4_decompress_safe((const char *)blk, (char *)out,
						    (int)len, (int)bmax);

			if (d < 0) {
				ret = bad(msg, msglen, "corrupt LZ4 data");
				break;
			}
			dlen = (size_t)d;
		}
		if (flg & 0x04)
			xxh_update(&content, out, dlen);
		if (!zero_tmpl && !stored && dlen == PACK_UNIT && a->n == 0 &&
		    all_zero(out, dlen)) {
			zero_tmpl = malloc(len);
			if (zero_tmpl) {
				memcpy(zero_tmpl, blk, len);
				zero_len = len;
			}
		}
		ret = asm_feed(a, out, dlen);
		if (ret < 0)
			break;
	}
	if (ret == 0 && (flg & 0x04)) {
		ret = need(r, 4);
		if (ret < 0)
			ret = truncated(ret, msg, msglen, "truncated LZ4 data");
		else if (rd32(r->buf + r->pos) != xxh_digest(&content))
			ret = bad(msg, msglen, "corrupt LZ4 data (content checksum)");
		r->pos += 4;
	}
	if (ret == 0 && (flg & 0x08) && a->total - start != csize)
		ret = bad(msg, msglen, "corrupt LZ4 data (content size)");
	free(out);
	free(zero_tmpl);
	return ret;
}

static int lz4_stream(struct reader *r, struct assembler *a, char *msg, size_t msglen)
{
	int ret = 0;

	do {
		uint32_t magic;

		ret = need(r, 4);
		if (ret < 0)
			return truncated(ret, msg, msglen, "truncated LZ4 data");
		magic = rd32(r->buf + r->pos);
		if ((magic & 0xfffffff0U) == 0x184D2A50U) {
			/* A skippable frame. */
			uint32_t skip;

			ret = need(r, 8);
			if (ret < 0)
				return truncated(ret, msg, msglen, "truncated LZ4 data");
			skip = rd32(r->buf + r->pos + 4);
			r->pos += 8;
			while (skip > 0) {
				size_t n = avail(r);

				if (n == 0)
					return bad(msg, msglen, "truncated LZ4 data");
				n = n < skip ? n : skip;
				r->pos += n;
				skip -= (uint32_t)n;
			}
			continue;
		}
		if (magic != 0x184D2204U)
			return bad(msg, msglen, "not LZ4 data (bad magic)");
		ret = lz4_frame(r, a, msg, msglen);
	} while (ret == 0 && !at_eof(r));
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
		const uint8_t *t = gz_zero_template(lv[i], len);

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
			zero_sums();
			crc = crc32_combine(crc, zero_crc, PACK_UNIT);
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
	if (rd32(h) != (uint32_t)crc)
		return bad(msg, msglen, "corrupt gzip data (CRC mismatch)");
	if (rd32(h + 4) != (uint32_t)(a->total - start))
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
		ret = bad(msg, msglen, "empty file");
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
	if (ret == 0 && a.n > 0)
		ret = asm_emit(&a);
	if (total)
		*total = a.total;
out:
	free(a.buf);
	free(r.buf);
	return ret;
}

/* --- sparse output ------------------------------------------------------- */

int sparse_unit(void *ctx, const uint8_t *data, size_t len)
{
	struct sparse_out *s = ctx;
	const size_t BLK = 4096;
	size_t i = 0;

	if (!data) {
		s->off += len;
		return 0;
	}
	while (i < len) {
		size_t start, end;

		while (i < len && all_zero(data + i, len - i < BLK ? len - i : BLK))
			i += BLK;
		if (i >= len)
			break;
		start = i;
		while (i < len && !all_zero(data + i, len - i < BLK ? len - i : BLK))
			i += BLK;
		end = i < len ? i : len;
		for (size_t done = start; done < end;) {
			ssize_t w = pwrite(s->fd, data + done, end - done,
					   (off_t)(s->off + done));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			if (w == 0)
				return -ENOSPC;
			done += (size_t)w;
			s->written += (uint64_t)w;
		}
	}
	s->off += len;
	return 0;
}

int sparse_finish(struct sparse_out *s)
{
	return ftruncate(s->fd, (off_t)s->off) < 0 ? -errno : 0;
}
