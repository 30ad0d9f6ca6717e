/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Header decode, validation, geometry and encode.  Headers are built byte by
 * byte from the format description (tu_build_header), never by the library,
 * and geometry is checked against numbers worked out by hand.
 */
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "test_util.h"

#define NAME "disk-7.cow"

/* A buffer big enough for any layout, plus room to spare. */
static uint8_t hbuf[UBDK_HDR_MAX_SIZE + 64];

static struct tu_spec spec_v3(void)
{
	struct tu_spec s = {
		.layout = UBDK_LAYOUT_V3, .mtime = 0x5f3759dfU,
		.size = 0x123456789aULL, .ss = 512, .align = 4096,
		.backing = "/srv/images/root_fs.img",
	};

	return s;
}

static int decode(size_t len, struct ubdk_header *h, struct ubdk_err *e)
{
	memset(e, 0, sizeof(*e));
	return ubdk_header_decode(hbuf, len, NAME, h, e);
}

/* --- decoding each layout --------------------------------------------------- */

START_TEST(decode_v3)
{
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;
	size_t len = tu_build_header(hbuf, &s);

	ck_assert_uint_eq(len, UBDK_HDR_V3_SIZE);
	TU_OK(decode(len, &h, &e), e);
	ck_assert_int_eq(h.layout, UBDK_LAYOUT_V3);
	ck_assert_uint_eq(h.version, 3);
	ck_assert(!h.v1_swapped);
	ck_assert(!h.magic_le);
	ck_assert_uint_eq(h.mtime, 0x5f3759dfU);
	ck_assert_uint_eq(h.size, 0x123456789aULL);
	ck_assert_uint_eq(h.sectorsize, 512);
	ck_assert_uint_eq(h.alignment, 4096);
	ck_assert_uint_eq(h.cow_format, 0);
	ck_assert_str_eq(h.backing, "/srv/images/root_fs.img");
}
END_TEST

/* Bytes after the header (the bitmap) must not change the result. */
START_TEST(decode_v3_with_trailing_bytes)
{
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;

	tu_build_header(hbuf, &s);
	memset(hbuf + UBDK_HDR_V3_SIZE, 0xff, sizeof(hbuf) - UBDK_HDR_V3_SIZE);
	TU_OK(decode(sizeof(hbuf), &h, &e), e);
	ck_assert_int_eq(h.layout, UBDK_LAYOUT_V3);
	ck_assert_uint_eq(h.size, s.size);
	ck_assert_str_eq(h.backing, s.backing);
}
END_TEST

START_TEST(decode_v2)
{
	struct tu_spec s = {
		.layout = UBDK_LAYOUT_V2, .mtime = 1234567890, .size = 1 << 30,
		.ss = 1024, .backing = "/var/lib/uml/debian.img",
	};
	struct ubdk_header h;
	struct ubdk_err e;

	ck_assert_uint_eq(tu_build_header(hbuf, &s), UBDK_HDR_V2_SIZE);
	TU_OK(decode(UBDK_HDR_V2_SIZE, &h, &e), e);
	ck_assert_int_eq(h.layout, UBDK_LAYOUT_V2);
	ck_assert_uint_eq(h.version, 2);
	ck_assert(!h.v1_swapped);
	ck_assert_uint_eq(h.mtime, 1234567890);
	ck_assert_uint_eq(h.size, 1 << 30);
	ck_assert_uint_eq(h.sectorsize, 1024);
	/* v1 and v2 have no alignment field: it is the sector size. */
	ck_assert_uint_eq(h.alignment, 1024);
	ck_assert_uint_eq(h.cow_format, 0);
	ck_assert_str_eq(h.backing, "/var/lib/uml/debian.img");
}
END_TEST

/* v1 is host-endian; _i = 0 native order, 1 the other order. */
START_TEST(decode_v1)
{
	bool swapped = _i == 1;
	struct tu_spec s = {
		.layout = UBDK_LAYOUT_V1, .mtime = 0x01020304, .size = 0x0a0b0c0d0eULL,
		.ss = 512, .backing = "/old/root_fs",
	};
	struct ubdk_header h;
	struct ubdk_err e;

	s.big = tu_host_le() == swapped;
	ck_assert_uint_eq(tu_build_header(hbuf, &s), UBDK_HDR_V1_SIZE);
	TU_OK(decode(UBDK_HDR_V1_SIZE, &h, &e), e);
	ck_assert_int_eq(h.layout, UBDK_LAYOUT_V1);
	ck_assert_uint_eq(h.version, 1);
	ck_assert_int_eq(h.v1_swapped, swapped);
	/* The magic's first byte says the order: 'M' little-endian. */
	ck_assert_int_eq(h.magic_le, hbuf[0] == 'M');
	ck_assert_int_eq(h.magic_le, !s.big);
	ck_assert_uint_eq(h.mtime, 0x01020304);
	ck_assert_uint_eq(h.size, 0x0a0b0c0d0eULL);
	ck_assert_uint_eq(h.sectorsize, 512);
	ck_assert_uint_eq(h.alignment, 512);
	ck_assert_str_eq(h.backing, "/old/root_fs");
}
END_TEST

