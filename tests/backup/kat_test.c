/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Known answers for what backups rely on: SHA-256 (FIPS 180-2 vectors),
 * xxHash32 (the LZ4 frame's checksums), CRC-32 on both of its paths, the
 * tree and zero-unit shortcuts of sums.c, and an LZ4 frame written by
 * lz4_splice.c read back by liblz4's own decoder.
 *   kat_test     exit 0 if all pass
 */
#include <lz4frame.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zlib.h>

#include "lz4_splice.h"
#include "stream.h"
#include "sums.h"

#include "../common/check.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void sha256_of(const void *p, size_t n, char out[65])
{
	struct sha256_ctx c;
	uint8_t d[SHA256_DIGEST_SIZE];

	sha256_init(&c);
	sha256_update(&c, n, p);
	sha256_digest(&c, sizeof(d), d);
	hex(d, sizeof(d), out);
}

static void test_sha256(void)
{
	char h[65];
	char *a = malloc(1000000);

	sha256_of("", 0, h);
	CHECK(!strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "%s", h);
	sha256_of("abc", 3, h);
	CHECK(!strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "%s", h);
	memset(a, 'a', 1000000);
	sha256_of(a, 1000000, h);
	CHECK(!strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "%s", h);
	free(a);
}

static void test_xxh32(void)
{
	CHECK(XXH32("", 0, 0) == 0x02cc5d05U, "%08x", XXH32("", 0, 0));
	CHECK(XXH32("abc", 3, 0) == 0x32d153ffU, "%08x", XXH32("abc", 3, 0));
}

static void test_crc(void)
{
	uint8_t *buf = malloc(PACK_UNIT);
	unsigned long crc;

	crc = crc_update(crc32(0, Z_NULL, 0), (const uint8_t *)"123456789", 9);
	CHECK(crc == 0xcbf43926UL, "%08lx", crc);
	/* Long and unaligned: the carry-less path where the CPU has one. */
	for (size_t i = 0; i < PACK_UNIT; i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 9));
	crc = crc_update(crc32(0, Z_NULL, 0), buf + 3, PACK_UNIT - 5);
	CHECK(crc == crc32_z(crc32(0, Z_NULL, 0), buf + 3, PACK_UNIT - 5), "long crc");
	free(buf);
}

/* A hole must sum as the zeros it stands for. */
static void test_sums(void)
{
	struct sums hole, zeros, none;

	sums_init(&hole);
	sums_init(&zeros);
	sums_unit(&hole, NULL, PACK_UNIT);
	sums_unit(&zeros, unit_zeros(), PACK_UNIT);
	sums_unit(&hole, (const uint8_t *)"abc", 3);
	sums_unit(&zeros, (const uint8_t *)"abc", 3);
	sums_final(&hole);
	sums_final(&zeros);
	CHECK(!strcmp(hole.crc_hex, zeros.crc_hex) && !strcmp(hole.sha_hex, zeros.sha_hex),
	      "hole %s %s, zeros %s %s", hole.crc_hex, hole.sha_hex, zeros.crc_hex, zeros.sha_hex);
	/* No units: the SHA-256 of nothing. */
	sums_init(&none);
	sums_final(&none);
	CHECK(!strcmp(none.sha_hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
	      "%s", none.sha_hex);
	CHECK(!strcmp(none.crc_hex, "00000000"), "%s", none.crc_hex);
}

/* Data, a spliced unit of zeros, incompressible data, a short tail. */
static void test_lz4_splice(void)
{
	size_t n = 3 * PACK_UNIT + 1000, len = 0, at = 0;
	uint8_t *in = calloc(1, n), *frame = malloc(4 * LZ4S_BLOCK_MAX(PACK_UNIT) + 64);
	uint8_t *out = malloc(n + 1);
	LZ4F_dctx *dctx;
	size_t hint = 1;

	for (size_t i = 0; i < PACK_UNIT; i++)
		in[i] = (uint8_t)(i % 251 < 40 ? i : 0);
	for (size_t i = 2 * PACK_UNIT; i < n; i++)
		in[i] = (uint8_t)(i * 2654435761U >> 13);
	lz4s_header(frame, n);
	len = LZ4S_HEADER;
	for (size_t off = 0; off < n; off += PACK_UNIT) {
		size_t u = n - off < PACK_UNIT ? n - off : PACK_UNIT;

		len += lz4s_block(off == 0 ? 9 : 1, in + off, u, frame + len);
	}
	memset(frame + len, 0, LZ4S_END_MARK);
	len += LZ4S_END_MARK;
	LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION);
	while (hint && !LZ4F_isError(hint) && len > 0) {
		size_t dsz = n + 1 - at, ssz = len;

		hint = LZ4F_decompress(dctx, out + at, &dsz, frame, &ssz, NULL);
		at += dsz;
		memmove(frame, frame + ssz, len - ssz);
		len -= ssz;
	}
	CHECK(hint == 0, "LZ4F: %s", LZ4F_isError(hint) ? LZ4F_getErrorName(hint) : "incomplete");
	CHECK(at == n && !memcmp(in, out, n), "LZ4 round trip: %zu of %zu bytes", at, n);
	LZ4F_freeDecompressionContext(dctx);
	free(in);
	free(frame);
	free(out);
}

int main(void)
{
	test_sha256();
	test_xxh32();
	test_crc();
	test_sums();
	test_lz4_splice();
	if (failures)
		return 1;
	printf("backup known answers: all passed\n");
	return 0;
}
