/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The word-at-a-time bitmap functions against a bit-by-bit reference, on
 * random bitmaps of awkward sizes with many random ranges.  Each bitmap is
 * malloc'd to exactly ceil(nbits / 8) bytes so that ASan sees any read past
 * the last byte; bits in that byte beyond nbits are random and must not leak
 * into any answer.
 */
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "test_util.h"

static uint64_t ref_count(const uint8_t *bm, uint64_t s, uint64_t e)
{
	uint64_t c = 0;

	for (uint64_t n = s; n < e; n++)
		c += tu_bit(bm, n);
	return c;
}

static uint64_t ref_find(const uint8_t *bm, uint64_t s, uint64_t e, bool v)
{
	for (uint64_t n = s; n < e; n++)
		if (tu_bit(bm, n) == v)
			return n;
	return e;
}

static void ref_set_range(uint8_t *bm, uint64_t s, uint64_t e)
{
	for (uint64_t n = s; n < e; n++)
		tu_setbit(bm, n);
}

enum fill { F_ZERO, F_ONES, F_RANDOM, F_SPARSE, F_DENSE, F_RUNS, F__COUNT };

static void fill_bitmap(struct tu_rng *r, uint8_t *bm, uint64_t nbytes,
			enum fill how)
{
	bool v = false;

	switch (how) {
	case F_ZERO:
		memset(bm, 0, nbytes);
		return;
	case F_ONES:
		memset(bm, 0xff, nbytes);
		return;
	case F_RANDOM:
		tu_fill(r, bm, nbytes);
		return;
	default:
		break;
	}
	memset(bm, 0, nbytes);
	for (uint64_t n = 0; n < nbytes * 8; n++) {
		if (how == F_SPARSE)
			v = tu_below(r, 97) == 0;
		else if (how == F_DENSE)
			v = tu_below(r, 97) != 0;
		else if (tu_below(r, 150) == 0)
			v = !v;
		if (v)
			tu_setbit(bm, n);
	}
}

/* A range biased toward the cases word-wise code gets wrong. */
static void pick_range(struct tu_rng *r, uint64_t nbits, uint64_t *s,
		       uint64_t *e)
{
	uint64_t a = tu_below(r, nbits + 1), b = tu_below(r, nbits + 1), w;

	switch (tu_below(r, 8)) {
	case 0:         /* empty */
		b = a;
		break;
	case 1:         /* inverted: must behave as empty */
		if (a < b) {
			uint64_t t = a;

			a = b;
			b = t;
		}
		break;
	case 2:         /* inside one 64-bit word */
		w = tu_below(r, nbits / 64 + 1) * 64;
		a = w + tu_below(r, 64);
		b = a + tu_below(r, 64 - a % 64 + 1);
		if (a > nbits)
			a = nbits;
		if (b > nbits)
			b = nbits;
		break;
	case 3:         /* to the very end */
		if (a > b)
			a = b;
		b = nbits;
		break;
	case 4:         /* word-aligned ends */
		a -= a % 64;
		b -= b % 64;
		break;
	case 5:         /* byte-aligned ends */
		a -= a % 8;
		b -= b % 8;
		break;
	default:
		break;
	}
	if (tu_below(r, 8) != 1 && a > b) {
		uint64_t t = a;

		a = b;
		b = t;
	}
	*s = a;
	*e = b;
}

static const uint64_t sizes[] = { 1, 7, 8, 9, 63, 64, 65, 127, 128, 129,
				  1000, 4099, 70001 };

