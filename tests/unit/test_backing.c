/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The COW's relation to its backing file: ubdk_backing_check,
 * ubdk_absolutize and ubdk_cow_rebase.  Paths are compared with realpath()
 * of the directory, mtimes are set with utimensat.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "suites.h"
#include "test_util.h"

#define T1 1400000000
#define T2 1700000000

static void hdr_for(struct ubdk_header *h, uint64_t size, uint32_t mtime)
{
	memset(h, 0, sizeof(*h));
	h->layout = UBDK_LAYOUT_V3;
	h->version = 3;
	h->size = size;
	h->mtime = mtime;
	h->sectorsize = 512;
	h->alignment = 4096;
	strcpy(h->backing, "/not/used/by/the/check");
}

static const char *file_of(const char *name, uint64_t size, int64_t mtime)
{
	const char *p = tu_path(name);

	tu_truncate(p, size);
	tu_set_mtime(p, mtime);
	return p;
}

/* --- ubdk_backing_check --------------------------------------------------------- */

START_TEST(check_match)
{
	const char *b = file_of("b", 10000, T1);
	struct ubdk_header h;
	struct ubdk_backing_check r;
	struct ubdk_err e = { 0 };

	hdr_for(&h, 10000, T1);
	memset(&r, 0x77, sizeof(r));
	ck_assert_int_eq(ubdk_backing_check(&h, b, &r, &e), 0);
	ck_assert(r.size_ok);
	ck_assert(r.mtime_ok);
	ck_assert_uint_eq(r.header_size, 10000);
	ck_assert_uint_eq(r.actual_size, 10000);
	ck_assert_uint_eq(r.header_mtime, T1);
	ck_assert_uint_eq(r.actual_mtime, T1);
	ck_assert_int_eq(r.size_delta, 0);
	ck_assert_int_eq(r.mtime_delta, 0);
	/* Without an error struct too. */
	ck_assert_int_eq(ubdk_backing_check(&h, b, &r, NULL), 0);
}
END_TEST

START_TEST(check_size_mismatch)
{
	const char *b = file_of("b", 11000, T1);
	struct ubdk_header h;
	struct ubdk_backing_check r;
	struct ubdk_err e = { 0 };
	int ret;

	hdr_for(&h, 10000, T1);
	ret = ubdk_backing_check(&h, b, &r, &e);
	ck_assert_int_eq(ret, -ESTALE);
	TU_EXPECT_ERR(ret, e, UBDK_E_SIZE_MISMATCH);
	TU_MSG_HAS(e, b);
	ck_assert(!r.size_ok);
	ck_assert(r.mtime_ok);
	ck_assert_uint_eq(r.header_size, 10000);
	ck_assert_uint_eq(r.actual_size, 11000);
	ck_assert_int_eq(r.size_delta, 1000);

	/* Smaller than the header: a negative delta. */
	hdr_for(&h, 20000, T1);
	TU_EXPECT_ERR(ubdk_backing_check(&h, b, &r, &e), e,
		      UBDK_E_SIZE_MISMATCH);
	ck_assert_int_eq(r.size_delta, -9000);
}
END_TEST

START_TEST(check_mtime_mismatch)
{
	const char *b = file_of("b", 4096, T1);
	struct ubdk_header h;
	struct ubdk_backing_check r;
	struct ubdk_err e = { 0 };
	int ret;

	/* Touched 100 s after the COW was made. */
	hdr_for(&h, 4096, T1 - 100);
	ret = ubdk_backing_check(&h, b, &r, &e);
	ck_assert_int_eq(ret, -ESTALE);
	TU_EXPECT_ERR(ret, e, UBDK_E_MTIME_MISMATCH);
	TU_MSG_HAS(e, b);
	ck_assert(r.size_ok);
	ck_assert(!r.mtime_ok);
	ck_assert_uint_eq(r.header_mtime, T1 - 100);
	ck_assert_uint_eq(r.actual_mtime, T1);
	ck_assert_int_eq(r.mtime_delta, 100);

	/* Copied with an older mtime. */
	hdr_for(&h, 4096, T1 + 7);
	TU_EXPECT_ERR(ubdk_backing_check(&h, b, &r, &e), e,
		      UBDK_E_MTIME_MISMATCH);
	ck_assert_int_eq(r.mtime_delta, -7);
}
END_TEST