START_TEST(decode_v3_broken)
{
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;

	s.layout = UBDK_LAYOUT_V3_BROKEN;
	s.mtime = 0x61626364;
	ck_assert_uint_eq(tu_build_header(hbuf, &s), UBDK_HDR_V3_BROKEN_SIZE);
	/* The tell-tale: cow_format's zero bytes where v3 has its path. */
	ck_assert_mem_eq(hbuf + 32, "\0\0\0\0", 4);
	TU_OK(decode(UBDK_HDR_V3_BROKEN_SIZE, &h, &e), e);
	ck_assert_int_eq(h.layout, UBDK_LAYOUT_V3_BROKEN);
	ck_assert_uint_eq(h.version, 3);
	/* The BE u32 at offset 8, not the garbage in bytes 12..15. */
	ck_assert_uint_eq(h.mtime, 0x61626364);
	ck_assert_uint_eq(h.size, s.size);
	ck_assert_uint_eq(h.sectorsize, 512);
	ck_assert_uint_eq(h.alignment, 4096);
	ck_assert_uint_eq(h.cow_format, 0);
	ck_assert_str_eq(h.backing, s.backing);
}
END_TEST

/* --- geometry, worked out by hand from the format rules --------------------- */

struct geo_case {
	int layout;
	uint64_t size;
	uint32_t ss, align;
	struct ubdk_geometry want;
};

/* Fields: header_len, sectors, bitmap_offset, bitmap_len, bitmap_used,
 * covered, data_offset, file_size. */
static const struct geo_case geo_cases[] = {
	/* v3: 1001 sectors (last one partial) -> 126 bitmap bytes. */
	{ UBDK_LAYOUT_V3, 512100, 512, 4096,
	  { 4128, 1001, 8192, 126, 126, 1001, 12288, 12288 + 512100 } },
	/* The kernel's default: 1 GiB, bitmap at 8192, 256 KiB of bitmap. */
	{ UBDK_LAYOUT_V3, 1ULL << 30, 512, 4096,
	  { 4128, 2097152, 8192, 262144, 262144, 2097152, 270336,
	    270336 + (1ULL << 30) } },
	/* v3 with a small alignment: 4128 -> 4608, 4608 + 2 -> 5120. */
	{ UBDK_LAYOUT_V3, 40960, 4096, 512,
	  { 4128, 10, 4608, 2, 2, 10, 5120, 5120 + 40960 } },
	/* The broken layout is 8 bytes longer but lands at 8192 too. */
	{ UBDK_LAYOUT_V3_BROKEN, 4096, 512, 4096,
	  { 4136, 8, 8192, 1, 1, 8, 12288, 12288 + 4096 } },
	/* v2, 9 sectors: (4608 + 511) / 4096 = 1 byte, but 2 are used. */
	{ UBDK_LAYOUT_V2, 4608, 512, 0,
	  { 4120, 9, 4120, 1, 2, 9, 4608, 4608 + 4608 } },
	/* v2, 3905 sectors: bitmap_len 488 ends right at the data area, so
	 * only 488 bytes = 3904 sectors have a bit; the last has none. */
	{ UBDK_LAYOUT_V2, 3904 * 512 + 1, 512, 0,
	  { 4120, 3905, 4120, 488, 488, 3904, 4608, 4608 + 3904 * 512 + 1 } },
	/* v1, 17 sectors: (8704 + 511) / 4096 = 2, 3 used, data at 512. */
	{ UBDK_LAYOUT_V1, 8704, 512, 0,
	  { 280, 17, 280, 2, 3, 17, 512, 512 + 8704 } },
	/* v1, 16 sectors: no under-count when sectors % 8 == 0. */
	{ UBDK_LAYOUT_V1, 8192, 512, 0,
	  { 280, 16, 280, 2, 2, 16, 512, 512 + 8192 } },
	/* v1, 1857 sectors: 280 + 232 = 512, no slack for the last bit. */
	{ UBDK_LAYOUT_V1, 1856 * 512 + 1, 512, 0,
	  { 280, 1857, 280, 232, 232, 1856, 512, 512 + 1856 * 512 + 1 } },
	/* v2 with 4 KiB sectors: header 4120 rounds to 8192. */
	{ UBDK_LAYOUT_V2, 100 * 4096, 4096, 0,
	  { 4120, 100, 4120, 12, 13, 100, 8192, 8192 + 100 * 4096 } },
};

static void check_geo(const struct ubdk_geometry *got,
		      const struct ubdk_geometry *want, int idx)
{
#define G(f) TU_CHECK(got->f == want->f, "case %d: " #f " %llu, want %llu", \
			   idx, (unsigned long long)got->f, \
			   (unsigned long long)want->f)
	G(header_len); G(sectors); G(bitmap_offset); G(bitmap_len);
	G(bitmap_used); G(covered); G(data_offset); G(file_size);
#undef G
}

static void fill_hdr(struct ubdk_header *h, int layout, uint64_t size,
		     uint32_t ss, uint32_t align)
{
	memset(h, 0, sizeof(*h));
	h->layout = layout;
	h->version = layout == UBDK_LAYOUT_V3_BROKEN ? 3 : (uint32_t)layout;
	h->size = size;
	h->sectorsize = ss;
	/* v1/v2 decode sets alignment to the sector size. */
	h->alignment = align ? align : ss;
	strcpy(h->backing, "/b");
}