static void check_ranges(uint64_t seed, uint64_t nbits, enum fill how,
			 int iterations)
{
	struct tu_rng rng;
	uint64_t nbytes = (nbits + 7) / 8, s, e;
	uint8_t *bm = malloc(nbytes), *got = malloc(nbytes), *want = malloc(nbytes);

	ck_assert(bm && got && want);
	tu_rng_seed(&rng, seed);
	fill_bitmap(&rng, bm, nbytes, how);
	for (int i = 0; i < iterations; i++) {
		pick_range(&rng, nbits, &s, &e);
		TU_CHECK(ubdk_bitmap_count(bm, s, e) == ref_count(bm, s, e),
			      "count [%llu,%llu) of %llu bits (fill %d)",
			      (unsigned long long)s, (unsigned long long)e,
			      (unsigned long long)nbits, how);
		for (int v = 0; v < 2; v++)
			TU_CHECK(ubdk_bitmap_find(bm, s, e, v) ==
				      ref_find(bm, s, e, v),
				      "find %d in [%llu,%llu) of %llu bits: %llu, "
				      "want %llu (fill %d)", v,
				      (unsigned long long)s, (unsigned long long)e,
				      (unsigned long long)nbits,
				      (unsigned long long)ubdk_bitmap_find(bm, s, e, v),
				      (unsigned long long)ref_find(bm, s, e, v), how);
		memcpy(got, bm, nbytes);
		memcpy(want, bm, nbytes);
		ubdk_bitmap_set_range(got, s, e);
		ref_set_range(want, s, e);
		TU_CHECK(memcmp(got, want, nbytes) == 0,
			      "set_range [%llu,%llu) of %llu bits: byte %zu",
			      (unsigned long long)s, (unsigned long long)e,
			      (unsigned long long)nbits,
			      tu_first_diff(got, want, nbytes));
		/* Sometimes keep the result, so later ranges see set runs. */
		if (tu_below(&rng, 4) == 0)
			memcpy(bm, got, nbytes);
	}
	free(bm);
	free(got);
	free(want);
}

/* _i walks every size with every fill pattern. */
START_TEST(random_ranges)
{
	uint64_t nbits = sizes[_i / F__COUNT];
	enum fill how = (enum fill)(_i % F__COUNT);

	check_ranges(1000 + (uint64_t)_i, nbits, how, nbits > 10000 ? 300 : 1500);
}
END_TEST

START_TEST(test_and_set_each_bit)
{
	struct tu_rng rng;
	uint64_t nbits = 1029, nbytes = (nbits + 7) / 8;
	uint8_t *bm = malloc(nbytes), *want = malloc(nbytes);

	tu_rng_seed(&rng, 99);
	tu_fill(&rng, bm, nbytes);
	for (uint64_t n = 0; n < nbits; n++)
		TU_CHECK(ubdk_bitmap_test(bm, n) == tu_bit(bm, n),
			      "bit %llu", (unsigned long long)n);
	/* Setting one bit changes exactly that bit, LSB first in its byte. */
	memset(bm, 0, nbytes);
	memset(want, 0, nbytes);
	for (uint64_t n = 0; n < nbits; n += 1 + tu_below(&rng, 5)) {
		ubdk_bitmap_set(bm, n);
		want[n / 8] = (uint8_t)(want[n / 8] | (1u << (n % 8)));
		TU_CHECK(memcmp(bm, want, nbytes) == 0, "set %llu",
			      (unsigned long long)n);
		TU_CHECK(ubdk_bitmap_test(bm, n), "bit %llu", (unsigned long long)n);
	}
	/* Setting a set bit again is a no-op. */
	ubdk_bitmap_set(bm, 0);
	ck_assert_mem_eq(bm, want, nbytes);
	free(bm);
	free(want);
}
END_TEST