/* 32-bit header mtimes compare modulo 2^32, across the wrap. */
START_TEST(check_mtime_wraps)
{
	const char *b = file_of("b", 4096, 10);
	struct ubdk_header h;
	struct ubdk_backing_check r;
	struct ubdk_err e = { 0 };

	hdr_for(&h, 4096, 0xfffffff6U);
	TU_EXPECT_ERR(ubdk_backing_check(&h, b, &r, &e), e,
		      UBDK_E_MTIME_MISMATCH);
	ck_assert_uint_eq(r.actual_mtime, 10);
	ck_assert_int_eq(r.mtime_delta, 20);

	/* A file dated after 2106 matches a header holding its low bits. */
	tu_set_mtime(b, (int64_t)(1ULL << 32) + 5);
	hdr_for(&h, 4096, 5);
	ck_assert_int_eq(ubdk_backing_check(&h, b, &r, &e), 0);
	ck_assert_uint_eq(r.actual_mtime, 5);
	ck_assert(r.mtime_ok);
}
END_TEST

/* Size is reported first, but both results are filled in. */
START_TEST(check_both_mismatch)
{
	const char *b = file_of("b", 5000, T1);
	struct ubdk_header h;
	struct ubdk_backing_check r;
	struct ubdk_err e = { 0 };

	hdr_for(&h, 4000, T1 + 30);
	TU_EXPECT_ERR(ubdk_backing_check(&h, b, &r, &e), e,
		      UBDK_E_SIZE_MISMATCH);
	ck_assert(!r.size_ok);
	ck_assert(!r.mtime_ok);
	ck_assert_int_eq(r.size_delta, 1000);
	ck_assert_int_eq(r.mtime_delta, -30);
}
END_TEST

START_TEST(check_bad_backing)
{
	struct ubdk_header h;
	struct ubdk_backing_check r;
	struct ubdk_err e = { 0 };

	hdr_for(&h, 4096, T1);
	TU_EXPECT_ERR(ubdk_backing_check(&h, tu_path("gone"), &r, &e), e,
		      UBDK_E_SYS);
	ck_assert_int_eq(e.errnum, ENOENT);
	TU_MSG_HAS(e, "gone");
	TU_EXPECT_ERR(ubdk_backing_check(&h, tu_dir, &r, &e), e,
		      UBDK_E_NOT_REGULAR);
	TU_MSG_HAS(e, tu_dir);
}
END_TEST

/* --- ubdk_absolutize ----------------------------------------------------------- */

static char real_dir[PATH_MAX];

/* cd into a test tree: tu_dir/{real/,link -> real, real/target, real/lnk} */
static void make_tree(void)
{
	char p[PATH_MAX];

	tu_fmt(p, sizeof(p), "%s/real", tu_dir);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	ck_assert_int_eq(symlink("real", tu_path("link")), 0);
	tu_write_file(tu_path("real/target"), "x", 1);
	ck_assert_int_eq(symlink("target", tu_path("real/lnk")), 0);
	ck_assert_int_eq(chdir(tu_dir), 0);
	tu_realpath(tu_dir, real_dir, sizeof(real_dir));
}

static void expect_abs(const char *in, const char *dir_rel, const char *last)
{
	char out[PATH_MAX], want[PATH_MAX * 2], dir[PATH_MAX];
	struct ubdk_err e = { 0 };

	if (dir_rel[0] == '/')
		tu_fmt(dir, sizeof(dir), "%s", dir_rel);
	else
		tu_fmt(dir, sizeof(dir), "%s%s%s", real_dir,
			 dir_rel[0] ? "/" : "", dir_rel);
	tu_fmt(want, sizeof(want), "%s/%s", strcmp(dir, "/") ? dir : "", last);
	memset(out, 0x6b, sizeof(out));
	TU_OK(ubdk_absolutize(in, out, sizeof(out), &e), e);
	ck_assert_str_eq(out, want);
}

START_TEST(absolutize_relative)
{
	make_tree();
	expect_abs("disk.img", "", "disk.img");
	expect_abs("./disk.img", "", "disk.img");
	expect_abs("real/disk.img", "real", "disk.img");
	expect_abs("real/../real/./disk.img", "real", "disk.img");
	expect_abs(".//real//disk.img", "real", "disk.img");
	/* The file itself need not exist: only its directory is resolved. */
	expect_abs("real/not-yet", "real", "not-yet");
}
END_TEST

