/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sparse, lazily loaded bitmap behind an open COW: memory that follows
 * the sectors written, write-back deferred to flush/close/request, a
 * random cross-check against a flat reference bitmap, and COW files cut
 * inside their data.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"
#include "test_util.h"
#include "ubdk_cow.h"

#define TIB (1ULL << 40)

/* len bytes of a file at off, without reading the rest (its holes). */
static void read_at(const char *path, void *buf, size_t len, uint64_t off)
{
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

/* A fresh COW over a sparse backing file of `size` bytes. */
static void fresh_pair(const char *cow, const char *backing, uint64_t size)
{
	struct ubdk_err e = { 0 };

	tu_write_file(backing, "", 0);
	tu_truncate(backing, size);
	TU_OK(ubdk_create(cow, backing, NULL, false, &e), e);
}

static uint8_t disk_bitmap_byte(const char *cow, uint64_t byte)
{
	struct ubdk_err e = { 0 };
	struct ubdk_cow *c;
	uint64_t off;
	uint8_t v;

	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_NO_BACKING, &c, &e), e);
	off = ubdk_cow_geometry(c)->bitmap_offset + byte;
	ubdk_cow_close(c);
	read_at(cow, &v, 1, off);
	return v;
}

/* 3000 scattered 4 KiB writes on a 1 TiB device: small memory, exact view. */
START_TEST(terabyte_memory_follows_data)
{
	const char *cow = tu_path("c.cow"), *back = tu_path("b.img");
	struct ubdk_err e = { 0 };
	struct tu_rng rng;
	struct ubdk_cow *c;
	struct ubdk_run run;
	uint8_t buf[4096], got[4096];
	uint64_t *offs = malloc(3000 * sizeof(*offs)), pos = 0, n, runs = 0;

	ck_assert_ptr_nonnull(offs);
	fresh_pair(cow, back, TIB);
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	/* An open of a 1 TiB COW (256 MiB of bitmap) holds almost nothing. */
	TU_CHECK(ubdk_cow_mem(c) < 64 * 1024, "open holds %llu bytes",
		 (unsigned long long)ubdk_cow_mem(c));
	tu_rng_seed(&rng, 42);
	for (int i = 0; i < 3000; i++) {
		/* 1024 slots of 1 GiB in a scattered order; up to three
		 * writes 8 KiB apart in each, so that no two touch. */
		if (i < 1024)
			offs[i] = ((uint64_t)i * 341 % 1024) * (1ULL << 30) +
				  tu_below(&rng, ((1ULL << 30) - 32768) / 4096) *
				  4096;
		else
			offs[i] = offs[i - 1024] + 8192;
		memset(buf, (int)(i & 0xff), sizeof(buf));
		memcpy(buf, &i, sizeof(i));
		TU_OK(ubdk_cow_pwrite(c, buf, sizeof(buf), offs[i], &e), e);
	}
	TU_CHECK(ubdk_cow_mem(c) < 8 * 1024 * 1024, "writes hold %llu bytes",
		 (unsigned long long)ubdk_cow_mem(c));
	TU_OK(ubdk_cow_flush(c, &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);

	TU_OK(ubdk_cow_open(cow, NULL, 0, &c, &e), e);
	TU_EQ(tu_cow_count(c, 0, UINT64_MAX), 3000 * 8);
	while (tu_cow_next_run(c, &pos, UINT64_MAX, &run) == 1)
		if ((run.src == UBDK_RUN_COW))
			runs++;
	/* Writes 8 KiB apart in the same slot are separate runs. */
	TU_EQ(runs, 3000);
	TU_CHECK(ubdk_cow_mem(c) < 8 * 1024 * 1024, "reading holds %llu bytes",
		 (unsigned long long)ubdk_cow_mem(c));
	for (int i = 0; i < 3000; i += 97) {
		TU_OK(ubdk_cow_pread(c, got, sizeof(got), offs[i], &e), e);
		memcpy(&n, got, sizeof(int));
		TU_EQ((int)n, i);
		TU_CHECK(tu_cow_test(c, offs[i] / 512 + 7), "write %d", i);
		TU_CHECK(!tu_cow_test(c, offs[i] / 512 + 8), "write %d", i);
	}
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	free(offs);
}
END_TEST

/* Bits reach the file at write-back, flush or close; with SYNC at once. */
START_TEST(writeback_is_deferred)
{
	const char *cow = tu_path("c.cow"), *back = tu_path("b.img");
	struct ubdk_err e = { 0 };
	struct ubdk_cow *c;
	uint8_t buf[512];

	memset(buf, 0x5a, sizeof(buf));
	fresh_pair(cow, back, 1 << 20);
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	ck_assert(!ubdk_cow_dirty(c));
	TU_OK(ubdk_cow_pwrite(c, buf, 512, 5 * 512, &e), e);
	ck_assert(ubdk_cow_dirty(c));
	ck_assert(tu_cow_test(c, 5));
	TU_EQ(disk_bitmap_byte(cow, 0), 0);
	TU_OK(ubdk_cow_writeback(c, &e), e);
	ck_assert(!ubdk_cow_dirty(c));
	TU_EQ(disk_bitmap_byte(cow, 0), 1 << 5);
	/* Rewriting a present sector changes no bit. */
	TU_OK(ubdk_cow_pwrite(c, buf, 512, 5 * 512, &e), e);
	ck_assert(!ubdk_cow_dirty(c));
	TU_OK(ubdk_cow_pwrite(c, buf, 512, 9 * 512, &e), e);
	TU_EQ(disk_bitmap_byte(cow, 1), 0);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	TU_EQ(disk_bitmap_byte(cow, 1), 1 << 1);

	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR | UBDK_OPEN_SYNC, &c, &e),
	      e);
	TU_OK(ubdk_cow_pwrite(c, buf, 512, 17 * 512, &e), e);
	ck_assert(!ubdk_cow_dirty(c));
	TU_EQ(disk_bitmap_byte(cow, 2), 1 << 1);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
}
END_TEST