START_TEST(geometry_by_hand)
{
	const struct geo_case *c = &geo_cases[_i];
	struct ubdk_header h;
	struct ubdk_geometry g;
	struct tu_geo r;
	struct ubdk_err e = { 0 };

	fill_hdr(&h, c->layout, c->size, c->ss, c->align);
	TU_OK(ubdk_header_geometry(&h, NAME, &g, &e), e);
	check_geo(&g, &c->want, _i);
	/* The reference model used by the other tests agrees too. */
	tu_geometry(c->layout, c->size, c->ss, c->align ? c->align : c->ss, &r);
	ck_assert_uint_eq(r.bitmap_len, c->want.bitmap_len);
	ck_assert_uint_eq(r.bitmap_used, c->want.bitmap_used);
	ck_assert_uint_eq(r.covered, c->want.covered);
	ck_assert_uint_eq(r.data_offset, c->want.data_offset);
	ck_assert_uint_eq(r.file_size, c->want.file_size);
	ck_assert(!r.overflow);
}
END_TEST

/* Device bytes to COW bytes: data at data_offset + off, bits of the sectors. */
START_TEST(geometry_locate)
{
	struct ubdk_header h;
	struct ubdk_geometry g;
	struct ubdk_err e = { 0 };
	uint64_t d, b, bl;

	fill_hdr(&h, UBDK_LAYOUT_V3, 1ULL << 30, 512, 512);
	TU_OK(ubdk_header_geometry(&h, NAME, &g, &e), e);
	/* 64 KiB at 1 MiB: sectors 2048..2175, bitmap bytes 256..271. */
	ubdk_geometry_locate(&h, &g, 1 << 20, 65536, &d, &b, &bl);
	ck_assert_uint_eq(d, g.data_offset + (1 << 20));
	ck_assert_uint_eq(b, g.bitmap_offset + 256);
	ck_assert_uint_eq(bl, 16);
	/* One byte in sector 9: one bitmap byte, the second. */
	ubdk_geometry_locate(&h, &g, 9 * 512 + 7, 1, &d, &b, &bl);
	ck_assert_uint_eq(d, g.data_offset + 9 * 512 + 7);
	ck_assert_uint_eq(b, g.bitmap_offset + 1);
	ck_assert_uint_eq(bl, 1);
	/* Sectors 7 and 8 straddle bitmap bytes 0 and 1. */
	ubdk_geometry_locate(&h, &g, 7 * 512, 1024, &d, &b, &bl);
	ck_assert_uint_eq(b, g.bitmap_offset);
	ck_assert_uint_eq(bl, 2);
	/* 4 KiB sectors: 64 KiB is 16 sectors, two bitmap bytes. */
	fill_hdr(&h, UBDK_LAYOUT_V3, 1ULL << 30, 4096, 4096);
	TU_OK(ubdk_header_geometry(&h, NAME, &g, &e), e);
	ubdk_geometry_locate(&h, &g, 65536, 65536, &d, &b, &bl);
	ck_assert_uint_eq(b, g.bitmap_offset + 2);
	ck_assert_uint_eq(bl, 2);
}
END_TEST

/* Decoding a file-built header gives the same geometry as the hand table. */
START_TEST(geometry_through_decode)
{
	const struct geo_case *c = &geo_cases[_i];
	struct tu_spec s = {
		.layout = c->layout, .big = !tu_host_le(), .mtime = 7,
		.size = c->size, .ss = c->ss, .align = c->align,
		.backing = "/x",
	};
	struct ubdk_header h;
	struct ubdk_geometry g;
	struct ubdk_err e;

	TU_OK(decode(tu_build_header(hbuf, &s), &h, &e), e);
	TU_OK(ubdk_header_geometry(&h, NAME, &g, &e), e);
	check_geo(&g, &c->want, _i);
}
END_TEST

/* Random headers of every layout against the 128-bit reference. */
START_TEST(geometry_random)
{
	static const int layouts[] = { UBDK_LAYOUT_V1, UBDK_LAYOUT_V2,
				       UBDK_LAYOUT_V3, UBDK_LAYOUT_V3_BROKEN };
	struct tu_rng rng;
	struct ubdk_header h;
	struct ubdk_geometry g;
	struct tu_geo r;
	struct ubdk_err e = { 0 };

	tu_rng_seed(&rng, 42);
	for (int i = 0; i < 20000; i++) {
		int layout = layouts[tu_below(&rng, 4)];
		uint32_t ss = 1U << tu_below(&rng, layout <= 2 ? 31 : 32);
		uint32_t align = (uint32_t)tu_below(&rng, 4) == 0 ?
				 (uint32_t)tu_rand(&rng) | 1 :
				 1U << tu_below(&rng, 32);
		uint64_t size = tu_rand(&rng) >> tu_below(&rng, 64);
		int ret;

		if (layout <= 2)
			align = ss;
		fill_hdr(&h, layout, size, ss, align);
		tu_geometry(layout, size, ss, align, &r);
		ret = ubdk_header_geometry(&h, NAME, &g, &e);
		if (r.overflow) {
			TU_EXPECT_ERR(ret, e, UBDK_E_OVERFLOW);
			continue;
		}
		TU_CHECK(ret == 0, "layout %d size %llu ss %u align %u: %s",
			      layout, (unsigned long long)size, ss, align, e.msg);
		TU_EQ(g.header_len, r.header_len);
		TU_EQ(g.sectors, r.sectors);
		TU_EQ(g.bitmap_offset, r.bitmap_offset);
		TU_EQ(g.bitmap_len, r.bitmap_len);
		TU_EQ(g.bitmap_used, r.bitmap_used);
		TU_EQ(g.covered, r.covered);
		TU_EQ(g.data_offset, r.data_offset);
		TU_EQ(g.file_size, r.file_size);
	}
}
END_TEST