/* The documented bit order, spelled out: bit 0 is 0x01 of byte 0. */
START_TEST(bit_order)
{
	uint8_t bm[3] = { 0x01, 0x80, 0x00 };

	ck_assert(ubdk_bitmap_test(bm, 0));
	ck_assert(!ubdk_bitmap_test(bm, 1));
	ck_assert(!ubdk_bitmap_test(bm, 7));
	ck_assert(!ubdk_bitmap_test(bm, 8));
	ck_assert(ubdk_bitmap_test(bm, 15));
	ubdk_bitmap_set(bm, 17);
	ck_assert_uint_eq(bm[2], 0x02);
	ubdk_bitmap_set_range(bm, 3, 6);
	ck_assert_uint_eq(bm[0], 0x39);
	ck_assert_uint_eq(ubdk_bitmap_count(bm, 0, 24), 6);
	ck_assert_uint_eq(ubdk_bitmap_find(bm, 1, 24, true), 3);
	ck_assert_uint_eq(ubdk_bitmap_find(bm, 3, 24, false), 6);
	ck_assert_uint_eq(ubdk_bitmap_find(bm, 6, 15, true), 15);
	ck_assert_uint_eq(ubdk_bitmap_find(bm, 6, 14, true), 14);
}
END_TEST

/* Long scans: one set (or clear) bit at the far end of a megabit. */
START_TEST(long_scan)
{
	uint64_t nbits = 1 << 20, nbytes = nbits / 8;
	uint8_t *bm = calloc(1, nbytes);

	ck_assert_uint_eq(ubdk_bitmap_find(bm, 0, nbits, true), nbits);
	ck_assert_uint_eq(ubdk_bitmap_count(bm, 0, nbits), 0);
	ubdk_bitmap_set(bm, nbits - 1);
	ck_assert_uint_eq(ubdk_bitmap_find(bm, 0, nbits, true), nbits - 1);
	ck_assert_uint_eq(ubdk_bitmap_find(bm, 5, nbits - 1, true), nbits - 1);
	ck_assert_uint_eq(ubdk_bitmap_count(bm, 0, nbits), 1);
	ubdk_bitmap_set_range(bm, 0, nbits);
	ck_assert_uint_eq(ubdk_bitmap_count(bm, 0, nbits), nbits);
	ck_assert_uint_eq(ubdk_bitmap_count(bm, 3, nbits - 5), nbits - 8);
	ck_assert_uint_eq(ubdk_bitmap_find(bm, 0, nbits, false), nbits);
	bm[nbytes - 1] = 0x7f;
	ck_assert_uint_eq(ubdk_bitmap_find(bm, 1, nbits, false), nbits - 1);
	free(bm);
}
END_TEST

/* Walking find() from bit to bit reproduces every run of the reference. */
START_TEST(find_walk)
{
	struct tu_rng rng;
	uint64_t nbits = 5003, nbytes = (nbits + 7) / 8, pos = 0, runs = 0;
	uint8_t *bm = malloc(nbytes);

	tu_rng_seed(&rng, 5);
	fill_bitmap(&rng, bm, nbytes, F_RUNS);
	while (pos < nbits) {
		bool v = tu_bit(bm, pos);
		uint64_t next = ubdk_bitmap_find(bm, pos, nbits, !v);

		ck_assert_uint_gt(next, pos);
		for (uint64_t n = pos; n < next; n++)
			TU_CHECK(tu_bit(bm, n) == v, "bit %llu", (unsigned long long)n);
		if (next < nbits)
			ck_assert_int_eq(tu_bit(bm, next), !v);
		ck_assert_uint_eq(ubdk_bitmap_count(bm, pos, next),
				  v ? next - pos : 0);
		pos = next;
		runs++;
	}
	ck_assert_uint_gt(runs, 10);
	free(bm);
}
END_TEST

Suite *bitmap_suite(void)
{
	Suite *s = suite_create("bitmap");
	TCase *tc = tcase_create("bitmap");
	int n = (int)(sizeof(sizes) / sizeof(sizes[0])) * F__COUNT;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, bit_order);
	tcase_add_test(tc, test_and_set_each_bit);
	tcase_add_loop_test(tc, random_ranges, 0, n);
	tcase_add_test(tc, long_scan);
	tcase_add_test(tc, find_walk);
	suite_add_tcase(s, tc);
	return s;
}