/* Discard and write-zeroes: present, reading as zeros. */
START_TEST(discard_reads_zeros)
{
	const char *cow = tu_path("c.cow"), *back = tu_path("b.img");
	struct ubdk_err e = { 0 };
	struct ubdk_cow *c;
	uint8_t buf[8192], zero[8192] = { 0 };

	fresh_pair(cow, back, 1 << 20);
	memset(buf, 0x77, sizeof(buf));
	tu_pwrite_file(back, buf, sizeof(buf), 0);
	tu_set_mtime(back, 1000);
	tu_rmtree(cow);
	TU_OK(ubdk_create(cow, back, NULL, false, &e), e);
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	TU_OK(ubdk_cow_discard(c, 0, 4096, false, &e), e);
	TU_OK(ubdk_cow_discard(c, 4096, 4096, true, &e), e);
	TU_OK(ubdk_cow_pread(c, buf, sizeof(buf), 0, &e), e);
	ck_assert_int_eq(memcmp(buf, zero, sizeof(buf)), 0);
	TU_EQ(tu_cow_count(c, 0, UINT64_MAX), 16);
	TU_EXPECT_ERR(ubdk_cow_discard(c, 100, 512, false, &e), e,
		      UBDK_E_INVALID_ARG);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
}
END_TEST

/*
 * Random sets, tests, counts, finds and runs on an 8 GiB device whose
 * bitmap file region holds scattered bits written behind the library's
 * back (data extents and holes), against a flat bitmap.
 */