START_TEST(geometry_unknown_layout)
{
	struct ubdk_header h;
	struct ubdk_geometry g;
	struct ubdk_err e = { 0 };

	fill_hdr(&h, 0, 4096, 512, 512);
	TU_EXPECT_ERR(ubdk_header_geometry(&h, NAME, &g, &e), e,
		      UBDK_E_BAD_VERSION);
	TU_MSG_HAS(e, NAME);
	fill_hdr(&h, 5, 4096, 512, 512);
	TU_EXPECT_ERR(ubdk_header_geometry(&h, NAME, &g, &e), e,
		      UBDK_E_BAD_VERSION);
}
END_TEST

/* --- each invalid header gets its own code ---------------------------------- */

START_TEST(invalid_bad_magic)
{
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;

	tu_build_header(hbuf, &s);
	hbuf[3] ^= 0x01;
	TU_EXPECT_ERR(decode(UBDK_HDR_V3_SIZE, &h, &e), e, UBDK_E_BAD_MAGIC);
	TU_MSG_HAS(e, NAME);
	TU_MSG_HAS(e, "magic");
	/* A file of zeros, e.g. a raw disk image, is not a COW either. */
	memset(hbuf, 0, sizeof(hbuf));
	TU_EXPECT_ERR(decode(sizeof(hbuf), &h, &e), e, UBDK_E_BAD_MAGIC);
}
END_TEST

START_TEST(invalid_bad_version)
{
	static const uint32_t bad[] = { 0, 4, 0x03000000, 0xffffffff };
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;

	tu_build_header(hbuf, &s);
	tu_put32(hbuf + 4, bad[_i], true);
	TU_EXPECT_ERR(decode(UBDK_HDR_V3_SIZE, &h, &e), e,
		      UBDK_E_BAD_VERSION);
	TU_MSG_HAS(e, NAME);
	TU_MSG_HAS(e, "version");
}
END_TEST

START_TEST(invalid_cow_format)
{
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;

	s.cow_format = 1;
	tu_build_header(hbuf, &s);
	TU_EXPECT_ERR(decode(UBDK_HDR_V3_SIZE, &h, &e), e, UBDK_E_COW_FORMAT);
	TU_MSG_HAS(e, NAME);
	TU_MSG_HAS(e, "cow_format");
}
END_TEST

/* _i: layouts v1, v2, v3, v3-broken. */
static int layout_of(int i)
{
	static const int l[] = { UBDK_LAYOUT_V1, UBDK_LAYOUT_V2,
				 UBDK_LAYOUT_V3, UBDK_LAYOUT_V3_BROKEN };
	return l[i];
}

static void expect_sectorsize_rejected(int layout, uint32_t ss)
{
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;
	size_t len;

	s.layout = layout;
	s.big = true;
	s.ss = ss;
	len = tu_build_header(hbuf, &s);
	TU_EXPECT_ERR(decode(len, &h, &e), e, UBDK_E_SECTORSIZE);
	TU_MSG_HAS(e, NAME);
	TU_MSG_HAS(e, "sectorsize");
}

START_TEST(invalid_sectorsize_zero)
{
	expect_sectorsize_rejected(layout_of(_i), 0);
}
END_TEST

START_TEST(invalid_sectorsize_not_pow2)
{
	static const uint32_t bad[] = { 3, 513, 1000, 4095, 0xffffffff };

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_sectorsize_rejected(layout_of(_i), bad[i]);
}
END_TEST

/* v1 and v2 store a signed 32-bit sector size: 2^31 is negative there. */
START_TEST(invalid_sectorsize_negative_v1_v2)
{
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;

	expect_sectorsize_rejected(UBDK_LAYOUT_V1, 0x80000000U);
	expect_sectorsize_rejected(UBDK_LAYOUT_V2, 0x80000000U);
	/* Said as what it is: a power of two, negative in the field. */
	s.layout = UBDK_LAYOUT_V2;
	s.ss = 0x80000000U;
	TU_EXPECT_ERR(decode(tu_build_header(hbuf, &s), &h, &e), e, UBDK_E_SECTORSIZE);
	TU_MSG_HAS(e, "negative as the signed 32-bit field of a version 2 header");
	s = spec_v3();
	/* v3's field is unsigned: 2^31 is a legal (if odd) power of two. */
	s.ss = 0x80000000U;
	s.align = 0x80000000U;
	TU_OK(decode(tu_build_header(hbuf, &s), &h, &e), e);
	ck_assert_uint_eq(h.sectorsize, 0x80000000U);
}
END_TEST

START_TEST(invalid_alignment_zero)
{
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;
	size_t len;

	s.layout = _i ? UBDK_LAYOUT_V3_BROKEN : UBDK_LAYOUT_V3;
	s.align = 0;
	len = tu_build_header(hbuf, &s);
	TU_EXPECT_ERR(decode(len, &h, &e), e, UBDK_E_ALIGNMENT);
	TU_MSG_HAS(e, NAME);
	TU_MSG_HAS(e, "alignment");
}
END_TEST