/* The directory part is resolved physically, the last component is not. */
START_TEST(absolutize_symlinks)
{
	char in[PATH_MAX * 2];

	make_tree();
	expect_abs("link/target", "real", "target");
	expect_abs("real/lnk", "real", "lnk");
	expect_abs("link/lnk", "real", "lnk");
	tu_fmt(in, sizeof(in), "%s/link/lnk", tu_dir);
	expect_abs(in, "real", "lnk");
	/* A symlink to a directory as the last component stays a name. */
	expect_abs("link", "", "link");
}
END_TEST

START_TEST(absolutize_absolute)
{
	char in[PATH_MAX * 2], tmp[PATH_MAX];

	make_tree();
	expect_abs("/disk.img", "/", "disk.img");
	tu_realpath("/tmp", tmp, sizeof(tmp));
	expect_abs("/tmp/x", tmp, "x");
	tu_fmt(in, sizeof(in), "%s/real/../real/f", tu_dir);
	expect_abs(in, "real", "f");
	/* Running from / must not produce "//name". */
	ck_assert_int_eq(chdir("/"), 0);
	expect_abs("etc", "/", "etc");
}
END_TEST

START_TEST(absolutize_errors)
{
	char out[PATH_MAX], want[PATH_MAX];
	struct ubdk_err e = { 0 };
	size_t need;

	make_tree();
	TU_EXPECT_ERR(ubdk_absolutize("", out, sizeof(out), &e), e,
		      UBDK_E_BACKING_EMPTY);
	TU_EXPECT_ERR(ubdk_absolutize("nodir/f", out, sizeof(out), &e), e,
		      UBDK_E_SYS);
	ck_assert_int_eq(e.errnum, ENOENT);
	TU_MSG_HAS(e, "nodir/f");
	/* A regular file used as a directory. */
	TU_EXPECT_ERR(ubdk_absolutize("real/target/f", out, sizeof(out), &e), e,
		      UBDK_E_SYS);
	ck_assert_int_eq(e.errnum, ENOTDIR);

	/* The output buffer: exactly big enough works, one byte less not. */
	tu_fmt(want, sizeof(want), "%s/real/f", real_dir);
	need = strlen(want) + 1;
	TU_OK(ubdk_absolutize("real/f", out, need, &e), e);
	ck_assert_str_eq(out, want);
	TU_EXPECT_ERR(ubdk_absolutize("real/f", out, need - 1, &e), e,
		      UBDK_E_PATH_TOO_LONG);
	tu_fmt(want, sizeof(want), "%s/f", real_dir);
	need = strlen(want) + 1;
	TU_OK(ubdk_absolutize("f", out, need, &e), e);
	TU_EXPECT_ERR(ubdk_absolutize("f", out, need - 1, &e), e,
		      UBDK_E_PATH_TOO_LONG);
}
END_TEST

/* A directory part longer than any path: refused, not overflowed. */
START_TEST(absolutize_huge_input)
{
	size_t n = 3 * UBDK_PATH_MAX;
	char *in = malloc(n + 3), out[PATH_MAX];
	struct ubdk_err e = { 0 };

	memset(in, 'a', n);
	memcpy(in + n, "/f", 3);
	ck_assert_int_lt(ubdk_absolutize(in, out, sizeof(out), &e), 0);
	ck_assert(e.code == UBDK_E_PATH_TOO_LONG || e.code == UBDK_E_SYS);
	free(in);
}
END_TEST

/* --- ubdk_cow_rebase ------------------------------------------------------------ */

