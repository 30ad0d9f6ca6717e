/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An open COW: accessors, bitmap questions, runs, the merged view, writes,
 * flush and locks.  COW files are assembled here byte by byte (header,
 * bitmap, data area full of junk where bits are clear) and the merged view
 * each should give is computed sector by sector from the format rules.
 */
/* mknod() is XSI. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "suites.h"
#include "test_util.h"

#define MTIME 1500000000

/* A hand-built COW + backing pair and the merged view it stands for. */
struct pair {
	int layout;
	bool big;
	uint32_t ss, align;
	uint64_t size;            /* device size in the header */
	uint64_t backing_len;     /* actual backing size (may be short) */
	struct tu_geo g;
	uint8_t *bitmap;          /* as written, g.bitmap_used bytes */
	uint8_t *back;            /* backing content */
	uint8_t *data;            /* the COW's data area, size bytes */
	uint8_t *ref;             /* merged view, size bytes */
	char cow[PATH_MAX], backing[PATH_MAX];
};

struct pair_cfg {
	int layout;
	bool swapped;
	uint32_t ss, align;
	uint64_t size;
	uint64_t backing_len;     /* 0: same as size */
};

static const struct pair_cfg pair_cfgs[] = {
	{ UBDK_LAYOUT_V3, false, 512, 4096, 300 * 512 + 77, 0 },
	{ UBDK_LAYOUT_V3_BROKEN, false, 512, 4096, 300 * 512 + 77, 0 },
	{ UBDK_LAYOUT_V3, false, 4096, 512, 40 * 4096, 0 },
	{ UBDK_LAYOUT_V2, false, 512, 0, 3904 * 512 + 1, 0 },
	{ UBDK_LAYOUT_V2, false, 1024, 0, 100 * 1024, 0 },
	{ UBDK_LAYOUT_V1, false, 512, 0, 1856 * 512 + 1, 0 },
	{ UBDK_LAYOUT_V1, true, 512, 0, 17 * 512 + 3, 0 },
	/* A backing shorter than the device: zeros past its end. */
	{ UBDK_LAYOUT_V3, false, 512, 4096, 200 * 512, 77 * 512 + 13 },
};

#define NPAIRS ((int)(sizeof(pair_cfgs) / sizeof(pair_cfgs[0])))

static bool ref_in_cow(const struct pair *p, uint64_t n)
{
	return n < p->g.covered && tu_bit(p->bitmap, n);
}

static void build_pair(struct pair *p, const struct pair_cfg *c, uint64_t seed)
{
	static uint8_t hdr[UBDK_HDR_MAX_SIZE];
	struct tu_rng rng;
	struct tu_spec s;
	uint8_t *data;
	size_t hlen;
	bool v = false;

	memset(p, 0, sizeof(*p));
	tu_rng_seed(&rng, seed);
	p->layout = c->layout;
	p->big = c->layout == UBDK_LAYOUT_V1 ? tu_host_le() == c->swapped : true;
	p->ss = c->ss;
	p->align = c->layout >= UBDK_LAYOUT_V3 ? c->align : c->ss;
	p->size = c->size;
	p->backing_len = c->backing_len ? c->backing_len : c->size;
	tu_geometry(p->layout, p->size, p->ss, p->align, &p->g);
	tu_fmt(p->cow, sizeof(p->cow), "%s/pair.cow", tu_dir);
	tu_fmt(p->backing, sizeof(p->backing), "%s/pair.img", tu_dir);

	p->back = malloc(p->backing_len);
	tu_fill(&rng, p->back, p->backing_len);
	tu_write_file(p->backing, p->back, p->backing_len);
	tu_set_mtime(p->backing, MTIME);

	/* Runs of set and clear bits, plus junk in the padding bits. */
	p->bitmap = calloc(1, p->g.bitmap_used + 1);
	for (uint64_t n = 0, left = 0; n < p->g.bitmap_used * 8; n++) {
		if (left == 0) {
			v = tu_below(&rng, 2);
			left = 1 + tu_below(&rng, 40);
		}
		left--;
		if (v || n >= p->g.covered)
			tu_setbit(p->bitmap, n);
	}

	/* The whole data area is random: clear bits must never read it. */
	data = p->data = malloc(p->size);
	tu_fill(&rng, data, p->size);
	p->ref = malloc(p->size);
	for (uint64_t i = 0; i < p->size; i++) {
		if (ref_in_cow(p, i / p->ss))
			p->ref[i] = data[i];
		else
			p->ref[i] = i < p->backing_len ? p->back[i] : 0;
	}

	s = (struct tu_spec){ .layout = p->layout, .big = p->big, .mtime = MTIME,
			      .size = p->size, .ss = p->ss, .align = p->align,
			      .backing = p->backing };
	hlen = tu_build_header(hdr, &s);
	tu_write_file(p->cow, hdr, hlen);
	tu_pwrite_file(p->cow, p->bitmap, p->g.bitmap_used, p->g.bitmap_offset);
	tu_pwrite_file(p->cow, data, p->size, p->g.data_offset);
	ck_assert_uint_eq(tu_file_size(p->cow), p->g.file_size);
}

/* Change bit n in the file and in the model. */
static void pair_set_bit(struct pair *p, uint64_t n, bool on)
{
	uint64_t end = (n + 1) * p->ss < p->size ? (n + 1) * p->ss : p->size;

	p->bitmap[n / 8] = (uint8_t)(on ? p->bitmap[n / 8] | 1u << (n % 8) :
				     p->bitmap[n / 8] & ~(1u << (n % 8)));
	tu_pwrite_file(p->cow, p->bitmap + n / 8, 1, p->g.bitmap_offset + n / 8);
	for (uint64_t i = n * p->ss; i < end; i++)
		p->ref[i] = on ? p->data[i] :
			    i < p->backing_len ? p->back[i] : 0;
}

static void free_pair(struct pair *p)
{
	free(p->data);
	free(p->bitmap);
	free(p->back);
	free(p->ref);
}

static int open_pair(const struct pair *p, int flags, struct ubdk_cow **c,
		     struct ubdk_err *e)
{
	memset(e, 0, sizeof(*e));
	/* A short backing cannot pass the size check. */
	if (p->backing_len != p->size)
		flags |= UBDK_OPEN_NO_CHECK;
	return ubdk_cow_open(p->cow, NULL, flags, c, e);
}