static void expect_overflow(int layout, uint64_t size, uint32_t ss)
{
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;

	s.layout = layout;
	s.size = size;
	s.ss = ss;
	TU_EXPECT_ERR(decode(tu_build_header(hbuf, &s), &h, &e), e,
		      UBDK_E_OVERFLOW);
	TU_MSG_HAS(e, NAME);
}

/* data_offset + size past 2^64 (and so past off_t) in every layout. */
START_TEST(invalid_overflow_data_region)
{
	expect_overflow(layout_of(_i), UINT64_MAX, 512);
	expect_overflow(layout_of(_i), UINT64_MAX - 4095, 4096);
	expect_overflow(layout_of(_i), 1ULL << 63, 1U << 30);
}
END_TEST

/*
 * With 1-byte sectors the bitmap is size/8 bytes: a size that alone is a
 * valid file offset is pushed past 2^63 by the bitmap in front of it.
 */
START_TEST(invalid_overflow_bitmap_region)
{
	uint64_t size = (1ULL << 63) - (1ULL << 58);
	struct tu_geo r;

	tu_geometry(layout_of(_i), size, 1, 1, &r);
	ck_assert(r.overflow);
	ck_assert_uint_gt(r.bitmap_len, 1ULL << 59);
	expect_overflow(layout_of(_i), size, 1);
}
END_TEST

/* The last size that fits and the first that does not, for each layout. */
START_TEST(overflow_boundary)
{
	int layout = layout_of(_i);
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;
	struct ubdk_geometry g;
	struct tu_geo r;
	uint64_t size = INT64_MAX - 4096;

	/* The data offset hardly moves with size: iterate to a fixed point. */
	for (int i = 0; i < 8; i++) {
		tu_geometry(layout, size, 512, 4096, &r);
		size = (uint64_t)INT64_MAX - r.data_offset;
	}
	tu_geometry(layout, size, 512, 4096, &r);
	ck_assert_uint_eq(r.file_size, (uint64_t)INT64_MAX);
	ck_assert(!r.overflow);

	s.layout = layout;
	s.size = size;
	TU_OK(decode(tu_build_header(hbuf, &s), &h, &e), e);
	TU_OK(ubdk_header_geometry(&h, NAME, &g, &e), e);
	ck_assert_uint_eq(g.file_size, (uint64_t)INT64_MAX);
	expect_overflow(layout, size + 1, 512);
}
END_TEST

struct short_case {
	int layout;
	size_t len;
};

static const struct short_case short_cases[] = {
	{ UBDK_LAYOUT_V3, 0 }, { UBDK_LAYOUT_V3, 4 }, { UBDK_LAYOUT_V3, 7 },
	{ UBDK_LAYOUT_V1, 8 }, { UBDK_LAYOUT_V1, 279 },
	{ UBDK_LAYOUT_V2, 280 }, { UBDK_LAYOUT_V2, 4119 },
	{ UBDK_LAYOUT_V3, 8 }, { UBDK_LAYOUT_V3, 35 }, { UBDK_LAYOUT_V3, 4127 },
	{ UBDK_LAYOUT_V3_BROKEN, 36 }, { UBDK_LAYOUT_V3_BROKEN, 4128 },
	{ UBDK_LAYOUT_V3_BROKEN, 4135 },
};

START_TEST(invalid_short_header)
{
	const struct short_case *c = &short_cases[_i];
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;
	uint8_t *copy;

	s.layout = c->layout;
	s.big = !tu_host_le();
	tu_build_header(hbuf, &s);
	/* An exact-size heap copy: ASan catches any read past len. */
	copy = malloc(c->len ? c->len : 1);
	memcpy(copy, hbuf, c->len);
	memset(&e, 0, sizeof(e));
	TU_EXPECT_ERR(ubdk_header_decode(copy, c->len, NAME, &h, &e), e,
		      UBDK_E_SHORT_HEADER);
	TU_MSG_HAS(e, NAME);
	free(copy);
}
END_TEST

/* One byte more than each short case above is a full header: it decodes. */
START_TEST(exact_header_lengths)
{
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;
	uint8_t *copy;

	s.layout = layout_of(_i);
	s.big = !tu_host_le();
	size_t len = tu_build_header(hbuf, &s);

	ck_assert_uint_eq(len, tu_header_len(s.layout));
	copy = malloc(len);
	memcpy(copy, hbuf, len);
	memset(&e, 0, sizeof(e));
	TU_OK(ubdk_header_decode(copy, len, NAME, &h, &e), e);
	ck_assert_int_eq(h.layout, s.layout);
	free(copy);
}
END_TEST

START_TEST(invalid_backing_unterminated)
{
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;
	char *path;
	size_t field = _i == 0 ? 256 : 4096, len;

	path = malloc(field + 1);
	memset(path, 'p', field);
	path[0] = '/';
	path[field] = '\0';
	s.layout = layout_of(_i);
	s.big = !tu_host_le();
	s.backing = path;
	len = tu_build_header(hbuf, &s);
	TU_EXPECT_ERR(decode(len, &h, &e), e, UBDK_E_BACKING_UNTERMINATED);
	TU_MSG_HAS(e, NAME);
	TU_MSG_HAS(e, "backing");

	/* One byte shorter leaves room for the NUL: accepted. */
	path[field - 1] = '\0';
	len = tu_build_header(hbuf, &s);
	TU_OK(decode(len, &h, &e), e);
	ck_assert_uint_eq(strlen(h.backing), field - 1);
	free(path);
}
END_TEST

