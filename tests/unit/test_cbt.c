/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Changed-block tracking (ubdk_cbt.h): marking, memory that follows the
 * marks on an 8 TiB device, checkpoints, the record and map files, and
 * every way a record can fail to describe its COW: each one must give an
 * empty, inconsistent tracker, never a trusted one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"
#include "test_util.h"
#include "ubdk_cbt.h"

#define TIB (1ULL << 40)
#define G UBDK_CBT_GRANULARITY

static struct ubdk_cbt *new_cbt(uint64_t size, uint32_t gran, const char *name)
{
	struct ubdk_err e = { 0 };
	struct ubdk_cbt *c;

	TU_OK(ubdk_cbt_new(size, gran, name, 0, &c, &e), e);
	return c;
}

/* The tracker's runs as "s+n " text. */
static void runs_text(const struct ubdk_cbt *c, char *out, size_t len)
{
	uint64_t pos = 0, s, n;
	size_t at = 0;

	out[0] = '\0';
	while (ubdk_cbt_next(c, &pos, &s, &n)) {
		int k = snprintf(out + at, len - at, "%llu+%llu ",
				 (unsigned long long)s, (unsigned long long)n);

		ck_assert(k > 0 && (size_t)k < len - at);
		at += (size_t)k;
	}
}

static const struct ubdk_cbt_identity ID = {
	.cow_size = 12345678, .cow_mtime_ns = 1700000000123456789LL,
	.backing_size = 64ULL << 20, .backing_mtime = 1700000000,
};