/* A COW on a (T1, random) backing "a.img" with some sectors written. */
static void make_cow(uint32_t version, uint64_t size, uint8_t **content)
{
	struct ubdk_create_opts o = { .version = version };
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	struct tu_rng rng;
	uint8_t *data = malloc(size), sec[512];

	tu_rng_seed(&rng, 77 + version);
	tu_fill(&rng, data, size);
	tu_write_file(tu_path("a.img"), data, size);
	tu_set_mtime(tu_path("a.img"), T1);
	TU_OK(ubdk_create(tu_path("c.cow"), tu_path("a.img"), &o, false, &e), e);
	TU_OK(ubdk_cow_open(tu_path("c.cow"), NULL, UBDK_OPEN_RDWR, &c, &e), e);
	memset(sec, 0xab, sizeof(sec));
	TU_OK(ubdk_cow_pwrite(c, sec, 512, 512, &e), e);
	TU_OK(ubdk_cow_pwrite(c, sec, 512, 7 * 512, &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	memcpy(data + 512, sec, 512);
	memcpy(data + 7 * 512, sec, 512);
	if (content)
		*content = data;
	else
		free(data);
}

/* A copy of a.img as name, same content, given mtime. */
static void copy_backing(const char *name, int64_t mtime)
{
	size_t len;
	uint8_t *a = tu_read_file(tu_path("a.img"), &len);

	tu_write_file(tu_path(name), a, len);
	tu_set_mtime(tu_path(name), mtime);
	free(a);
}

static void read_all(const char *cow, uint8_t *buf, uint64_t size)
{
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };

	TU_OK(ubdk_cow_open(cow, NULL, 0, &c, &e), e);
	TU_OK(ubdk_cow_pread(c, buf, size, 0, &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
}

/* _i: version 1, 2, 3. */
START_TEST(rebase_rewrites_header)
{
	uint32_t version = (uint32_t)_i + 1;
	uint64_t size = 64 * 512 + 100;
	const char *cow = tu_path("c.cow");
	static uint8_t want_hdr[UBDK_HDR_MAX_SIZE];
	char abs_b[PATH_MAX];
	uint8_t *content, *before, *after, *merged = malloc(size);
	size_t blen, alen, hlen = tu_header_len((int)version);
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	struct tu_spec s;

	make_cow(version, size, &content);
	copy_backing("b.img", T2);
	before = tu_read_file(cow, &blen);

	ck_assert_int_eq(chdir(tu_dir), 0);
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	/* A relative name: recorded absolute, as the kernel would. */
	TU_OK(ubdk_cow_rebase(c, "b.img", &e), e);
	tu_realpath("b.img", abs_b, sizeof(abs_b));
	ck_assert_str_eq(ubdk_cow_header(c)->backing, abs_b);
	ck_assert_uint_eq(ubdk_cow_header(c)->mtime, T2);
	ck_assert_uint_eq(ubdk_cow_header(c)->size, size);
	ck_assert_int_eq(ubdk_cow_header(c)->layout, (int)version);
	ck_assert_int_eq(ubdk_cow_close(c), 0);

	/* The header on disk names b.img with its mtime; nothing else moved. */
	s = (struct tu_spec){ .layout = (int)version, .big = !tu_host_le(),
			      .mtime = T2, .size = size, .ss = 512,
			      .align = version == 3 ? 4096 : 512, .backing = abs_b };
	ck_assert_uint_eq(tu_build_header(want_hdr, &s), hlen);
	after = tu_read_file(cow, &alen);
	ck_assert_uint_eq(alen, blen);
	TU_CHECK(memcmp(after, want_hdr, hlen) == 0, "header byte %zu",
		      tu_first_diff(after, want_hdr, hlen));
	ck_assert_int_eq(memcmp(after + hlen, before + hlen, blen - hlen), 0);

	/* It now opens, with checks, on b.img, and reads the same. */
	unlink(tu_path("a.img"));
	read_all(cow, merged, size);
	ck_assert_int_eq(memcmp(merged, content, size), 0);
	free(merged);
	free(content);
	free(before);
	free(after);
}
END_TEST

/* A v1 written by a host of the other byte order stays in that order. */
START_TEST(rebase_swapped_v1_keeps_byte_order)
{
	static uint8_t hdr[UBDK_HDR_MAX_SIZE], want[UBDK_HDR_MAX_SIZE];
	const char *cow = tu_path("c.cow"), *a = tu_path("a.img");
	struct tu_spec s = {
		.layout = UBDK_LAYOUT_V1, .big = tu_host_le(), .mtime = T1,
		.size = 8 * 512, .ss = 512, .backing = a,
	};
	char abs_b[PATH_MAX];
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	uint8_t *file;
	size_t len;

	tu_truncate(a, 8 * 512);
	tu_set_mtime(a, T1);
	copy_backing("b.img", T2);
	tu_realpath(tu_path("b.img"), abs_b, sizeof(abs_b));
	tu_write_file(cow, hdr, tu_build_header(hdr, &s));
	tu_truncate(cow, 512 + 8 * 512);
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	ck_assert(ubdk_cow_header(c)->v1_swapped);
	TU_OK(ubdk_cow_rebase(c, tu_path("b.img"), &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	s.mtime = T2;
	s.backing = abs_b;
	tu_build_header(want, &s);
	file = tu_read_file(cow, &len);
	ck_assert_uint_eq(len, 512 + 8 * 512);
	TU_CHECK(memcmp(file, want, UBDK_HDR_V1_SIZE) == 0, "byte %zu",
		 tu_first_diff(file, want, UBDK_HDR_V1_SIZE));
	free(file);
}
END_TEST

/* The usual case: the backing was touched; rebase onto itself. */
START_TEST(rebase_same_file_new_mtime)
{
	const char *cow = tu_path("c.cow");
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };

	make_cow(3, 8192, NULL);
	tu_set_mtime(tu_path("a.img"), T2);
	TU_EXPECT_ERR(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR, &c, &e), e,
		      UBDK_E_MTIME_MISMATCH);
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR | UBDK_OPEN_NO_CHECK, &c,
			    &e), e);
	TU_OK(ubdk_cow_rebase(c, tu_path("a.img"), &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	TU_OK(ubdk_cow_open(cow, NULL, 0, &c, &e), e);
	ck_assert_uint_eq(ubdk_cow_header(c)->mtime, T2);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
}
END_TEST

START_TEST(rebase_refusals)
{
	const char *cow = tu_path("c.cow");
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	uint8_t *before, *after;
	size_t blen, alen;

	make_cow(3, 8192, NULL);
	tu_truncate(tu_path("other.img"), 8192 + 512);
	copy_backing("b.img", T2);
	before = tu_read_file(cow, &blen);

	/* Read-only handle. */
	TU_OK(ubdk_cow_open(cow, NULL, 0, &c, &e), e);
	TU_EXPECT_ERR(ubdk_cow_rebase(c, tu_path("b.img"), &e), e,
		      UBDK_E_READ_ONLY);
	TU_MSG_HAS(e, cow);
	ck_assert_int_eq(ubdk_cow_close(c), 0);

	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	/* Different size: different content, not a move. */
	TU_EXPECT_ERR(ubdk_cow_rebase(c, tu_path("other.img"), &e), e,
		      UBDK_E_SIZE_MISMATCH);
	ck_assert_int_eq(e.errnum, ESTALE);
	TU_MSG_HAS(e, cow);
	TU_MSG_HAS(e, "other.img");
	TU_EXPECT_ERR(ubdk_cow_rebase(c, tu_path("missing.img"), &e), e,
		      UBDK_E_SYS);
	ck_assert_int_eq(e.errnum, ENOENT);
	TU_EXPECT_ERR(ubdk_cow_rebase(c, tu_dir, &e), e, UBDK_E_NOT_REGULAR);
	TU_EXPECT_ERR(ubdk_cow_rebase(c, "", &e), e, UBDK_E_BACKING_EMPTY);
	/* The handle still describes the old header. */
	ck_assert_uint_eq(ubdk_cow_header(c)->mtime, T1);
	ck_assert_ptr_nonnull(strstr(ubdk_cow_header(c)->backing, "/a.img"));
	ck_assert_int_eq(ubdk_cow_close(c), 0);

	after = tu_read_file(cow, &alen);
	ck_assert_uint_eq(alen, blen);
	ck_assert_int_eq(memcmp(before, after, blen), 0);
	free(before);
	free(after);
}
END_TEST

/* v1 has 256 bytes of path: a longer new path is refused. */
START_TEST(rebase_v1_path_too_long)
{
	char deep[PATH_MAX], seg[101];
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	size_t len;
	uint8_t *a;

	make_cow(1, 4096, NULL);
	memset(seg, 's', 100);
	seg[100] = '\0';
	tu_fmt(deep, sizeof(deep), "%s/%s", tu_dir, seg);
	ck_assert_int_eq(mkdir(deep, 0755), 0);
	tu_fmt(deep + strlen(deep), sizeof(deep) - strlen(deep), "/%s", seg);
	ck_assert_int_eq(mkdir(deep, 0755), 0);
	tu_fmt(deep + strlen(deep), sizeof(deep) - strlen(deep), "/%s", seg);
	a = tu_read_file(tu_path("a.img"), &len);
	tu_write_file(deep, a, len);
	free(a);
	TU_OK(ubdk_cow_open(tu_path("c.cow"), NULL, UBDK_OPEN_RDWR, &c, &e), e);
	TU_EXPECT_ERR(ubdk_cow_rebase(c, deep, &e), e, UBDK_E_PATH_TOO_LONG);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
}
END_TEST

/* A broken v3 is rewritten as the packed v3 it meant to be. */
START_TEST(rebase_broken_v3_becomes_v3)
{
	static uint8_t hdr[UBDK_HDR_MAX_SIZE], want[UBDK_HDR_MAX_SIZE];
	uint64_t size = 16 * 512;
	const char *cow = tu_path("c.cow"), *a = tu_path("a.img");
	struct tu_spec s = {
		.layout = UBDK_LAYOUT_V3_BROKEN, .mtime = T1, .size = size,
		.ss = 512, .align = 4096, .backing = a,
	};
	uint8_t bits[2] = { 0x05, 0x80 }, sec[512], *data, *got, *file;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	struct ubdk_header h;
	char abs_b[PATH_MAX];
	size_t len;

	data = calloc(1, size);
	memset(data, 0x11, size);
	tu_write_file(a, data, size);
	tu_set_mtime(a, T1);
	copy_backing("b.img", T2);
	tu_realpath(tu_path("b.img"), abs_b, sizeof(abs_b));
	/* Sectors 0, 2 and 15 in the COW. */
	tu_write_file(cow, hdr, tu_build_header(hdr, &s));
	tu_pwrite_file(cow, bits, 2, 8192);
	memset(sec, 0x99, sizeof(sec));
	tu_truncate(cow, 12288 + size);
	for (int n = 0; n < 16; n++) {
		if (n == 0 || n == 2 || n == 15) {
			tu_pwrite_file(cow, sec, 512, 12288 + (uint64_t)n * 512);
			memcpy(data + n * 512, sec, 512);
		}
	}

	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	ck_assert_int_eq(ubdk_cow_header(c)->layout, UBDK_LAYOUT_V3_BROKEN);
	TU_OK(ubdk_cow_rebase(c, tu_path("b.img"), &e), e);
	ck_assert_int_eq(ubdk_cow_header(c)->layout, UBDK_LAYOUT_V3);
	ck_assert_uint_eq(ubdk_cow_geometry(c)->header_len, UBDK_HDR_V3_SIZE);
	ck_assert_int_eq(ubdk_cow_close(c), 0);

	file = tu_read_file(cow, &len);
	s = (struct tu_spec){ .layout = UBDK_LAYOUT_V3, .mtime = T2, .size = size,
			      .ss = 512, .align = 4096, .backing = abs_b };
	tu_build_header(want, &s);
	TU_CHECK(memcmp(file, want, UBDK_HDR_V3_SIZE) == 0, "byte %zu",
		      tu_first_diff(file, want, UBDK_HDR_V3_SIZE));
	/* The old header's last 8 bytes are cleared too. */
	for (size_t i = UBDK_HDR_V3_SIZE; i < 8192; i++)
		TU_CHECK(file[i] == 0, "byte %zu", i);
	ck_assert_mem_eq(file + 8192, bits, 2);
	TU_OK(ubdk_header_decode(file, len, cow, &h, &e), e);
	ck_assert_int_eq(h.layout, UBDK_LAYOUT_V3);

	got = malloc(size);
	read_all(cow, got, size);
	ck_assert_int_eq(memcmp(got, data, size), 0);
	free(got);
	free(file);
	free(data);
}
END_TEST

/*
 * A broken v3 whose path runs past offset 4128: rewritten as a v3 with a
 * short path, the old header's tail bytes (4128..4135) must not survive.
 */
START_TEST(rebase_broken_v3_long_old_path)
{
	static uint8_t hdr[UBDK_HDR_MAX_SIZE];
	static char old[UBDK_PATH_MAX];
	const char *cow = tu_path("c.cow");
	struct tu_spec s = {
		.layout = UBDK_LAYOUT_V3_BROKEN, .mtime = T1, .size = 4096,
		.ss = 512, .align = 4096, .backing = old,
	};
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	uint8_t *file;
	size_t len;

	memset(old, 'o', UBDK_PATH_MAX - 1);
	old[0] = '/';
	old[UBDK_PATH_MAX - 1] = '\0';
	tu_write_file(cow, hdr, tu_build_header(hdr, &s));
	tu_truncate(cow, 12288 + 4096);
	ck_assert_uint_eq(hdr[4130], 'o');
	tu_truncate(tu_path("b.img"), 4096);
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR | UBDK_OPEN_NO_BACKING,
			    &c, &e), e);
	TU_OK(ubdk_cow_rebase(c, tu_path("b.img"), &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	file = tu_read_file(cow, &len);
	for (size_t i = 32 + strlen(tu_path("b.img")); i < 8192; i++)
		TU_CHECK(file[i] == 0, "byte %zu is 0x%02x", i, file[i]);
	free(file);
}
END_TEST

/*
 * A broken v3 with a small alignment has its bitmap right after its
 * 4136-byte header; as a 4128-byte v3 the bitmap would move, so the rebase
 * must refuse rather than corrupt the file.
 */
START_TEST(rebase_broken_v3_refuses_to_move_bitmap)
{
	static uint8_t hdr[UBDK_HDR_MAX_SIZE];
	const char *cow = tu_path("c.cow"), *a = tu_path("a.img");
	struct tu_spec s = {
		.layout = UBDK_LAYOUT_V3_BROKEN, .mtime = T1, .size = 4096,
		.ss = 512, .align = 8, .backing = a,
	};
	struct tu_geo g;
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };
	uint8_t *before, *after;
	size_t blen, alen;

	tu_geometry(UBDK_LAYOUT_V3_BROKEN, 4096, 512, 8, &g);
	ck_assert_uint_eq(g.bitmap_offset, 4136);
	tu_truncate(a, 4096);
	tu_set_mtime(a, T1);
	tu_write_file(cow, hdr, tu_build_header(hdr, &s));
	tu_truncate(cow, g.file_size);
	before = tu_read_file(cow, &blen);
	TU_OK(ubdk_cow_open(cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	TU_EXPECT_ERR(ubdk_cow_rebase(c, a, &e), e, UBDK_E_INVALID_ARG);
	TU_MSG_HAS(e, cow);
	ck_assert_int_eq(ubdk_cow_header(c)->layout, UBDK_LAYOUT_V3_BROKEN);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	after = tu_read_file(cow, &alen);
	ck_assert_uint_eq(alen, blen);
	ck_assert_int_eq(memcmp(before, after, blen), 0);
	free(before);
	free(after);
}
END_TEST

Suite *backing_suite(void)
{
	Suite *s = suite_create("backing");
	TCase *tc = tcase_create("check");

	tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
	tcase_add_test(tc, check_match);
	tcase_add_test(tc, check_size_mismatch);
	tcase_add_test(tc, check_mtime_mismatch);
	tcase_add_test(tc, check_mtime_wraps);
	tcase_add_test(tc, check_both_mismatch);
	tcase_add_test(tc, check_bad_backing);
	suite_add_tcase(s, tc);

	tc = tcase_create("absolutize");
	tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
	tcase_add_test(tc, absolutize_relative);
	tcase_add_test(tc, absolutize_symlinks);
	tcase_add_test(tc, absolutize_absolute);
	tcase_add_test(tc, absolutize_errors);
	tcase_add_test(tc, absolutize_huge_input);
	suite_add_tcase(s, tc);

	tc = tcase_create("rebase");
	tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, rebase_rewrites_header, 0, 3);
	tcase_add_test(tc, rebase_swapped_v1_keeps_byte_order);
	tcase_add_test(tc, rebase_same_file_new_mtime);
	tcase_add_test(tc, rebase_refusals);
	tcase_add_test(tc, rebase_v1_path_too_long);
	tcase_add_test(tc, rebase_broken_v3_becomes_v3);
	tcase_add_test(tc, rebase_broken_v3_long_old_path);
	tcase_add_test(tc, rebase_broken_v3_refuses_to_move_bitmap);
	suite_add_tcase(s, tc);
	return s;
}