static void same_file(int fd, const char *path)
{
	struct stat a, b;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &a), 0);
	ck_assert_int_eq(stat(path, &b), 0);
	ck_assert(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
}

static int access_mode(int fd)
{
	return fcntl(fd, F_GETFL) & O_ACCMODE;
}

/* --- accessors -------------------------------------------------------------- */

START_TEST(open_accessors)
{
	struct pair p;
	struct ubdk_cow *c;
	struct ubdk_err e;
	const struct ubdk_header *h;
	const struct ubdk_geometry *g;

	build_pair(&p, &pair_cfgs[_i], 100 + (uint64_t)_i);
	TU_OK(open_pair(&p, 0, &c, &e), e);
	h = ubdk_cow_header(c);
	ck_assert_int_eq(h->layout, p.layout);
	ck_assert_uint_eq(h->version, p.layout == UBDK_LAYOUT_V3_BROKEN ? 3 :
				      (uint32_t)p.layout);
	ck_assert_int_eq(h->v1_swapped, pair_cfgs[_i].swapped);
	ck_assert_uint_eq(h->mtime, MTIME);
	ck_assert_uint_eq(h->size, p.size);
	ck_assert_uint_eq(h->sectorsize, p.ss);
	ck_assert_uint_eq(h->alignment, p.align);
	ck_assert_str_eq(h->backing, p.backing);

	g = ubdk_cow_geometry(c);
	ck_assert_uint_eq(g->header_len, p.g.header_len);
	ck_assert_uint_eq(g->sectors, p.g.sectors);
	ck_assert_uint_eq(g->bitmap_offset, p.g.bitmap_offset);
	ck_assert_uint_eq(g->bitmap_len, p.g.bitmap_len);
	ck_assert_uint_eq(g->bitmap_used, p.g.bitmap_used);
	ck_assert_uint_eq(g->covered, p.g.covered);
	ck_assert_uint_eq(g->data_offset, p.g.data_offset);
	ck_assert_uint_eq(g->file_size, p.g.file_size);

	ck_assert_int_eq(tu_cow_bitmap_eq(c, p.bitmap, p.g.covered), true);
	ck_assert_str_eq(ubdk_cow_path(c), p.cow);
	ck_assert_str_eq(ubdk_cow_backing_path(c), p.backing);
	same_file(ubdk_cow_fd(c), p.cow);
	same_file(ubdk_cow_backing_fd(c), p.backing);
	ck_assert_int_eq(access_mode(ubdk_cow_fd(c)), O_RDONLY);
	ck_assert_int_eq(access_mode(ubdk_cow_backing_fd(c)), O_RDONLY);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	free_pair(&p);
}
END_TEST