START_TEST(random_against_flat)
{
	const char *cow = tu_path("c.cow"), *back = tu_path("b.img");
	const uint64_t sectors = 1ULL << 24;
	struct ubdk_err e = { 0 };
	struct tu_rng rng;
	struct ubdk_cow *c;
	uint8_t *ref = calloc(sectors / 8, 1), sec[512] = { 1 };
	uint64_t boff;

	ck_assert_ptr_nonnull(ref);
	fresh_pair(cow, back, sectors * 512);
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_NO_BACKING, &c, &e), e);
	boff = ubdk_cow_geometry(c)->bitmap_offset;
	ubdk_cow_close(c);
	tu_rng_seed(&rng, 7 + (uint64_t)_i);
	/* Islands of on-disk bits: some dense, some one byte. */
	for (int i = 0; i < 40; i++) {
		uint64_t at = tu_below(&rng, sectors / 8 - 300);
		uint8_t bytes[300];
		size_t len = tu_below(&rng, 2) ? 1 : sizeof(bytes);

		tu_fill(&rng, bytes, len);
		memcpy(ref + at, bytes, len);
		tu_pwrite_file(cow, bytes, len, boff + at);
	}
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR | UBDK_OPEN_NO_BACKING,
			    &c, &e), e);
	for (int i = 0; i < 3000; i++) {
		uint64_t a = tu_below(&rng, sectors), b;
		uint64_t want = 0, got = 0, pos;
		struct ubdk_run run;

		switch (tu_below(&rng, 4)) {
		case 0:
			b = a + 1 + tu_below(&rng, 16);
			if (b > sectors)
				b = sectors;
			TU_OK(ubdk_cow_pwrite(c, sec, 512, a * 512, &e), e);
			tu_setbit(ref, a);
			(void)b;
			break;
		case 1:
			TU_CHECK(tu_cow_test(c, a) == tu_bit(ref, a),
				 "bit %llu", (unsigned long long)a);
			break;
		case 2:
			/* Mostly short ranges (the reference counts bit by
			 * bit), now and then the whole device. */
			if (i % 500 == 0)
				a = 0, b = sectors + 100;
			else
				b = a + tu_below(&rng, 1 << 18);
			for (uint64_t n = a; n < b && n < sectors; n++)
				want += tu_bit(ref, n);
			got = tu_cow_count(c, a, b);
			TU_EQ(got, want);
			break;
		default:
			pos = a;
			b = a + tu_below(&rng, 1 << 16);
			TU_CHECK(tu_cow_next_run(c, &pos, b, &run) == (a < b &&
				 a < sectors), "run at %llu",
				 (unsigned long long)a);
			if (a >= b || a >= sectors)
				break;
			for (uint64_t n = run.start; n < pos; n++)
				TU_CHECK(tu_bit(ref, n) == (run.src == UBDK_RUN_COW),
					 "sector %llu in run %llu+%llu",
					 (unsigned long long)n,
					 (unsigned long long)run.start,
					 (unsigned long long)run.count);
			TU_CHECK(pos >= (b < sectors ? b : sectors) ||
				 tu_bit(ref, pos) != (run.src == UBDK_RUN_COW),
				 "run at %llu+%llu not maximal",
				 (unsigned long long)run.start,
				 (unsigned long long)run.count);
			break;
		}
	}
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	/* What the handle wrote back is what the reference says. */
	{
		uint8_t *disk = malloc(sectors / 8);

		ck_assert_ptr_nonnull(disk);
		read_at(cow, disk, sectors / 8, boff);
		TU_EQ(tu_first_diff(disk, ref, sectors / 8), sectors / 8);
		free(disk);
	}
	free(ref);
}
END_TEST

