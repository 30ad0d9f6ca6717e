/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "format/sums.h"
#include "format/stream.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_CLMUL 1
#endif

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
unsigned long crc_update(unsigned long crc, const uint8_t *p, size_t n)
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

/* CRC-32 and SHA-256 of a full unit of zeros, computed once. */
static unsigned long zero_crc;
static uint8_t zero_leaf[SHA256_DIGEST_SIZE];
static bool zero_ready;

static void zero_sums(void)
{
	struct sha256_ctx c;

	if (zero_ready)
		return;
	zero_crc = crc32_z(crc32(0L, Z_NULL, 0), unit_zeros(), PACK_UNIT);
	sha256_init(&c);
	sha256_update(&c, PACK_UNIT, unit_zeros());
	sha256_digest(&c, sizeof(zero_leaf), zero_leaf);
	zero_ready = true;
}

unsigned long crc_zero_unit(unsigned long crc)
{
	zero_sums();
	return crc32_combine(crc, zero_crc, PACK_UNIT);
}

void sums_init(struct sums *s)
{
	memset(s, 0, sizeof(*s));
	s->crc = crc32(0L, Z_NULL, 0);
	sha256_init(&s->tree);
}

void sums_unit(struct sums *s, const uint8_t *data, size_t len)
{
	uint8_t leaf[SHA256_DIGEST_SIZE];
	struct sha256_ctx c;

	if (!data && len == PACK_UNIT) {
		s->crc = crc_zero_unit(s->crc);
		memcpy(leaf, zero_leaf, sizeof(leaf));
	} else {
		if (!data)
			data = unit_zeros();
		s->crc = crc_update(s->crc, data, len);
		sha256_init(&c);
		sha256_update(&c, len, data);
		sha256_digest(&c, sizeof(leaf), leaf);
	}
	sha256_update(&s->tree, sizeof(leaf), leaf);
	s->len += len;
}

void sums_final(struct sums *s)
{
	uint8_t d[SHA256_DIGEST_SIZE];

	snprintf(s->crc_hex, sizeof(s->crc_hex), "%08lx", s->crc & 0xffffffffUL);
	sha256_digest(&s->tree, sizeof(d), d);
	for (size_t i = 0; i < sizeof(d); i++)
		snprintf(s->sha_hex + 2 * i, 3, "%02x", d[i]);
}

int sums_at_init(struct sums_at *a, struct sums *s, uint64_t size)
{
	memset(a, 0, sizeof(*a));
	a->s = s;
	a->size = size;
	a->buf = calloc(1, PACK_UNIT);
	return a->buf ? 0 : -ENOMEM;
}

/* Sum the units before unit u: the one in buf, holes after it. */
static void sums_at_advance(struct sums_at *a, uint64_t u)
{
	while (a->unit < u) {
		uint64_t start = a->unit * PACK_UNIT;
		size_t len = a->size - start < PACK_UNIT ? (size_t)(a->size - start) : PACK_UNIT;

		if (a->hi > a->lo) {
			sums_unit(a->s, a->buf, len);
			/* Only what was written is cleared: sparse units cost little. */
			memset(a->buf + a->lo, 0, a->hi - a->lo);
			a->lo = a->hi = 0;
		} else {
			sums_unit(a->s, NULL, len);
		}
		a->unit++;
	}
}

void sums_at_data(struct sums_at *a, uint64_t off, const uint8_t *p, size_t len)
{
	while (len > 0) {
		uint64_t u = off / PACK_UNIT;
		size_t at = (size_t)(off % PACK_UNIT);
		size_t n = PACK_UNIT - at < len ? PACK_UNIT - at : len;

		sums_at_advance(a, u);
		memcpy(a->buf + at, p, n);
		if (a->hi == a->lo) {
			a->lo = at;
			a->hi = at + n;
		} else {
			a->lo = at < a->lo ? at : a->lo;
			a->hi = at + n > a->hi ? at + n : a->hi;
		}
		off += n;
		p += n;
		len -= n;
	}
}

void sums_at_finish(struct sums_at *a)
{
	sums_at_advance(a, (a->size + PACK_UNIT - 1) / PACK_UNIT);
	free(a->buf);
	a->buf = NULL;
}