START_TEST(invalid_backing_empty)
{
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;
	size_t len;

	s.layout = layout_of(_i);
	s.big = !tu_host_le();
	s.backing = "";
	len = tu_build_header(hbuf, &s);
	if (s.layout == UBDK_LAYOUT_V3) {
		/* An all-zero path field would read as v3-broken; a NUL
		 * followed by junk keeps this a packed v3. */
		hbuf[32 + 3] = 'x';
	}
	TU_EXPECT_ERR(decode(len, &h, &e), e, UBDK_E_BACKING_EMPTY);
	TU_MSG_HAS(e, NAME);
	TU_MSG_HAS(e, "backing");
}
END_TEST

/* A packed v3 with an all-zero path field is taken for v3-broken. */
START_TEST(v3_all_zero_path_reads_as_broken)
{
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e;

	s.backing = "";
	tu_build_header(hbuf, &s);
	/* Too short for the broken layout it now looks like. */
	TU_EXPECT_ERR(decode(UBDK_HDR_V3_SIZE, &h, &e), e,
		      UBDK_E_SHORT_HEADER);
	TU_MSG_HAS(e, "v3-broken");
	/* Long enough: its path (at 36) is empty too. */
	TU_EXPECT_ERR(decode(UBDK_HDR_V3_BROKEN_SIZE, &h, &e), e,
		      UBDK_E_BACKING_EMPTY);
}
END_TEST

START_TEST(decode_without_err_or_name)
{
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e = { 0 };

	tu_build_header(hbuf, &s);
	hbuf[0] = 'X';
	ck_assert_int_lt(ubdk_header_decode(hbuf, UBDK_HDR_V3_SIZE, NAME, &h,
					    NULL), 0);
	TU_EXPECT_ERR(ubdk_header_decode(hbuf, UBDK_HDR_V3_SIZE, NULL, &h, &e),
		      e, UBDK_E_BAD_MAGIC);
	ck_assert_uint_gt(strlen(e.msg), 0);
}
END_TEST

/* A name longer than the message buffer is cut, not overflowed. */
START_TEST(long_name_truncated)
{
	char *name = malloc(3 * UBDK_ERR_MSG_MAX);
	struct ubdk_header h;
	struct ubdk_err e;

	memset(name, 'n', 3 * UBDK_ERR_MSG_MAX - 1);
	name[3 * UBDK_ERR_MSG_MAX - 1] = '\0';
	memset(hbuf, 0, sizeof(hbuf));
	memset(&e, 0x55, sizeof(e));
	TU_EXPECT_ERR(ubdk_header_decode(hbuf, 100, name, &h, &e), e,
		      UBDK_E_BAD_MAGIC);
	ck_assert_uint_eq(strnlen(e.msg, sizeof(e.msg)), UBDK_ERR_MSG_MAX - 1);
	ck_assert_mem_eq(e.msg, name, 64);
	free(name);
}
END_TEST

/* --- encoding --------------------------------------------------------------- */

static void hdr_from_spec(struct ubdk_header *h, const struct tu_spec *s)
{
	memset(h, 0, sizeof(*h));
	h->layout = s->layout;
	h->version = s->layout == UBDK_LAYOUT_V3_BROKEN ? 3 : (uint32_t)s->layout;
	h->v1_swapped = s->layout == UBDK_LAYOUT_V1 && s->big == tu_host_le();
	h->mtime = s->mtime;
	h->size = s->size;
	h->sectorsize = s->ss;
	h->alignment = s->layout == UBDK_LAYOUT_V3 ? s->align : s->ss;
	h->cow_format = s->cow_format;
	strcpy(h->backing, s->backing);
}

static void expect_encoding(const struct tu_spec *s)
{
	static uint8_t want[UBDK_HDR_MAX_SIZE], got[UBDK_HDR_MAX_SIZE];
	struct ubdk_header h;
	struct ubdk_err e = { 0 };
	size_t len = tu_build_header(want, s), d;

	hdr_from_spec(&h, s);
	memset(got, 0xa5, sizeof(got));
	ck_assert_int_eq(ubdk_header_encode(&h, got, sizeof(got), &e),
			 (int)len);
	d = tu_first_diff(got, want, len);
	TU_CHECK(d == len, "layout %d: byte %zu is 0x%02x, want 0x%02x",
		      s->layout, d, got[d], want[d]);
}

START_TEST(encode_v3_layout)
{
	static uint8_t b[UBDK_HDR_MAX_SIZE];
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e = { 0 };

	expect_encoding(&s);
	/* The same, spelled out at fixed offsets: all big-endian. */
	hdr_from_spec(&h, &s);
	ck_assert_int_eq(ubdk_header_encode(&h, b, sizeof(b), &e), 4128);
	ck_assert_mem_eq(b, "OOOM\0\0\0\3", 8);
	ck_assert_mem_eq(b + 8, "\x5f\x37\x59\xdf", 4);
	ck_assert_mem_eq(b + 12, "\0\0\0\x12\x34\x56\x78\x9a", 8);
	ck_assert_mem_eq(b + 20, "\0\0\x02\0", 4);
	ck_assert_mem_eq(b + 24, "\0\0\x10\0", 4);
	ck_assert_mem_eq(b + 28, "\0\0\0\0", 4);
	ck_assert_str_eq((char *)b + 32, "/srv/images/root_fs.img");
	for (size_t i = 32 + strlen(s.backing); i < 4128; i++)
		TU_CHECK(b[i] == 0, "byte %zu not zero", i);
}
END_TEST