/* A COW cut inside its data area: an error, never zeros. */
START_TEST(cut_data_is_an_error)
{
	const char *cow = tu_path("c.cow"), *back = tu_path("b.img");
	struct ubdk_err e = { 0 };
	struct ubdk_cow *c;
	uint8_t buf[4096];
	uint64_t doff;

	memset(buf, 0x33, sizeof(buf));
	fresh_pair(cow, back, 4 << 20);
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	doff = ubdk_cow_geometry(c)->data_offset;
	TU_OK(ubdk_cow_pwrite(c, buf, sizeof(buf), 0, &e), e);
	TU_OK(ubdk_cow_pwrite(c, buf, sizeof(buf), 1 << 20, &e), e);
	TU_OK(ubdk_cow_check_data(c, &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	tu_truncate(cow, doff + 200000);

	TU_OK(ubdk_cow_open(cow, NULL, 0, &c, &e), e);
	TU_EXPECT_ERR(ubdk_cow_check_data(c, &e), e, UBDK_E_SHORT_DATA);
	TU_MSG_HAS(e, "sector 2048");
	TU_EQ(e.file, UBDK_FILE_COW);
	TU_EXPECT_ERR(ubdk_cow_pread(c, buf, sizeof(buf), 1 << 20, &e), e,
		      UBDK_E_SHORT_DATA);
	TU_OK(ubdk_cow_pread(c, buf, sizeof(buf), 0, &e), e);
	TU_EQ(buf[4095], 0x33);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	/* Cut exactly after the last present sector's data: fine. */
	tu_truncate(cow, doff + (1 << 20) + 4096);
	TU_OK(ubdk_cow_open(cow, NULL, 0, &c, &e), e);
	TU_OK(ubdk_cow_check_data(c, &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
}
END_TEST

/* Errors say which file: a missing backing is the backing's fault. */
START_TEST(errors_name_the_file)
{
	const char *cow = tu_path("c.cow"), *back = tu_path("b.img");
	struct ubdk_err e = { 0 };
	struct ubdk_cow *c;

	fresh_pair(cow, back, 1 << 20);
	tu_rmtree(back);
	TU_EXPECT_ERR(ubdk_cow_open(cow, NULL, 0, &c, &e), e, UBDK_E_SYS);
	TU_EQ(e.file, UBDK_FILE_BACKING);
	TU_EXPECT_ERR(ubdk_cow_open(tu_path("none.cow"), NULL, 0, &c, &e), e,
		      UBDK_E_SYS);
	TU_EQ(e.file, UBDK_FILE_COW);
}
END_TEST

/* Extents: the backing's holes are zero runs, the COW's sectors data. */
START_TEST(extents_see_backing_holes)
{
	const char *cow = tu_path("c.cow"), *back = tu_path("b.img");
	static const struct { uint64_t start, count; int src; } want[] = {
		{ 0, 8, UBDK_RUN_BACKING }, { 8, 2040, UBDK_RUN_ZERO },
		{ 2048, 2, UBDK_RUN_BACKING }, { 2050, 1, UBDK_RUN_COW },
		{ 2051, 13, UBDK_RUN_BACKING }, { 2064, 2032, UBDK_RUN_ZERO },
	};
	struct ubdk_err e = { 0 };
	struct ubdk_cow *c;
	struct ubdk_run run;
	uint8_t buf[8192];
	uint64_t pos = 0;
	size_t n = 0;
	int ret;

	memset(buf, 0x66, sizeof(buf));
	tu_write_file(back, buf, 4096);
	tu_truncate(back, 2 << 20);
	tu_pwrite_file(back, buf, 8192, 1 << 20);
	tu_set_mtime(back, 1000);
	TU_OK(ubdk_create(cow, back, NULL, false, &e), e);
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	TU_OK(ubdk_cow_pwrite(c, buf, 512, 2050 * 512, &e), e);
	while ((ret = ubdk_cow_next_extent(c, &pos, UINT64_MAX, &run, &e)) > 0) {
		TU_CHECK(n < sizeof(want) / sizeof(want[0]), "extra run at %llu",
			 (unsigned long long)run.start);
		TU_CHECK(run.start == want[n].start && run.count == want[n].count &&
			 run.src == want[n].src, "run %zu: %llu+%llu src %d",
			 n, (unsigned long long)run.start,
			 (unsigned long long)run.count, run.src);
		n++;
	}
	TU_OK(ret, e);
	TU_EQ(n, sizeof(want) / sizeof(want[0]));
	ck_assert_int_eq(ubdk_cow_close(c), 0);
}
END_TEST

/*
 * Hundreds of pieces, each 768 bytes (so pieces straddle sectors and
 * runs), written and read through the merged view: the bytes equal a
 * reference built by hand.
 */
START_TEST(iovec_reads_and_writes)
{
	const char *cow = tu_path("c.cow"), *back = tu_path("b.img");
	enum { PIECES = 400, PIECE = 768, SIZE = 262144 + 1000 };
	static uint8_t ref[SIZE], vec[PIECES * PIECE];
	struct ubdk_iov iov[PIECES];
	struct ubdk_err e = { 0 };
	struct tu_rng rng;
	struct ubdk_cow *c;
	const uint64_t woff = 8192, roff = 512;
	const int wn = 100, rn = (SIZE - 512) / PIECE;

	tu_rng_seed(&rng, 5);
	tu_fill(&rng, ref, SIZE);
	tu_write_file(back, ref, SIZE);
	tu_set_mtime(back, 1000);
	TU_OK(ubdk_create(cow, back, NULL, false, &e), e);
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	tu_fill(&rng, vec, (size_t)wn * PIECE);
	memcpy(ref + woff, vec, (size_t)wn * PIECE);
	for (int i = 0; i < wn; i++)
		iov[i] = (struct ubdk_iov){ vec + i * PIECE, PIECE };
	TU_OK(ubdk_cow_pwritev(c, iov, wn, woff, &e), e);
	memset(vec, 0, sizeof(vec));
	for (int i = 0; i < rn; i++)
		iov[i] = (struct ubdk_iov){ vec + i * PIECE, PIECE };
	TU_OK(ubdk_cow_preadv(c, iov, rn, roff, &e), e);
	TU_EQ(tu_first_diff(ref + roff, vec, (size_t)rn * PIECE),
	      (size_t)rn * PIECE);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
}
END_TEST

/* A read planned a few runs at a time equals the one-step read. */
START_TEST(planned_reads)
{
	const char *cow = tu_path("c.cow"), *back = tu_path("b.img");
	enum { SIZE = 1 << 20 };
	static uint8_t img[SIZE], a[SIZE], b[SIZE];
	struct ubdk_err e = { 0 };
	struct tu_rng rng;
	struct ubdk_cow *c;

	tu_rng_seed(&rng, 9);
	tu_fill(&rng, img, SIZE - 100000);
	tu_write_file(back, img, SIZE - 100000);
	tu_set_mtime(back, 1000);
	TU_OK(ubdk_create(cow, back, NULL, false, &e), e);
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	for (int i = 0; i < 40; i++) {
		uint64_t at = tu_below(&rng, (SIZE - 100000) / 512 - 8) * 512;

		tu_fill(&rng, a, 4096);
		TU_OK(ubdk_cow_pwrite(c, a, 1024 + 512 * tu_below(&rng, 5), at,
				      &e), e);
	}
	for (int i = 0; i < 200; i++) {
		uint64_t len = 1 + tu_below(&rng, 200000), dev = SIZE - 100000;
		uint64_t off = tu_below(&rng, dev - len), pos = off;

		TU_OK(ubdk_cow_pread(c, a, (size_t)len, off, &e), e);
		memset(b, 0xee, (size_t)len);
		while (pos < off + len) {
			struct ubdk_run runs[2];
			uint64_t end;
			size_t n;

			TU_OK(ubdk_cow_plan_read(c, pos, off + len - pos, runs, 2,
						 &n, &end, &e), e);
			TU_CHECK(n > 0 && end > pos, "no progress at %llu",
				 (unsigned long long)pos);
			TU_OK(ubdk_cow_read_planned(c, runs, n, b + (pos - off),
						    pos, end, &e), e);
			pos = end;
		}
		TU_EQ(pos, off + len);
		TU_EQ(tu_first_diff(a, b, (size_t)len), len);
	}
	ck_assert_int_eq(ubdk_cow_close(c), 0);
}
END_TEST

Suite *sparse_suite(void)
{
	Suite *s = suite_create("sparse");
	TCase *tc = tcase_create("bitmap");

	tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, terabyte_memory_follows_data);
	tcase_add_test(tc, writeback_is_deferred);
	tcase_add_test(tc, discard_reads_zeros);
	tcase_add_loop_test(tc, random_against_flat, 0, 3);
	tcase_add_test(tc, cut_data_is_an_error);
	tcase_add_test(tc, errors_name_the_file);
	tcase_add_test(tc, extents_see_backing_holes);
	tcase_add_test(tc, iovec_reads_and_writes);
	tcase_add_test(tc, planned_reads);
	suite_add_tcase(s, tc);
	return s;
}