START_TEST(crc32_and_names)
{
	ck_assert_uint_eq(ubdk_crc32(0, "123456789", 9), 0xcbf43926U);
	ck_assert_uint_eq(ubdk_crc32(ubdk_crc32(0, "1234", 4), "56789", 5),
			  0xcbf43926U);
	ck_assert(ubdk_cbt_name_ok(""));
	ck_assert(ubdk_cbt_name_ok("backup-2024.01.02T03:04@host+1_x"));
	ck_assert(!ubdk_cbt_name_ok("a b"));
	ck_assert(!ubdk_cbt_name_ok("a/b"));
	ck_assert(!ubdk_cbt_name_ok("a\nb"));
	ck_assert(ubdk_cbt_name_ok("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));   /* 63 */
	ck_assert(!ubdk_cbt_name_ok("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")); /* 64 */
	ck_assert_str_eq(ubdk_cbt_reason_name(UBDK_CBT_UNCLEAN), "unclean");
	ck_assert_str_eq(ubdk_cbt_reason_name(99), "unknown");
}
END_TEST

START_TEST(bad_arguments)
{
	struct ubdk_err e = { 0 };
	struct ubdk_cbt *c;

	ck_assert_int_eq(ubdk_cbt_new(1 << 20, 2048, NULL, 0, &c, &e), -EINVAL);
	ck_assert_int_eq(ubdk_cbt_new(1 << 20, 65536 + 4096, NULL, 0, &c, &e),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "granularity"));
	ck_assert_int_eq(ubdk_cbt_new(0, 0, NULL, 0, &c, &e), -EINVAL);
	ck_assert_int_eq(ubdk_cbt_new(1 << 20, 0, "a b", 0, &c, &e), -EINVAL);
	ck_assert_int_eq(ubdk_cbt_new(1 << 20, 0, NULL, 42, &c, &e), -EINVAL);
}
END_TEST

START_TEST(marking_rounds_to_blocks)
{
	/* 10 blocks of 64 KiB and a short 11th. */
	struct ubdk_cbt *c = new_cbt(10 * G + 512, 0, "x");
	char txt[256];

	ck_assert_int_eq(ubdk_cbt_mark(c, 0, 0), 0);
	ck_assert_uint_eq(ubdk_cbt_count(c), 0);
	ck_assert_int_eq(ubdk_cbt_mark(c, 512, 512), 0);         /* block 0 */
	ck_assert_int_eq(ubdk_cbt_mark(c, 2 * G - 512, 1024), 0); /* 1 and 2 */
	ck_assert_int_eq(ubdk_cbt_mark(c, 5 * G, G), 0);          /* 5 only */
	ck_assert_int_eq(ubdk_cbt_mark(c, 10 * G, 1ULL << 40), 0); /* 10, clipped */
	ck_assert_int_eq(ubdk_cbt_mark(c, 11 * G, 4096), 0);      /* past the end */
	ck_assert_int_eq(ubdk_cbt_mark(c, 512, 4096), 0);         /* again */
	ck_assert_uint_eq(ubdk_cbt_count(c), 5);
	ck_assert(ubdk_cbt_test(c, 2));
	ck_assert(!ubdk_cbt_test(c, 3));
	ck_assert(!ubdk_cbt_test(c, 11));
	runs_text(c, txt, sizeof(txt));
	ck_assert_str_eq(txt, "0+3 5+1 10+1 ");
	ubdk_cbt_free(c);
}
END_TEST

/* Runs across leaves (2^15 blocks each) and a whole-device mark. */
START_TEST(marks_across_leaves)
{
	struct ubdk_cbt *c = new_cbt(100000ULL * 4096, 4096, NULL);
	char txt[256];

	ck_assert_int_eq(ubdk_cbt_mark(c, 32760ULL * 4096, 20 * 4096), 0);
	ck_assert_int_eq(ubdk_cbt_mark(c, 65535ULL * 4096, 4096), 0);
	ck_assert_int_eq(ubdk_cbt_mark(c, 65536ULL * 4096, 4096), 0);
	runs_text(c, txt, sizeof(txt));
	ck_assert_str_eq(txt, "32760+20 65535+2 ");
	ck_assert_uint_eq(ubdk_cbt_count(c), 22);
	ck_assert_int_eq(ubdk_cbt_mark(c, 0, 100000ULL * 4096), 0);
	ck_assert_uint_eq(ubdk_cbt_count(c), 100000);
	runs_text(c, txt, sizeof(txt));
	ck_assert_str_eq(txt, "0+100000 ");
	ubdk_cbt_free(c);
}
END_TEST

/* An 8 TiB device: a flat bitmap at 64 KiB would be 16 MiB; ours starts
 * at the 32 KiB index and grows by a 4 KiB leaf per 2 GiB region marked. */
START_TEST(sparse_memory_8t)
{
	struct ubdk_cbt *c = new_cbt(8 * TIB, 0, NULL);
	struct tu_rng rng;
	uint64_t i, empty = ubdk_cbt_mem(c);

	ck_assert_uint_le(empty, 64 * 1024);
	tu_rng_seed(&rng, 8);
	for (i = 0; i < 500; i++)
		ck_assert_int_eq(ubdk_cbt_mark(c, tu_below(&rng, 8 * TIB - 4096)
					       & ~4095ULL, 4096), 0);
	/* The last byte of the device too. */
	ck_assert_int_eq(ubdk_cbt_mark(c, 8 * TIB - 1, 1), 0);
	ck_assert(ubdk_cbt_test(c, 8 * TIB / G - 1));
	ck_assert_uint_le(ubdk_cbt_count(c), 501);
	ck_assert_uint_ge(ubdk_cbt_count(c), 490);
	ck_assert_uint_le(ubdk_cbt_mem(c), empty + 501 * 4096);
	ck_assert_uint_lt(ubdk_cbt_mem(c), 16ULL << 20 >> 3);
	ubdk_cbt_free(c);
}
END_TEST

/* Random marks against a flat reference. */
START_TEST(random_against_flat)
{
	const uint64_t nb = 300000;
	struct ubdk_cbt *c = new_cbt(nb * 4096 - 100, 4096, NULL);
	uint8_t *ref = calloc(nb, 1);
	struct tu_rng rng;
	uint64_t i, b, pos = 0, s, n, want = 0, seen = 0;

	ck_assert_ptr_nonnull(ref);
	tu_rng_seed(&rng, 1234 + (uint64_t)_i);
	for (i = 0; i < 2000; i++) {
		uint64_t off = tu_below(&rng, nb * 4096);
		uint64_t len = tu_below(&rng, i % 10 ? 20000 : 400000) + 1;

		ubdk_cbt_mark(c, off, len);
		if (off >= nb * 4096 - 100)
			continue;
		if (len > nb * 4096 - 100 - off)
			len = nb * 4096 - 100 - off;
		for (b = off / 4096; b <= (off + len - 1) / 4096; b++)
			ref[b] = 1;
	}
	for (b = 0; b < nb; b++) {
		want += ref[b];
		ck_assert_int_eq(ubdk_cbt_test(c, b), ref[b]);
	}
	ck_assert_uint_eq(ubdk_cbt_count(c), want);
	while (ubdk_cbt_next(c, &pos, &s, &n)) {
		ck_assert(s == 0 || !ref[s - 1]);
		for (b = s; b < s + n; b++)
			ck_assert(ref[b]);
		ck_assert(s + n == nb || !ref[s + n]);
		seen += n;
	}
	ck_assert_uint_eq(seen, want);
	free(ref);
	ubdk_cbt_free(c);
}
END_TEST

START_TEST(checkpoint_seals)
{
	struct ubdk_err e = { 0 };
	struct ubdk_cbt *c = new_cbt(1 << 30, 0, "A"), *s;
	struct ubdk_cbt_info in;
	char txt[128];

	ubdk_cbt_set_reason(c, UBDK_CBT_UNCLEAN);
	ubdk_cbt_mark(c, 0, 1);
	ubdk_cbt_mark(c, 3 * G, 1);
	/* A bad name changes nothing. */
	ck_assert_int_eq(ubdk_cbt_checkpoint(c, "no good", &s, &e), -EINVAL);
	ck_assert_ptr_null(s);
	ck_assert_uint_eq(ubdk_cbt_count(c), 2);
	TU_OK(ubdk_cbt_checkpoint(c, "B", &s, &e), e);
	ubdk_cbt_get_info(s, &in);
	ck_assert_str_eq(in.name, "A");
	ck_assert_uint_eq(in.reason, UBDK_CBT_UNCLEAN);
	ck_assert_uint_eq(in.generation, 0);
	ck_assert_uint_eq(in.blocks, 2);
	runs_text(s, txt, sizeof(txt));
	ck_assert_str_eq(txt, "0+1 3+1 ");
	ubdk_cbt_get_info(c, &in);
	ck_assert_str_eq(in.name, "B");
	ck_assert_uint_eq(in.reason, UBDK_CBT_CONSISTENT);
	ck_assert_uint_eq(in.generation, 1);
	ck_assert_uint_eq(in.blocks, 0);
	ck_assert(!ubdk_cbt_test(c, 0));
	/* Marks after the checkpoint go to the new map only. */
	ubdk_cbt_mark(c, 5 * G, 1);
	ck_assert(!ubdk_cbt_test(s, 5));
	ck_assert(ubdk_cbt_test(c, 5));
	ubdk_cbt_free(s);
	ubdk_cbt_free(c);
}
END_TEST

START_TEST(map_round_trip)
{
	const char *path = tu_path("c.cow.cbt-map");
	struct ubdk_err e = { 0 };
	struct ubdk_cbt *c = new_cbt(8 * TIB, 0, "A");
	struct ubdk_cbt_file *f;
	struct ubdk_cbt_info in;
	uint64_t s, n, i;

	for (i = 0; i < 5000; i++)    /* more runs than one 64 KiB buffer */
		ubdk_cbt_mark(c, i * 7 * G * 1000, 2 * G);
	TU_OK(ubdk_cbt_write_map(c, "B", path, &ID, &e), e);
	TU_OK(ubdk_cbt_file_open(path, UBDK_CBT_KIND_MAP, 8 * TIB, &f, &in, &e), e);
	ck_assert_int_eq(in.kind, UBDK_CBT_KIND_MAP);
	ck_assert_str_eq(in.from, "A");
	ck_assert_str_eq(in.name, "B");
	ck_assert_uint_eq(in.generation, 1);
	ck_assert_uint_eq(in.granularity, G);
	ck_assert_uint_eq(in.device_size, 8 * TIB);
	ck_assert_uint_eq(in.blocks, 10000);
	ck_assert_uint_eq(in.runs, 5000);
	ck_assert_uint_eq(in.id.cow_mtime_ns, ID.cow_mtime_ns);
	for (i = 0; i < 5000; i++) {
		ck_assert_int_eq(ubdk_cbt_file_next(f, &s, &n, &e), 1);
		ck_assert_uint_eq(s, i * 7000);
		ck_assert_uint_eq(n, 2);
	}
	ck_assert_int_eq(ubdk_cbt_file_next(f, &s, &n, &e), 0);
	ubdk_cbt_file_close(f);
	ck_assert_uint_eq(tu_file_size(path), 256 + 5000 * 16 + 4);
	/* A record is not a map and the other way round. */
	ck_assert_int_lt(ubdk_cbt_file_open(path, UBDK_CBT_KIND_RECORD, 0, &f,
					    &in, &e), 0);
	ck_assert_int_eq(e.code, UBDK_E_BAD_MAGIC);
	ubdk_cbt_free(c);
}
END_TEST

/* Saved CLEAN and loaded with the same identity: the same tracker. */
START_TEST(record_round_trip)
{
	const char *path = tu_path("c.cow.cbt");
	struct ubdk_err e = { 0 };
	struct ubdk_cbt *c = new_cbt(ID.backing_size, 8192, "A"), *s, *l;
	struct ubdk_cbt_info in;
	char a[256], b[256], why[UBDK_ERR_MSG_MAX];

	ubdk_cbt_mark(c, 0, 100000);
	TU_OK(ubdk_cbt_checkpoint(c, "B", &s, &e), e);
	ubdk_cbt_free(s);
	ubdk_cbt_mark(c, 8192 * 7, 1);
	ubdk_cbt_mark(c, ID.backing_size - 1, 1);
	TU_OK(ubdk_cbt_save(c, path, UBDK_CBT_STATE_CLEAN, &ID, &e), e);
	strcpy(why, "stale");
	TU_OK(ubdk_cbt_load(path, &ID, 0, &l, why, sizeof(why), &e), e);
	/* Trusted: no reason given, and no error either. */
	ck_assert_str_eq(why, "");
	ck_assert_int_eq(e.code, 0);
	ubdk_cbt_get_info(l, &in);
	ck_assert_str_eq(in.name, "B");
	ck_assert_uint_eq(in.reason, 0);
	ck_assert_uint_eq(in.generation, 1);
	ck_assert_uint_eq(in.granularity, 8192);
	runs_text(c, a, sizeof(a));
	runs_text(l, b, sizeof(b));
	ck_assert_str_eq(a, b);
	ubdk_cbt_free(l);
	/* An inconsistent tracker stays so across a clean close. */
	ubdk_cbt_set_reason(c, UBDK_CBT_UNCLEAN);
	TU_OK(ubdk_cbt_save(c, path, UBDK_CBT_STATE_CLEAN, &ID, &e), e);
	TU_OK(ubdk_cbt_load(path, &ID, 0, &l, NULL, 0, &e), e);
	ubdk_cbt_get_info(l, &in);
	ck_assert_uint_eq(in.reason, UBDK_CBT_UNCLEAN);
	ubdk_cbt_free(l);
	ubdk_cbt_free(c);
}
END_TEST

/* Load must give an empty tracker with this reason, keeping the name. */
static void expect_untrusted(const char *path,
			     const struct ubdk_cbt_identity *now, int reason,
			     const char *name, const char *msg_part)
{
	struct ubdk_err e = { 0 };
	struct ubdk_cbt_info in;
	struct ubdk_cbt *l;
	char why[UBDK_ERR_MSG_MAX] = "";

	TU_OK(ubdk_cbt_load(path, now, 0, &l, why, sizeof(why), &e), e);
	ubdk_cbt_get_info(l, &in);
	ck_assert_msg(in.reason == (uint32_t)reason, "reason %s, want %s (%s)",
		      ubdk_cbt_reason_name((int)in.reason),
		      ubdk_cbt_reason_name(reason), why);
	ck_assert_uint_eq(in.blocks, 0);
	ck_assert_str_eq(in.name, name);
	/* A record not trusted is no error: the reason comes in why alone. */
	ck_assert_int_eq(e.code, 0);
	ck_assert_msg(strstr(why, path) && strstr(why, msg_part),
		      "reason '%s'", why);
	ubdk_cbt_free(l);
}

/* A valid CLEAN record with blocks 1 and 5 set, named "A". */
static void good_record(const char *path)
{
	struct ubdk_err e = { 0 };
	struct ubdk_cbt *c = new_cbt(ID.backing_size, 0, "A");

	ubdk_cbt_mark(c, G, 1);
	ubdk_cbt_mark(c, 5 * G, 1);
	TU_OK(ubdk_cbt_save(c, path, UBDK_CBT_STATE_CLEAN, &ID, &e), e);
	ubdk_cbt_free(c);
}

/* Change bytes of a file, then make its checksum right again, so that
 * the field check is reached. */
static void patch(const char *path, size_t off, const void *bytes,
		  size_t len, bool fix_crc)
{
	size_t flen;
	uint8_t *buf = tu_read_file(path, &flen);
	uint32_t crc;

	ck_assert_uint_le(off + len, flen);
	memcpy(buf + off, bytes, len);
	if (fix_crc) {
		crc = ubdk_crc32(0, buf, flen - 4);
		tu_put32(buf + flen - 4, crc, false);
	}
	tu_write_file(path, buf, flen);
	free(buf);
}

START_TEST(identity_mismatches_are_inconsistent)
{
	const char *path = tu_path("c.cow.cbt");
	struct ubdk_cbt_identity now;
	struct ubdk_cbt *c;

	expect_untrusted(path, &ID, UBDK_CBT_MISSING, "", "No such file");
	good_record(path);
	now = ID;
	now.cow_size++;
	expect_untrusted(path, &now, UBDK_CBT_COW_CHANGED, "A", "COW file changed");
	now = ID;
	now.cow_mtime_ns++;   /* one nanosecond is a change */
	expect_untrusted(path, &now, UBDK_CBT_COW_CHANGED, "A", "COW file changed");
	now = ID;
	now.backing_mtime++;
	expect_untrusted(path, &now, UBDK_CBT_HEADER_CHANGED, "A", "backing");
	now = ID;
	now.backing_size += 512;
	expect_untrusted(path, &now, UBDK_CBT_HEADER_CHANGED, "A", "backing");
	/* A session that did not end: OPEN. */
	c = new_cbt(ID.backing_size, 0, "A");
	ck_assert_int_eq(ubdk_cbt_mark_open(c, path, true), 0);
	ubdk_cbt_free(c);
	expect_untrusted(path, &ID, UBDK_CBT_UNCLEAN, "A", "did not end cleanly");
}
END_TEST

START_TEST(corruption_is_inconsistent)
{
	const char *path = tu_path("c.cow.cbt");
	uint8_t x = 0xff, four[4];

	good_record(path);
	patch(path, 256 + 3, &x, 1, false);          /* a run's byte */
	expect_untrusted(path, &ID, UBDK_CBT_CORRUPT, "", "checksum mismatch");
	good_record(path);
	patch(path, 100, &x, 1, false);              /* the name */
	expect_untrusted(path, &ID, UBDK_CBT_CORRUPT, "", "checksum mismatch");
	good_record(path);
	patch(path, 0, "XBDKCBTR", 8, false);
	expect_untrusted(path, &ID, UBDK_CBT_CORRUPT, "", "bad magic");
	good_record(path);
	tu_truncate(path, tu_file_size(path) - 1);
	expect_untrusted(path, &ID, UBDK_CBT_CORRUPT, "", "runs");
	tu_truncate(path, 100);
	expect_untrusted(path, &ID, UBDK_CBT_CORRUPT, "", "too short");
	tu_write_file(path, "", 0);
	expect_untrusted(path, &ID, UBDK_CBT_CORRUPT, "", "too short");
	good_record(path);
	tu_put32(four, 2, false);
	patch(path, 8, four, 4, true);
	expect_untrusted(path, &ID, UBDK_CBT_CORRUPT, "", "version 2");
}
END_TEST

/* Header fields and runs, each wrong with a right checksum. */
START_TEST(bad_fields_named)
{
	const char *path = tu_path("c.cow.cbt");
	static const struct {
		size_t off;
		uint32_t v;
		const char *msg;
	} cases[] = {
		{ 24, 65536 + 1, "granularity 65537" },
		{ 24, 2048, "granularity 2048" },
		{ 12, 255, "header length" },
		{ 16, 7, "bad state 7" },
		{ 20, 99, "bad reason 99" },
		{ 28, 1, "reserved" },
		{ 240, 1, "reserved" },
		{ 80, 3, "runs hold 2 blocks" },
		{ 256, 9, "not sorted" },            /* first run starts at 9 */
		{ 256 + 8, 0, "0 blocks" },
		{ 256 + 16, 1023, "past the device" }, /* 1024 blocks */
		{ 32, 0, "device size 0" },
	};
	struct ubdk_err e = { 0 };
	struct ubdk_cbt_file *f;
	struct ubdk_cbt_info in;
	uint8_t four[4];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		good_record(path);
		tu_put32(four, cases[i].v, false);
		patch(path, cases[i].off, four, 4, true);
		if (cases[i].off == 256 + 16) {
			tu_put32(four, 5, false);  /* second run: 1023+5 */
			patch(path, 256 + 24, four, 4, true);
		}
		ck_assert_int_lt(ubdk_cbt_file_open(path, 0, ID.backing_size, &f,
						    &in, &e), 0);
		ck_assert_msg(strstr(e.msg, cases[i].msg) && strstr(e.msg, path),
			      "case %zu: '%s'", i, e.msg);
		expect_untrusted(path, &ID, UBDK_CBT_CORRUPT, "", cases[i].msg);
	}
}
END_TEST