START_TEST(encode_v2_layout)
{
	static uint8_t b[UBDK_HDR_MAX_SIZE];
	struct tu_spec s = {
		.layout = UBDK_LAYOUT_V2, .mtime = 0xa1b2c3d4, .size = 0x10203040506ULL,
		.ss = 2048, .backing = "/images/v2 backing",
	};
	struct ubdk_header h;
	struct ubdk_err e = { 0 };

	expect_encoding(&s);
	hdr_from_spec(&h, &s);
	ck_assert_int_eq(ubdk_header_encode(&h, b, sizeof(b), &e), 4120);
	ck_assert_mem_eq(b, "OOOM\0\0\0\2", 8);
	ck_assert_str_eq((char *)b + 8, "/images/v2 backing");
	ck_assert_mem_eq(b + 4104, "\xa1\xb2\xc3\xd4", 4);
	ck_assert_mem_eq(b + 4108, "\0\0\x01\x02\x03\x04\x05\x06", 8);
	ck_assert_mem_eq(b + 4116, "\0\0\x08\0", 4);
}
END_TEST

/* _i = 0: native order (v1_swapped false), 1: the other order. */
START_TEST(encode_v1_layout)
{
	static uint8_t b[UBDK_HDR_MAX_SIZE];
	bool swapped = _i == 1, big = tu_host_le() == swapped;
	struct tu_spec s = {
		.layout = UBDK_LAYOUT_V1, .big = big, .mtime = 0x11223344,
		.size = 0x55667788ULL, .ss = 512, .backing = "/v1/disk",
	};
	struct ubdk_header h;
	struct ubdk_err e = { 0 };

	expect_encoding(&s);
	hdr_from_spec(&h, &s);
	ck_assert_int_eq(h.v1_swapped, swapped);
	ck_assert_int_eq(ubdk_header_encode(&h, b, sizeof(b), &e), 280);
	ck_assert_mem_eq(b, big ? "OOOM\0\0\0\1" : "MOOO\1\0\0\0", 8);
	ck_assert_mem_eq(b + 264, big ? "\x11\x22\x33\x44" : "\x44\x33\x22\x11",
			 4);
	ck_assert_mem_eq(b + 276, big ? "\0\0\x02\0" : "\0\x02\0\0", 4);
}
END_TEST

/* encode -> decode keeps every field, for random headers of each layout. */
START_TEST(encode_decode_round_trip)
{
	static uint8_t b[UBDK_HDR_MAX_SIZE];
	static char path[UBDK_PATH_MAX];
	struct tu_rng rng;
	struct ubdk_header h, d;
	struct ubdk_err e = { 0 };

	tu_rng_seed(&rng, 7);
	for (int i = 0; i < 3000; i++) {
		int layout = (int)tu_below(&rng, 3) + 1;
		size_t max = layout == 1 ? 255 : 4095, plen;
		int ret;

		memset(&h, 0, sizeof(h));
		h.layout = layout;
		h.version = (uint32_t)layout;
		h.v1_swapped = layout == 1 && tu_below(&rng, 2);
		h.mtime = (uint32_t)tu_rand(&rng);
		h.size = 1 + (tu_rand(&rng) >> (24 + tu_below(&rng, 40)));
		h.sectorsize = 1U << tu_below(&rng, 17);
		h.alignment = layout == 3 ? 1 + (uint32_t)tu_below(&rng, 1 << 16) :
			      h.sectorsize;
		plen = tu_below(&rng, 2) ? max : 1 + tu_below(&rng, max);
		for (size_t k = 0; k < plen; k++)
			path[k] = (char)(1 + tu_below(&rng, 255));
		path[plen] = '\0';
		/* A path starting with NUL-free bytes never looks broken. */
		memcpy(h.backing, path, plen + 1);
		ret = ubdk_header_encode(&h, b, sizeof(b), &e);
		TU_CHECK(ret == (int)tu_header_len(layout), "%d: %s", ret,
			      e.msg);
		TU_OK(ubdk_header_decode(b, (size_t)ret, NAME, &d, &e), e);
		TU_EQ(d.layout, h.layout);
		TU_EQ(d.version, h.version);
		TU_EQ(d.v1_swapped, h.v1_swapped);
		TU_EQ(d.mtime, h.mtime);
		TU_EQ(d.size, h.size);
		TU_EQ(d.sectorsize, h.sectorsize);
		TU_EQ(d.alignment, h.alignment);
		TU_EQ(d.cow_format, 0);
		TU_CHECK(strcmp(d.backing, h.backing) == 0, "backing differs");
	}
}
END_TEST

static void encode_expect(const struct ubdk_header *h, size_t len, int code)
{
	static uint8_t b[UBDK_HDR_MAX_SIZE];
	struct ubdk_err e = { 0 };

	TU_EXPECT_ERR(ubdk_header_encode(h, b, len, &e), e, code);
}

