/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The consistency scan (ubdk_scan_fd) and stray data (ubdk_cow_next_stray)
 * on hand-built v3 files: bits of sectors the device lacks, sectors whose
 * data is past a cut, a file cut inside its bitmap, and data stored for
 * clear sectors.  Expectations come from the format description
 * (tu_geometry), not from the library.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"
#include "test_util.h"

#define SECTORS 100U
#define SS 512U

/* A v3 COW of SECTORS sectors with the given bits set; its geometry. */
static void build(const char *path, const uint64_t *bits, size_t n,
		  struct tu_geo *g)
{
	static uint8_t hdr[UBDK_HDR_MAX_SIZE];
	struct tu_spec s = { .layout = UBDK_LAYOUT_V3, .size = SECTORS * SS,
			     .ss = SS, .align = 4096, .mtime = 1,
			     .backing = "/nonexistent/backing.img" };
	uint8_t bm[4096] = { 0 };
	size_t hlen = tu_build_header(hdr, &s);

	tu_geometry(UBDK_LAYOUT_V3, s.size, SS, 4096, g);
	ck_assert_uint_le(g->data_offset - g->bitmap_offset, sizeof(bm));
	for (size_t i = 0; i < n; i++)
		tu_setbit(bm, bits[i]);
	tu_write_file(path, hdr, hlen);
	tu_pwrite_file(path, bm, g->data_offset - g->bitmap_offset, g->bitmap_offset);
	tu_truncate(path, g->file_size);
}

static void scan(const char *path, struct ubdk_scan *sc)
{
	struct ubdk_header h;
	struct ubdk_geometry geo;
	struct ubdk_err e = { 0 };
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	TU_OK(ubdk_header_read_fd(fd, path, &h, &geo, &e), e);
	TU_OK(ubdk_scan_fd(fd, path, &h, &geo, sc, &e), e);
	close(fd);
}

START_TEST(bits_past_the_device)
{
	const uint64_t bits[] = { 0, 99, 100, 105, 4000 };
	struct ubdk_scan sc;
	struct tu_geo g;

	build(tu_path("c.cow"), bits, 5, &g);
	scan(tu_path("c.cow"), &sc);
	ck_assert(!sc.short_bitmap);
	TU_EQ(sc.file_size, g.file_size);
	TU_EQ(sc.bitmap_present, g.data_offset - g.bitmap_offset);
	TU_EQ(sc.bits, SECTORS);
	TU_EQ(sc.past.count, 3);
	TU_EQ(sc.past.first, 100);
	TU_EQ(sc.past.last, 4000);
	TU_EQ(sc.past_byte, g.bitmap_offset + 100 / 8);
	TU_EQ(sc.short_data.count, 0);
	TU_EQ(sc.short_data.first, UINT64_MAX);
}
END_TEST

START_TEST(data_past_a_cut)
{
	const uint64_t bits[] = { 3, 50, 60, 99 };
	struct ubdk_scan sc;
	struct tu_geo g;

	build(tu_path("c.cow"), bits, 4, &g);
	/* Sector 50's data half there, 60's and 99's gone. */
	tu_truncate(tu_path("c.cow"), g.data_offset + 50 * SS + 100);
	scan(tu_path("c.cow"), &sc);
	TU_EQ(sc.short_data.count, 3);
	TU_EQ(sc.short_data.first, 50);
	TU_EQ(sc.short_data.last, 99);
	TU_EQ(sc.past.count, 0);
	/* Cut exactly after sector 98's data: only 99 is missing. */
	tu_truncate(tu_path("c.cow"), g.data_offset + 99 * SS);
	scan(tu_path("c.cow"), &sc);
	TU_EQ(sc.short_data.count, 1);
	TU_EQ(sc.short_data.first, 99);
}
END_TEST

START_TEST(cut_inside_the_bitmap)
{
	const uint64_t bits[] = { 3, 39, 40, 60 };
	struct ubdk_scan sc;
	struct tu_geo g;

	build(tu_path("c.cow"), bits, 4, &g);
	tu_truncate(tu_path("c.cow"), g.bitmap_offset + 5);
	scan(tu_path("c.cow"), &sc);
	ck_assert(sc.short_bitmap);
	TU_EQ(sc.bitmap_end, g.bitmap_offset + g.bitmap_len);
	TU_EQ(sc.bitmap_present, 5);
	TU_EQ(sc.bits, 40);
	/* No data area at all: every bit in the file marks missing data. */
	TU_EQ(sc.short_data.count, 2);
	TU_EQ(sc.short_data.first, 3);
	TU_EQ(sc.short_data.last, 39);
}
END_TEST

START_TEST(stray_data)
{
	const uint64_t bits[] = { 2 };
	struct ubdk_err e = { 0 };
	struct ubdk_cow *c;
	uint64_t pos = 0, off, len;
	uint8_t junk[SS];
	struct tu_geo g;

	memset(junk, 0xa5, sizeof(junk));
	build(tu_path("c.cow"), bits, 1, &g);
	ck_assert_uint_eq(g.data_offset % 4096, 0);
	/* Sector 2 (set) and sector 10 (clear) written: the blocks holding
	 * sectors 0-7 and 8-15 are stored, one extent. */
	tu_pwrite_file(tu_path("c.cow"), junk, SS, g.data_offset + 2 * SS);
	tu_pwrite_file(tu_path("c.cow"), junk, SS, g.data_offset + 10 * SS);
	TU_OK(ubdk_cow_open(tu_path("c.cow"), NULL, UBDK_OPEN_NO_BACKING, &c, &e), e);
	ck_assert_int_eq(ubdk_cow_next_stray(c, &pos, &off, &len, &e), 1);
	TU_EQ(off, g.data_offset);
	TU_EQ(len, 2 * SS);
	ck_assert_int_eq(ubdk_cow_next_stray(c, &pos, &off, &len, &e), 1);
	TU_EQ(off, g.data_offset + 3 * SS);
	TU_EQ(len, 13 * SS);
	ck_assert_int_eq(ubdk_cow_next_stray(c, &pos, &off, &len, &e), 0);
	ck_assert_int_eq(ubdk_cow_next_stray(c, &pos, &off, &len, &e), 0);
	ubdk_cow_close(c);
}
END_TEST

Suite *scan_suite(void)
{
	Suite *s = suite_create("scan");
	TCase *tc = tcase_create("scan");

	tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
	tcase_add_test(tc, bits_past_the_device);
	tcase_add_test(tc, data_past_a_cut);
	tcase_add_test(tc, cut_inside_the_bitmap);
	tcase_add_test(tc, stray_data);
	suite_add_tcase(s, tc);
	return s;
}