/*
 * A header counting more runs than the device has blocks is refused
 * before its body is read or summed: a file made sparse to match would
 * otherwise be read whole first (minutes for a few GiB).  The message
 * names the bound, where reading the body would have found a checksum
 * mismatch.  The header claims an 8 GiB device; the COW's is 64 MiB.
 */
START_TEST(runs_bounded_by_device)
{
	const char *path = tu_path("c.cow.cbt");
	const uint64_t runs = 1025;        /* 64 MiB: 1024 blocks of 64 KiB */
	struct ubdk_err e = { 0 };
	struct ubdk_cbt_file *f;
	struct ubdk_cbt_info in;
	uint8_t eight[8];

	good_record(path);
	tu_put64(eight, runs, false);
	patch(path, 88, eight, 8, false);
	tu_put64(eight, 8ULL << 30, false);
	patch(path, 32, eight, 8, false);
	tu_truncate(path, UBDK_CBT_HEADER_LEN + runs * UBDK_CBT_RUN_LEN + 4);
	ck_assert_int_lt(ubdk_cbt_file_open(path, UBDK_CBT_KIND_RECORD,
					    ID.backing_size, &f, &in, &e), 0);
	ck_assert_int_eq(e.code, UBDK_E_CBT_FIELD);
	ck_assert_msg(strstr(e.msg, "header says 1025 runs, more than the "
			     "1024 blocks of the device (67108864 bytes)") &&
		      strstr(e.msg, path), "message '%s'", e.msg);
	/* The driver loads the record through the same check. */
	expect_untrusted(path, &ID, UBDK_CBT_CORRUPT, "", "1024 blocks");
	/* As many runs as blocks passes the bound, and a sparse body is
	 * refused from its extents, unread.  (patch() rewrites the whole
	 * file: the header alone is kept, then the file is extended.) */
	tu_truncate(path, UBDK_CBT_HEADER_LEN);
	tu_put64(eight, 1024, false);
	patch(path, 88, eight, 8, false);
	tu_truncate(path, UBDK_CBT_HEADER_LEN + 1024 * UBDK_CBT_RUN_LEN + 4);
	ck_assert_int_lt(ubdk_cbt_file_open(path, UBDK_CBT_KIND_RECORD,
					    ID.backing_size, &f, &in, &e), 0);
	ck_assert_int_eq(e.code, UBDK_E_CBT_FIELD);
	ck_assert_msg(strstr(e.msg, "its body has holes (1024 runs in a sparse "
			     "file)"), "message '%s'", e.msg);
	/* Written out, the same body is read and summed: this one is damaged. */
	{
		static uint8_t zeros[1024 * UBDK_CBT_RUN_LEN + 4];
		int fd = open(path, O_WRONLY);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(pwrite(fd, zeros, sizeof(zeros), UBDK_CBT_HEADER_LEN),
				 (ssize_t)sizeof(zeros));
		close(fd);
	}
	ck_assert_int_lt(ubdk_cbt_file_open(path, UBDK_CBT_KIND_RECORD,
					    ID.backing_size, &f, &in, &e), 0);
	ck_assert_msg(strstr(e.msg, "checksum mismatch"), "message '%s'", e.msg);
	/* Sparse again: the driver's load refuses it through the same check. */
	tu_truncate(path, UBDK_CBT_HEADER_LEN);
	tu_truncate(path, UBDK_CBT_HEADER_LEN + 1024 * UBDK_CBT_RUN_LEN + 4);
	expect_untrusted(path, &ID, UBDK_CBT_CORRUPT, "", "body has holes");
}
END_TEST

Suite *cbt_suite(void)
{
	Suite *s = suite_create("cbt");
	TCase *tc = tcase_create("cbt");

	tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, crc32_and_names);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, marking_rounds_to_blocks);
	tcase_add_test(tc, marks_across_leaves);
	tcase_add_test(tc, sparse_memory_8t);
	tcase_add_loop_test(tc, random_against_flat, 0, 3);
	tcase_add_test(tc, checkpoint_seals);
	tcase_add_test(tc, map_round_trip);
	tcase_add_test(tc, record_round_trip);
	tcase_add_test(tc, identity_mismatches_are_inconsistent);
	tcase_add_test(tc, corruption_is_inconsistent);
	tcase_add_test(tc, bad_fields_named);
	tcase_add_test(tc, runs_bounded_by_device);
	suite_add_tcase(s, tc);
	return s;
}