/* Each open flag does what it says to the descriptors. */
START_TEST(open_flags)
{
	struct pair p;
	struct ubdk_cow *c;
	struct ubdk_err e;

	build_pair(&p, &pair_cfgs[0], 1);
	TU_OK(open_pair(&p, UBDK_OPEN_RDWR, &c, &e), e);
	ck_assert_int_eq(access_mode(ubdk_cow_fd(c)), O_RDWR);
	ck_assert_int_eq(access_mode(ubdk_cow_backing_fd(c)), O_RDONLY);
	ck_assert_int_eq(ubdk_cow_close(c), 0);

	TU_OK(open_pair(&p, UBDK_OPEN_BACKING_RDWR, &c, &e), e);
	ck_assert_int_eq(access_mode(ubdk_cow_fd(c)), O_RDONLY);
	ck_assert_int_eq(access_mode(ubdk_cow_backing_fd(c)), O_RDWR);
	ck_assert_int_eq(ubdk_cow_close(c), 0);

	TU_OK(open_pair(&p, UBDK_OPEN_NO_BACKING, &c, &e), e);
	ck_assert_int_eq(ubdk_cow_backing_fd(c), -1);
	ck_assert_ptr_null(ubdk_cow_backing_path(c));
	ck_assert_int_eq(ubdk_cow_close(c), 0);

	/* NO_BACKING also works when the backing file is gone. */
	ck_assert_int_eq(unlink(p.backing), 0);
	TU_OK(open_pair(&p, UBDK_OPEN_NO_BACKING, &c, &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	TU_EXPECT_ERR(open_pair(&p, 0, &c, &e), e, UBDK_E_SYS);
	ck_assert_int_eq(e.errnum, ENOENT);
	TU_MSG_HAS(e, p.backing);
	ck_assert_ptr_null(c);
	free_pair(&p);
}
END_TEST

/* The size and mtime checks on open, and the flags that bypass them. */
START_TEST(open_checks_backing)
{
	struct pair p;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	const char *other = tu_path("other.img");

	build_pair(&p, &pair_cfgs[0], 2);
	tu_set_mtime(p.backing, MTIME + 60);
	TU_EXPECT_ERR(ubdk_cow_open(p.cow, NULL, 0, &c, &e), e,
		      UBDK_E_MTIME_MISMATCH);
	TU_MSG_HAS(e, p.cow);
	TU_MSG_HAS(e, p.backing);
	ck_assert_ptr_null(c);
	TU_OK(ubdk_cow_open(p.cow, NULL, UBDK_OPEN_NO_CHECK, &c, &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);

	tu_set_mtime(p.backing, MTIME);
	tu_pwrite_file(p.backing, "x", 1, p.size);
	tu_set_mtime(p.backing, MTIME);
	TU_EXPECT_ERR(ubdk_cow_open(p.cow, NULL, 0, &c, &e), e,
		      UBDK_E_SIZE_MISMATCH);
	TU_MSG_HAS(e, p.cow);
	TU_MSG_HAS(e, p.backing);
	TU_OK(ubdk_cow_open(p.cow, NULL, UBDK_OPEN_NO_CHECK, &c, &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	TU_OK(ubdk_cow_open(p.cow, NULL, UBDK_OPEN_NO_BACKING, &c, &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);

	/* An override replaces the header's path, and is what gets checked. */
	tu_write_file(other, p.back, p.size);
	tu_set_mtime(other, MTIME);
	TU_OK(ubdk_cow_open(p.cow, other, 0, &c, &e), e);
	ck_assert_str_eq(ubdk_cow_backing_path(c), other);
	same_file(ubdk_cow_backing_fd(c), other);
	ck_assert_str_eq(ubdk_cow_header(c)->backing, p.backing);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	free_pair(&p);
}
END_TEST

/* The override is the file actually read for backing sectors. */
START_TEST(open_override_is_read)
{
	struct pair p;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	const char *other = tu_path("other.img");
	uint8_t *alt, *got;

	build_pair(&p, &pair_cfgs[0], 3);
	alt = malloc(p.size);
	got = malloc(p.size);
	memset(alt, 0x5a, p.size);
	tu_write_file(other, alt, p.size);
	ck_assert_int_eq(unlink(p.backing), 0);
	TU_OK(ubdk_cow_open(p.cow, other, UBDK_OPEN_NO_CHECK, &c, &e), e);
	TU_OK(ubdk_cow_pread(c, got, p.size, 0, &e), e);
	for (uint64_t i = 0; i < p.size; i++)
		TU_CHECK(got[i] == (ref_in_cow(&p, i / p.ss) ? p.ref[i] : 0x5a),
			 "byte %llu", (unsigned long long)i);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	free(alt);
	free(got);
	free_pair(&p);
}
END_TEST

START_TEST(open_rejects_files)
{
	const char *bad = tu_path("bad.cow");
	static int sentinel;
	/* Non-NULL, so that we see open clear it on failure. */
	struct ubdk_cow *c = (struct ubdk_cow *)(void *)&sentinel;
	struct ubdk_err e = { 0 };
	uint8_t junk[8192] = { 0 };

	TU_EXPECT_ERR(ubdk_cow_open(tu_path("missing.cow"), NULL, 0, &c, &e), e,
		      UBDK_E_SYS);
	ck_assert_int_eq(e.errnum, ENOENT);
	TU_MSG_HAS(e, "missing.cow");
	ck_assert_ptr_null(c);

	TU_EXPECT_ERR(ubdk_cow_open(tu_dir, NULL, 0, &c, &e), e,
		      UBDK_E_NOT_REGULAR);
	TU_MSG_HAS(e, tu_dir);

	tu_write_file(bad, junk, sizeof(junk));
	TU_EXPECT_ERR(ubdk_cow_open(bad, NULL, 0, &c, &e), e, UBDK_E_BAD_MAGIC);
	TU_MSG_HAS(e, bad);

	tu_write_file(bad, "", 0);
	TU_EXPECT_ERR(ubdk_cow_open(bad, NULL, 0, &c, &e), e,
		      UBDK_E_SHORT_HEADER);
	TU_MSG_HAS(e, bad);

	/* A read-write open of a read-only file fails cleanly. */
	ck_assert_int_eq(chmod(bad, 0444), 0);
	if (geteuid() != 0) {
		TU_EXPECT_ERR(ubdk_cow_open(bad, NULL, UBDK_OPEN_RDWR, &c, &e),
			      e, UBDK_E_SYS);
		ck_assert_int_eq(e.errnum, EACCES);
	}
}
END_TEST

/* SHORT_HEADER through open: a v3 header cut inside its path field. */
START_TEST(open_short_header)
{
	struct pair p;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };

	build_pair(&p, &pair_cfgs[_i], 4);
	tu_truncate(p.cow, p.g.header_len - 1);
	TU_EXPECT_ERR(ubdk_cow_open(p.cow, NULL, UBDK_OPEN_NO_BACKING, &c, &e),
		      e, UBDK_E_SHORT_HEADER);
	TU_MSG_HAS(e, p.cow);
	free_pair(&p);
}
END_TEST

/* SHORT_BITMAP through open: the file ends inside the kernel's bitmap. */
START_TEST(open_short_bitmap)
{
	struct pair p;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };

	build_pair(&p, &pair_cfgs[_i], 5);
	tu_truncate(p.cow, p.g.bitmap_offset + p.g.bitmap_len - 1);
	TU_EXPECT_ERR(ubdk_cow_open(p.cow, NULL, UBDK_OPEN_NO_BACKING, &c, &e),
		      e, UBDK_E_SHORT_BITMAP);
	TU_MSG_HAS(e, p.cow);
	ck_assert_ptr_null(c);
	/* Just the header (v3: no bitmap at all before 8192). */
	tu_truncate(p.cow, p.g.header_len);
	TU_EXPECT_ERR(ubdk_cow_open(p.cow, NULL, UBDK_OPEN_NO_BACKING, &c, &e),
		      e, UBDK_E_SHORT_BITMAP);

	/* Exactly the bitmap: opens; the data area is simply absent. */
	tu_truncate(p.cow, p.g.bitmap_offset + p.g.bitmap_len);
	TU_OK(ubdk_cow_open(p.cow, NULL, UBDK_OPEN_NO_BACKING, &c, &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	free_pair(&p);
}
END_TEST

/* A sector marked present whose data lies past the end of the file. */
START_TEST(pread_short_data)
{
	struct pair p;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	uint64_t n = 0;
	uint8_t *buf;

	build_pair(&p, &pair_cfgs[0], 6);
	while (!ref_in_cow(&p, n))
		n++;
	buf = malloc(p.ss);
	tu_truncate(p.cow, p.g.data_offset + n * p.ss + p.ss / 2);
	TU_OK(open_pair(&p, 0, &c, &e), e);
	TU_EXPECT_ERR(ubdk_cow_pread(c, buf, p.ss, n * p.ss, &e), e,
		      UBDK_E_SHORT_DATA);
	TU_MSG_HAS(e, p.cow);
	/* The half that is there still reads. */
	TU_OK(ubdk_cow_pread(c, buf, p.ss / 2, n * p.ss, &e), e);
	ck_assert_int_eq(memcmp(buf, p.ref + n * p.ss, p.ss / 2), 0);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	free(buf);
	free_pair(&p);
}
END_TEST

/* --- bitmap questions and runs ------------------------------------------------ */

START_TEST(test_and_count)
{
	struct pair p;
	struct ubdk_cow *c;
	struct ubdk_err e;
	struct tu_rng rng;
	uint64_t sectors;

	build_pair(&p, &pair_cfgs[_i], 200 + (uint64_t)_i);
	TU_OK(open_pair(&p, 0, &c, &e), e);
	sectors = p.g.sectors;
	for (uint64_t n = 0; n < sectors + 70; n++)
		TU_CHECK(tu_cow_test(c, n) == ref_in_cow(&p, n),
			      "sector %llu", (unsigned long long)n);
	tu_rng_seed(&rng, 17);
	for (int i = 0; i < 500; i++) {
		uint64_t a = tu_below(&rng, sectors + 20), b, want = 0;

		b = tu_below(&rng, 4) ? a + tu_below(&rng, sectors + 20 - a + 1) :
					UINT64_MAX;
		if (tu_below(&rng, 10) == 0)
			b = a - (a > 0);
		for (uint64_t n = a; n < b && n < sectors; n++)
			want += ref_in_cow(&p, n);
		TU_CHECK(tu_cow_count(c, a, b) == want,
			      "count [%llu,%llu): %llu, want %llu",
			      (unsigned long long)a, (unsigned long long)b,
			      (unsigned long long)tu_cow_count(c, a, b),
			      (unsigned long long)want);
	}
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	free_pair(&p);
}
END_TEST

/* Runs over [a, b) tile the range, are homogeneous, and maximal. */
static void check_runs(struct ubdk_cow *c, const struct pair *p, uint64_t a,
		       uint64_t b)
{
	uint64_t pos = a, stop = b < p->g.sectors ? b : p->g.sectors;
	struct ubdk_run run, prev = { 0 };
	int got, nruns = 0;

	while ((got = tu_cow_next_run(c, &pos, b, &run)) == 1) {
		TU_EQ(run.start, nruns ? prev.start + prev.count : a);
		TU_CHECK(run.count > 0 && pos <= stop, "run %llu+%llu past %llu",
			 (unsigned long long)run.start,
			 (unsigned long long)run.count, (unsigned long long)stop);
		TU_EQ(pos, run.start + run.count);
		for (uint64_t n = run.start; n < pos; n++)
			TU_CHECK(ref_in_cow(p, n) == (run.src == UBDK_RUN_COW),
				      "[%llu,%llu): sector %llu in run %llu+%llu",
				      (unsigned long long)a, (unsigned long long)b,
				      (unsigned long long)n,
				      (unsigned long long)run.start,
				      (unsigned long long)run.count);
		/* Zeros exactly where no byte of the sector is in the backing. */
		if (run.src != UBDK_RUN_COW)
			TU_CHECK((run.src == UBDK_RUN_ZERO) ==
				 (run.start * p->ss >= p->backing_len),
				 "run at %llu: src %d, backing %llu bytes",
				 (unsigned long long)run.start, run.src,
				 (unsigned long long)p->backing_len);
		TU_CHECK(!nruns || run.src != prev.src,
			 "run at %llu not maximal", (unsigned long long)run.start);
		prev = run;
		TU_CHECK(++nruns < 100000, "endless runs");
	}
	TU_EQ(got, 0);
	TU_EQ(pos, a < stop ? stop : a);
	if (a >= stop)
		TU_EQ(nruns, 0);
}

START_TEST(next_run_ranges)
{
	struct pair p;
	struct ubdk_cow *c;
	struct ubdk_err e;
	struct tu_rng rng;
	uint64_t sectors;

	build_pair(&p, &pair_cfgs[_i], 300 + (uint64_t)_i);
	TU_OK(open_pair(&p, 0, &c, &e), e);
	sectors = p.g.sectors;
	check_runs(c, &p, 0, sectors);
	check_runs(c, &p, 0, UINT64_MAX);
	check_runs(c, &p, sectors, sectors + 5);
	check_runs(c, &p, sectors - 1, sectors);
	check_runs(c, &p, 5, 5);
	check_runs(c, &p, 9, 4);
	tu_rng_seed(&rng, 23);
	for (int i = 0; i < 300; i++) {
		uint64_t a = tu_below(&rng, sectors + 3);

		check_runs(c, &p, a, a + tu_below(&rng, sectors + 3 - a + 5));
	}
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	free_pair(&p);
}
END_TEST

/* --- the merged view ------------------------------------------------------------ */

static void expect_read(struct ubdk_cow *c, const uint8_t *want, size_t len,
			uint64_t off)
{
	static uint8_t got[1 << 22];
	struct ubdk_err e = { 0 };
	size_t d;

	ck_assert_uint_le(len, sizeof(got));
	memset(got, 0xcc, len);
	TU_OK(ubdk_cow_pread(c, got, len, off, &e), e);
	d = tu_first_diff(got, want + off, len);
	TU_CHECK(d == len, "read %zu at %llu: byte %llu is 0x%02x, want 0x%02x",
		      len, (unsigned long long)off, (unsigned long long)(off + d),
		      got[d], want[off + d]);
}

START_TEST(pread_merged_view)
{
	struct pair p;
	struct ubdk_cow *c;
	struct ubdk_err e;
	struct tu_rng rng;

	build_pair(&p, &pair_cfgs[_i], 400 + (uint64_t)_i);
	TU_OK(open_pair(&p, 0, &c, &e), e);
	expect_read(c, p.ref, p.size, 0);
	tu_rng_seed(&rng, 29);
	for (int i = 0; i < 400; i++) {
		uint64_t off = tu_below(&rng, p.size + 1), len;

		switch (tu_below(&rng, 4)) {
		case 0:         /* a few bytes, often across a sector edge */
			len = tu_below(&rng, 20);
			off = off - off % p.ss + p.ss - tu_below(&rng, 10);
			if (off > p.size)
				off = p.size;
			break;
		case 1:         /* whole sectors */
			off -= off % p.ss;
			len = p.ss * tu_below(&rng, 50);
			break;
		default:
			len = tu_below(&rng, p.size - off + 1);
			break;
		}
		if (len > p.size - off)
			len = p.size - off;
		expect_read(c, p.ref, len, off);
	}
	/* The last byte, and nothing at the very end. */
	expect_read(c, p.ref, 1, p.size - 1);
	expect_read(c, p.ref, 0, p.size);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	free_pair(&p);
}
END_TEST

/* With NO_BACKING, backing sectors read as zeros. */
START_TEST(pread_no_backing)
{
	struct pair p;
	struct ubdk_cow *c;
	struct ubdk_err e;
	uint8_t *want;

	build_pair(&p, &pair_cfgs[_i], 500 + (uint64_t)_i);
	want = malloc(p.size);
	for (uint64_t i = 0; i < p.size; i++)
		want[i] = ref_in_cow(&p, i / p.ss) ? p.ref[i] : 0;
	TU_OK(open_pair(&p, UBDK_OPEN_NO_BACKING, &c, &e), e);
	expect_read(c, want, p.size, 0);
	expect_read(c, want, 3 * p.ss + 11, p.ss - 5);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	free(want);
	free_pair(&p);
}
END_TEST

START_TEST(pread_range_errors)
{
	struct pair p;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	uint8_t buf[1024];

	build_pair(&p, &pair_cfgs[0], 7);
	TU_OK(open_pair(&p, 0, &c, &e), e);
	TU_EXPECT_ERR(ubdk_cow_pread(c, buf, 1, p.size, &e), e, UBDK_E_RANGE);
	TU_MSG_HAS(e, p.cow);
	TU_EXPECT_ERR(ubdk_cow_pread(c, buf, 2, p.size - 1, &e), e,
		      UBDK_E_RANGE);
	TU_EXPECT_ERR(ubdk_cow_pread(c, buf, 0, p.size + 1, &e), e,
		      UBDK_E_RANGE);
	TU_EXPECT_ERR(ubdk_cow_pread(c, buf, 16, UINT64_MAX - 8, &e), e,
		      UBDK_E_RANGE);
	TU_EXPECT_ERR(ubdk_cow_pread(c, buf, SIZE_MAX, 0, &e), e, UBDK_E_RANGE);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	free_pair(&p);
}
END_TEST

/* A v1/v2 sector past the under-counted bitmap always reads from backing,
 * even when the data area's first byte (where its bit would be) is 0xff. */
START_TEST(pread_uncovered_sector_from_backing)
{
	struct pair p;
	struct ubdk_cow *c;
	struct ubdk_err e;
	uint64_t last;
	struct ubdk_run run;
	uint8_t ff = 0xff;

	build_pair(&p, &pair_cfgs[_i ? 5 : 3], 8);
	ck_assert_uint_lt(p.g.covered, p.g.sectors);
	last = p.g.sectors - 1;
	tu_pwrite_file(p.cow, &ff, 1, p.g.data_offset);
	/* The first data byte now holds sector 0's data, so fix the view. */
	p.data[0] = 0xff;
	if (ref_in_cow(&p, 0))
		p.ref[0] = 0xff;
	/* With the last covered sector in the COW, and then not. */
	for (int on = 1; on >= 0; on--) {
		uint64_t pos = p.g.covered - 1;

		pair_set_bit(&p, p.g.covered - 1, on);
		TU_OK(open_pair(&p, 0, &c, &e), e);
		ck_assert(!tu_cow_test(c, last));
		ck_assert_uint_eq(tu_cow_count(c, last, last + 1), 0);
		ck_assert_uint_eq(tu_cow_count(c, 0, UINT64_MAX),
				  tu_cow_count(c, 0, p.g.covered));
		/* The uncovered sector joins a backing run before it. */
		ck_assert_int_eq(tu_cow_next_run(c, &pos, UINT64_MAX, &run), 1);
		ck_assert_int_eq(run.src == UBDK_RUN_COW, on);
		ck_assert_uint_eq(run.count, (on ? 1 : p.g.sectors - p.g.covered + 1));
		if (on) {
			ck_assert_int_eq(tu_cow_next_run(c, &pos, UINT64_MAX,
							   &run), 1);
			ck_assert(run.src != UBDK_RUN_COW);
			ck_assert_uint_eq(run.start, p.g.covered);
			ck_assert_uint_eq(run.count, p.g.sectors - p.g.covered);
		}
		ck_assert_uint_eq(pos, p.g.sectors);
		ck_assert_int_eq(tu_cow_next_run(c, &pos, UINT64_MAX, &run), 0);
		check_runs(c, &p, 0, UINT64_MAX);
		expect_read(c, p.ref, p.size, 0);
		expect_read(c, p.back, p.size - (p.g.sectors - 1) * p.ss,
			    (p.g.sectors - 1) * p.ss);
		ck_assert_int_eq(ubdk_cow_close(c), 0);
	}
	free_pair(&p);
}
END_TEST

/* --- writes ----------------------------------------------------------------------- */

struct write_cfg {
	uint32_t version, ss, align;
	uint64_t size;
};

static const struct write_cfg write_cfgs[] = {
	{ 3, 512, 4096, 500 * 512 + 37 },
	{ 3, 4096, 512, 64 * 4096 },
	{ 3, 1024, 65536, 300 * 1024 + 1000 },
	{ 2, 512, 0, 400 * 512 },
	{ 2, 1024, 0, 257 * 1024 + 1 },
	{ 1, 512, 0, 333 * 512 + 100 },
	/* The under-counted v2 bitmap: the last sector cannot be written. */
	{ 2, 512, 0, 3904 * 512 + 1 },
};

/* A COW made by ubdk_create on a random backing; ref = the backing. */
struct wpair {
	struct tu_geo g;
	int layout;
	uint32_t ss, align;
	uint64_t size;
	uint8_t *ref, *bits, *back;
	char cow[PATH_MAX], backing[PATH_MAX];
	char abs_backing[PATH_MAX];   /* what the header must name */
};

static void make_wpair(struct wpair *w, const struct write_cfg *c,
		       uint64_t seed)
{
	struct ubdk_create_opts o = { c->version, c->ss, c->align };
	struct ubdk_err e = { 0 };
	struct tu_rng rng;

	memset(w, 0, sizeof(*w));
	w->layout = (int)c->version;
	w->ss = c->ss;
	w->align = c->version == 3 ? c->align : c->ss;
	w->size = c->size;
	tu_geometry(w->layout, c->size, c->ss, w->align, &w->g);
	tu_fmt(w->cow, sizeof(w->cow), "%s/w.cow", tu_dir);
	tu_fmt(w->backing, sizeof(w->backing), "%s/w.img", tu_dir);
	tu_rng_seed(&rng, seed);
	w->back = malloc(c->size);
	tu_fill(&rng, w->back, c->size);
	tu_write_file(w->backing, w->back, c->size);
	tu_set_mtime(w->backing, MTIME);
	tu_realpath(w->backing, w->abs_backing, sizeof(w->abs_backing));
	w->ref = malloc(c->size);
	memcpy(w->ref, w->back, c->size);
	w->bits = calloc(1, w->g.bitmap_used + 1);
	TU_OK(ubdk_create(w->cow, w->backing, &o, false, &e), e);
}

static void free_wpair(struct wpair *w)
{
	free(w->ref);
	free(w->bits);
	free(w->back);
}

/* Check the COW file itself: header intact, bitmap and data on disk. */
static void expect_disk(const struct wpair *w)
{
	static uint8_t hdr[UBDK_HDR_MAX_SIZE];
	struct tu_spec s = {
		.layout = w->layout, .big = !tu_host_le(), .mtime = MTIME,
		.size = w->size, .ss = w->ss, .align = w->align,
		.backing = w->abs_backing,
	};
	size_t len, hlen = tu_build_header(hdr, &s);
	uint8_t *file = tu_read_file(w->cow, &len);

	ck_assert_uint_eq(len, w->g.file_size);
	TU_CHECK(memcmp(file, hdr, hlen) == 0, "header byte %zu changed",
		      tu_first_diff(file, hdr, hlen));
	TU_CHECK(memcmp(file + w->g.bitmap_offset, w->bits,
			     w->g.bitmap_used) == 0,
		      "bitmap byte %zu on disk differs",
		      tu_first_diff(file + w->g.bitmap_offset, w->bits,
				    w->g.bitmap_used));
	for (uint64_t n = 0; n < w->g.sectors; n++) {
		uint64_t at = n * w->ss, l = w->size - at < w->ss ? w->size - at : w->ss;

		if (!tu_bit(w->bits, n))
			continue;
		TU_CHECK(memcmp(file + w->g.data_offset + at, w->ref + at, l) == 0,
			      "sector %llu not at data_offset + n * ss",
			      (unsigned long long)n);
	}
	free(file);
}

START_TEST(pwrite_random)
{
	const struct write_cfg *cfg = &write_cfgs[_i];
	struct wpair w;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	struct tu_rng rng;
	uint8_t *buf, *disk;
	uint64_t sectors, written = 0;
	size_t len;

	make_wpair(&w, cfg, 600 + (uint64_t)_i);
	sectors = w.g.sectors;
	buf = malloc(17 * (size_t)w.ss);
	TU_OK(ubdk_cow_open(w.cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	tu_rng_seed(&rng, 31 + (uint64_t)_i);
	for (int i = 0; i < 150; i++) {
		uint64_t first = tu_below(&rng, sectors), k = 1 + tu_below(&rng, 16);
		uint64_t off = first * w.ss, n;
		size_t blen;
		int ret;

		if (first + k > sectors)
			k = sectors - first;
		blen = (size_t)(k * w.ss);
		/* The device's last sector may be partial: write to its end. */
		if (off + blen > w.size)
			blen = (size_t)(w.size - off);
		tu_fill(&rng, buf, blen);
		ret = ubdk_cow_pwrite(c, buf, blen, off, &e);
		if (first + k > w.g.covered) {
			/* v1/v2: the last sectors have no bit to set. */
			TU_EXPECT_ERR(ret, e, UBDK_E_RANGE);
			continue;
		}
		TU_OK(ret, e);
		memcpy(w.ref + off, buf, blen);
		for (n = first; n < first + k; n++)
			tu_setbit(w.bits, n);
		written++;
		if (i % 10 == 0)
			expect_read(c, w.ref, w.size, 0);
	}
	ck_assert_uint_gt(written, 100);
	ck_assert_int_eq(tu_cow_bitmap_eq(c, w.bits, w.g.covered), true);
	for (uint64_t n = 0; n < sectors; n++)
		TU_CHECK(tu_cow_test(c, n) == tu_bit(w.bits, n), "sector %llu",
			 (unsigned long long)n);
	TU_OK(ubdk_cow_flush(c, &e), e);
	expect_read(c, w.ref, w.size, 0);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	expect_disk(&w);

	/* A fresh open sees the same thing. */
	TU_OK(ubdk_cow_open(w.cow, NULL, 0, &c, &e), e);
	expect_read(c, w.ref, w.size, 0);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	/* The backing file was never written. */
	disk = tu_read_file(w.backing, &len);
	ck_assert_int_eq(memcmp(disk, w.back, w.size), 0);
	free(disk);
	free(buf);
	free_wpair(&w);
}
END_TEST

/* One write, checked at its exact place in the file. */
START_TEST(pwrite_lands_at_data_offset)
{
	struct wpair w;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	uint8_t sec[1024], *file;
	size_t len;
	uint64_t n = 13;

	make_wpair(&w, &write_cfgs[0], 9);
	memset(sec, 0x3c, sizeof(sec));
	TU_OK(ubdk_cow_open(w.cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	TU_OK(ubdk_cow_pwrite(c, sec, 512, n * 512, &e), e);
	TU_OK(ubdk_cow_pwrite(c, sec, 1024, 9 * 512, &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	file = tu_read_file(w.cow, &len);
	/* v3 default: bitmap at 8192, data at 8192 + ceil(501/8) -> 12288. */
	ck_assert_uint_eq(w.g.data_offset, 12288);
	for (size_t i = 0; i < 512; i++) {
		TU_CHECK(file[12288 + n * 512 + i] == 0x3c, "sector 13 byte %zu", i);
		TU_CHECK(file[12288 + 9 * 512 + i] == 0x3c, "sector 9 byte %zu", i);
		TU_CHECK(file[12288 + 11 * 512 + i] == 0, "sector 11 byte %zu", i);
	}
	/* Bits 9, 10 and 13: byte 1 = 0x02 | 0x04 | 0x20. */
	ck_assert_uint_eq(file[8192], 0);
	ck_assert_uint_eq(file[8193], 0x26);
	ck_assert_uint_eq(file[8194], 0);
	free(file);
	free_wpair(&w);
}
END_TEST

START_TEST(pwrite_rejects)
{
	struct wpair w;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	uint8_t buf[2048] = { 1 }, *before, *after;
	size_t blen, alen;

	make_wpair(&w, &write_cfgs[0], 10);
	before = tu_read_file(w.cow, &blen);

	/* Without RDWR. */
	TU_OK(ubdk_cow_open(w.cow, NULL, 0, &c, &e), e);
	TU_EXPECT_ERR(ubdk_cow_pwrite(c, buf, 512, 0, &e), e,
		      UBDK_E_READ_ONLY);
	TU_MSG_HAS(e, w.cow);
	ck_assert_int_eq(ubdk_cow_close(c), 0);

	TU_OK(ubdk_cow_open(w.cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	TU_EXPECT_ERR(ubdk_cow_pwrite(c, buf, 512, 1, &e), e,
		      UBDK_E_INVALID_ARG);
	TU_MSG_HAS(e, w.cow);
	TU_EXPECT_ERR(ubdk_cow_pwrite(c, buf, 513, 0, &e), e,
		      UBDK_E_INVALID_ARG);
	TU_EXPECT_ERR(ubdk_cow_pwrite(c, buf, 100, 512, &e), e,
		      UBDK_E_INVALID_ARG);
	/* A partial tail is only allowed when it ends at the device end. */
	TU_EXPECT_ERR(ubdk_cow_pwrite(c, buf, 36, 500 * 512, &e), e,
		      UBDK_E_INVALID_ARG);
	TU_EXPECT_ERR(ubdk_cow_pwrite(c, buf, 512, 500 * 512, &e), e,
		      UBDK_E_RANGE);
	TU_EXPECT_ERR(ubdk_cow_pwrite(c, buf, 512, 501 * 512, &e), e,
		      UBDK_E_RANGE);
	TU_EXPECT_ERR(ubdk_cow_pwrite(c, buf, 512, UINT64_MAX - 511, &e), e,
		      UBDK_E_RANGE);
	/* Nothing to do is not an error. */
	TU_OK(ubdk_cow_pwrite(c, buf, 0, 0, &e), e);
	ck_assert_uint_eq(tu_cow_count(c, 0, UINT64_MAX), 0);
	ck_assert_int_eq(ubdk_cow_close(c), 0);

	after = tu_read_file(w.cow, &alen);
	ck_assert_uint_eq(alen, blen);
	ck_assert_int_eq(memcmp(before, after, blen), 0);
	free(before);
	free(after);
	free_wpair(&w);
}
END_TEST

/* The partial last sector: writable to the end of the device. */
START_TEST(pwrite_partial_tail)
{
	struct wpair w;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	uint8_t buf[1024];

	make_wpair(&w, &write_cfgs[0], 11);
	memset(buf, 0x77, sizeof(buf));
	TU_OK(ubdk_cow_open(w.cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	TU_OK(ubdk_cow_pwrite(c, buf, 37, 500 * 512, &e), e);
	TU_OK(ubdk_cow_pwrite(c, buf, 512 + 37, 499 * 512, &e), e);
	memset(w.ref + 499 * 512, 0x77, 512 + 37);
	tu_setbit(w.bits, 499);
	tu_setbit(w.bits, 500);
	ck_assert(tu_cow_test(c, 500));
	expect_read(c, w.ref, w.size, 0);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	expect_disk(&w);
	free_wpair(&w);
}
END_TEST

/* v2 with no bit for its last sector: writing it is out of range. */
START_TEST(pwrite_uncovered_sector)
{
	struct wpair w;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	uint8_t buf[1024];

	make_wpair(&w, &write_cfgs[6], 15);
	ck_assert_uint_eq(w.g.covered, 3904);
	memset(buf, 0x42, sizeof(buf));
	TU_OK(ubdk_cow_open(w.cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	TU_EXPECT_ERR(ubdk_cow_pwrite(c, buf, 1, 3904 * 512, &e), e,
		      UBDK_E_RANGE);
	TU_MSG_HAS(e, w.cow);
	TU_EXPECT_ERR(ubdk_cow_pwrite(c, buf, 513, 3903 * 512, &e), e,
		      UBDK_E_RANGE);
	ck_assert_uint_eq(tu_cow_count(c, 0, UINT64_MAX), 0);
	/* The sector before it is the last one with a bit. */
	TU_OK(ubdk_cow_pwrite(c, buf, 512, 3903 * 512, &e), e);
	memset(w.ref + 3903 * 512, 0x42, 512);
	tu_setbit(w.bits, 3903);
	expect_read(c, w.ref, w.size, 0);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	expect_disk(&w);
	free_wpair(&w);
}
END_TEST

/* Flush succeeds, and reports a dead descriptor; close reports it too. */
START_TEST(flush_and_close_errors)
{
	struct wpair w;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };

	make_wpair(&w, &write_cfgs[0], 12);
	TU_OK(ubdk_cow_open(w.cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	TU_OK(ubdk_cow_flush(c, &e), e);
	ck_assert_int_eq(ubdk_cow_close(NULL), 0);
	/* Pull the descriptor from under it. */
	ck_assert_int_eq(close(ubdk_cow_fd(c)), 0);
	TU_EXPECT_ERR(ubdk_cow_flush(c, &e), e, UBDK_E_SYS);
	ck_assert_int_eq(e.errnum, EBADF);
	TU_MSG_HAS(e, w.cow);
	ck_assert_int_eq(ubdk_cow_close(c), -EBADF);
	free_wpair(&w);
}
END_TEST

/* --- locks ---------------------------------------------------------------------- */

/*
 * fcntl locks belong to a process, so the second opener must be another
 * process.  Returns 100 if the child's open succeeded, otherwise the error
 * code it got; 200 if the message did not name `must_name`.
 */
static int open_in_child(const char *cow, int flags, const char *must_name)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct ubdk_cow *c;
		struct ubdk_err e = { 0 };

		if (ubdk_cow_open(cow, NULL, flags, &c, &e) == 0) {
			ubdk_cow_close(c);
			_exit(100);
		}
		if (must_name && !strstr(e.msg, must_name))
			_exit(200);
		_exit(e.code);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(locks_between_processes)
{
	struct wpair w;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	const int L = UBDK_OPEN_LOCK, RW = UBDK_OPEN_RDWR;

	make_wpair(&w, &write_cfgs[0], 13);
	/* Nobody holds anything: both succeed. */
	ck_assert_int_eq(open_in_child(w.cow, L | RW, NULL), 100);

	/* A writer excludes readers and writers that lock... */
	TU_OK(ubdk_cow_open(w.cow, NULL, L | RW, &c, &e), e);
	ck_assert_int_eq(open_in_child(w.cow, L, w.cow), UBDK_E_LOCKED);
	ck_assert_int_eq(open_in_child(w.cow, L | RW, w.cow), UBDK_E_LOCKED);
	/* ...but not one that does not ask for locks. */
	ck_assert_int_eq(open_in_child(w.cow, 0, NULL), 100);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	ck_assert_int_eq(open_in_child(w.cow, L | RW, NULL), 100);

	/* Readers share; a writer is refused while a reader holds it. */
	TU_OK(ubdk_cow_open(w.cow, NULL, L, &c, &e), e);
	ck_assert_int_eq(open_in_child(w.cow, L, NULL), 100);
	ck_assert_int_eq(open_in_child(w.cow, L | RW, w.cow), UBDK_E_LOCKED);
	/* The reader holds a read lock on the backing: no in-place writer. */
	ck_assert_int_eq(open_in_child(w.cow, L | UBDK_OPEN_BACKING_RDWR,
				       w.backing), UBDK_E_LOCKED);
	ck_assert_int_eq(open_in_child(w.cow, L | UBDK_OPEN_NO_BACKING, NULL),
			 100);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	ck_assert_int_eq(open_in_child(w.cow, L | UBDK_OPEN_BACKING_RDWR, NULL),
			 100);
	free_wpair(&w);
}
END_TEST

/* A lock the kernel would hold (any fcntl write lock) is honoured too. */
START_TEST(locks_foreign_holder)
{
	struct wpair w;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd;

	make_wpair(&w, &write_cfgs[0], 14);
	fd = open(w.cow, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_SETLK, &fl), 0);
	ck_assert_int_eq(open_in_child(w.cow, UBDK_OPEN_LOCK, w.cow),
			 UBDK_E_LOCKED);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(open_in_child(w.cow, UBDK_OPEN_LOCK, NULL), 100);
	free_wpair(&w);
}
END_TEST

/*
 * The same with a block-device backing (a node for an unbound loop device,
 * which opens fine and has size 0).  The size/mtime check must not release
 * the backing's read lock: fcntl locks die when the process closes *any*
 * descriptor of the file, so the check may not open and close it.
 */
START_TEST(locks_block_device_backing)
{
	static uint8_t hdr[UBDK_HDR_MAX_SIZE];
	const char *node = tu_path("blk"), *cow = tu_path("c.cow");
	struct tu_spec s = {
		.layout = UBDK_LAYOUT_V3, .mtime = MTIME, .ss = 512,
		.align = 4096, .backing = node,
	};
	struct tu_geo g;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	off_t size;
	int fd;

	if (mknod(node, S_IFBLK | 0600, makedev(7, 7)) < 0 ||
	    (fd = open(node, O_RDONLY)) < 0) {
		fprintf(stderr, "locks_block_device_backing: no loop device "
			"node here (%s), not tested\n", strerror(errno));
		return;
	}
	size = lseek(fd, 0, SEEK_END);
	ck_assert_int_ge(size, 0);
	ck_assert_int_eq(close(fd), 0);
	tu_set_mtime(node, MTIME);
	s.size = (uint64_t)size;
	tu_geometry(UBDK_LAYOUT_V3, s.size, 512, 4096, &g);
	tu_write_file(cow, hdr, tu_build_header(hdr, &s));
	tu_truncate(cow, g.file_size);

	/* Without the check the read lock on the device holds... */
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_LOCK | UBDK_OPEN_NO_CHECK, &c,
			    &e), e);
	ck_assert_int_eq(open_in_child(cow, UBDK_OPEN_LOCK | UBDK_OPEN_NO_CHECK |
				       UBDK_OPEN_BACKING_RDWR, node),
			 UBDK_E_LOCKED);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	/* ...and with it, it must hold too. */
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_LOCK, &c, &e), e);
	ck_assert_int_eq(open_in_child(cow, UBDK_OPEN_LOCK | UBDK_OPEN_NO_CHECK |
				       UBDK_OPEN_BACKING_RDWR, node),
			 UBDK_E_LOCKED);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
}
END_TEST

Suite *cow_suite(void)
{
	Suite *s = suite_create("cow");
	TCase *tc = tcase_create("open");

	tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, open_accessors, 0, NPAIRS);
	tcase_add_test(tc, open_flags);
	tcase_add_test(tc, open_checks_backing);
	tcase_add_test(tc, open_override_is_read);
	tcase_add_test(tc, open_rejects_files);
	tcase_add_loop_test(tc, open_short_header, 0, NPAIRS);
	tcase_add_loop_test(tc, open_short_bitmap, 0, NPAIRS);
	suite_add_tcase(s, tc);

	tc = tcase_create("read");
	tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_and_count, 0, NPAIRS);
	tcase_add_loop_test(tc, next_run_ranges, 0, NPAIRS);
	tcase_add_loop_test(tc, pread_merged_view, 0, NPAIRS);
	tcase_add_loop_test(tc, pread_no_backing, 0, NPAIRS);
	tcase_add_test(tc, pread_range_errors);
	tcase_add_test(tc, pread_short_data);
	tcase_add_loop_test(tc, pread_uncovered_sector_from_backing, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("write");
	tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, pwrite_random, 0,
			    (int)(sizeof(write_cfgs) / sizeof(write_cfgs[0])));
	tcase_add_test(tc, pwrite_lands_at_data_offset);
	tcase_add_test(tc, pwrite_rejects);
	tcase_add_test(tc, pwrite_partial_tail);
	tcase_add_test(tc, pwrite_uncovered_sector);
	tcase_add_test(tc, flush_and_close_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("locks");
	tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, locks_between_processes);
	tcase_add_test(tc, locks_foreign_holder);
	tcase_add_test(tc, locks_block_device_backing);
	suite_add_tcase(s, tc);
	return s;
}