START_TEST(encode_rejects)
{
	struct tu_spec s = spec_v3();
	struct ubdk_header h;

	hdr_from_spec(&h, &s);
	/* Read-only layout. */
	h.layout = UBDK_LAYOUT_V3_BROKEN;
	encode_expect(&h, UBDK_HDR_MAX_SIZE, UBDK_E_INVALID_ARG);
	/* A buffer one byte short of the header. */
	hdr_from_spec(&h, &s);
	encode_expect(&h, UBDK_HDR_V3_SIZE - 1, UBDK_E_INVALID_ARG);
	h.cow_format = 2;
	encode_expect(&h, UBDK_HDR_MAX_SIZE, UBDK_E_COW_FORMAT);
	hdr_from_spec(&h, &s);
	h.backing[0] = '\0';
	encode_expect(&h, UBDK_HDR_MAX_SIZE, UBDK_E_BACKING_EMPTY);
	hdr_from_spec(&h, &s);
	h.sectorsize = 768;
	encode_expect(&h, UBDK_HDR_MAX_SIZE, UBDK_E_SECTORSIZE);
	hdr_from_spec(&h, &s);
	h.alignment = 0;
	encode_expect(&h, UBDK_HDR_MAX_SIZE, UBDK_E_ALIGNMENT);
	hdr_from_spec(&h, &s);
	h.size = UINT64_MAX;
	encode_expect(&h, UBDK_HDR_MAX_SIZE, UBDK_E_OVERFLOW);
}
END_TEST

/* A v1 path has 255 usable bytes, v2 and v3 4095. */
START_TEST(encode_path_limits)
{
	static uint8_t b[UBDK_HDR_MAX_SIZE];
	int layout = (int)_i + 1;
	size_t max = layout == 1 ? 255 : 4095;
	struct tu_spec s = spec_v3();
	struct ubdk_header h;
	struct ubdk_err e = { 0 };

	s.layout = layout;
	s.big = !tu_host_le();
	hdr_from_spec(&h, &s);
	memset(h.backing, 'q', sizeof(h.backing));
	h.backing[0] = '/';
	h.backing[max] = '\0';
	ck_assert_int_eq(ubdk_header_encode(&h, b, sizeof(b), &e),
			 (int)tu_header_len(layout));
	h.backing[max] = 'q';
	/* v1: a 256-byte path; v2, v3: no NUL at all in the 4096 bytes. */
	if (layout == 1)
		h.backing[max + 1] = '\0';
	TU_EXPECT_ERR(ubdk_header_encode(&h, b, sizeof(b), &e), e,
		      UBDK_E_PATH_TOO_LONG);
}
END_TEST

Suite *header_suite(void)
{
	Suite *s = suite_create("header");
	TCase *tc = tcase_create("decode");
	int ngeo = (int)(sizeof(geo_cases) / sizeof(geo_cases[0]));
	int nshort = (int)(sizeof(short_cases) / sizeof(short_cases[0]));

	tcase_add_test(tc, decode_v3);
	tcase_add_test(tc, decode_v3_with_trailing_bytes);
	tcase_add_test(tc, decode_v2);
	tcase_add_loop_test(tc, decode_v1, 0, 2);
	tcase_add_test(tc, decode_v3_broken);
	tcase_add_test(tc, decode_without_err_or_name);
	tcase_add_test(tc, long_name_truncated);
	tcase_add_loop_test(tc, exact_header_lengths, 0, 4);
	suite_add_tcase(s, tc);

	tc = tcase_create("geometry");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, geometry_by_hand, 0, ngeo);
	tcase_add_test(tc, geometry_locate);
	tcase_add_loop_test(tc, geometry_through_decode, 0, ngeo);
	tcase_add_test(tc, geometry_random);
	tcase_add_test(tc, geometry_unknown_layout);
	suite_add_tcase(s, tc);

	tc = tcase_create("invalid");
	tcase_add_test(tc, invalid_bad_magic);
	tcase_add_loop_test(tc, invalid_bad_version, 0, 4);
	tcase_add_test(tc, invalid_cow_format);
	tcase_add_loop_test(tc, invalid_sectorsize_zero, 0, 4);
	tcase_add_loop_test(tc, invalid_sectorsize_not_pow2, 0, 4);
	tcase_add_test(tc, invalid_sectorsize_negative_v1_v2);
	tcase_add_loop_test(tc, invalid_alignment_zero, 0, 2);
	tcase_add_loop_test(tc, invalid_overflow_data_region, 0, 4);
	tcase_add_loop_test(tc, invalid_overflow_bitmap_region, 0, 4);
	tcase_add_loop_test(tc, overflow_boundary, 0, 4);
	tcase_add_loop_test(tc, invalid_short_header, 0, nshort);
	tcase_add_loop_test(tc, invalid_backing_unterminated, 0, 4);
	tcase_add_loop_test(tc, invalid_backing_empty, 0, 4);
	tcase_add_test(tc, v3_all_zero_path_reads_as_broken);
	suite_add_tcase(s, tc);

	tc = tcase_create("encode");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, encode_v3_layout);
	tcase_add_test(tc, encode_v2_layout);
	tcase_add_loop_test(tc, encode_v1_layout, 0, 2);
	tcase_add_test(tc, encode_decode_round_trip);
	tcase_add_test(tc, encode_rejects);
	tcase_add_loop_test(tc, encode_path_limits, 0, 3);
	suite_add_tcase(s, tc);
	return s;
}
