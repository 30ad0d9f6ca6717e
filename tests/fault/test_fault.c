/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Failures between a data write and the bitmap write that describes it:
 * the error reaches the caller, and the merged view never shows a sector
 * as written whose data did not land.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "fault.h"
#include "test_util.h"
#include "ubdk_cow.h"

#define SIZE (1U << 20)

struct fpair {
	char cow[4096], back[4096];
	uint8_t back_data[8192];
};

static void make_fpair(struct fpair *p)
{
	struct ubdk_err e = { 0 };

	snprintf(p->cow, sizeof(p->cow), "%s", tu_path("c.cow"));
	snprintf(p->back, sizeof(p->back), "%s", tu_path("b.img"));
	memset(p->back_data, 0xbb, sizeof(p->back_data));
	tu_write_file(p->back, p->back_data, sizeof(p->back_data));
	tu_truncate(p->back, SIZE);
	tu_set_mtime(p->back, 1000);
	TU_OK(ubdk_create(p->cow, p->back, NULL, false, &e), e);
}

static struct ubdk_cow *open_rw(const struct fpair *p)
{
	struct ubdk_err e = { 0 };
	struct ubdk_cow *c;

	fault_set(FAULT_NONE, 0, 0, false);
	TU_OK(ubdk_cow_open(p->cow, NULL, UBDK_OPEN_RDWR, &c, &e), e);
	return c;
}

/* Sector 3 reads as the backing's bytes, through a fresh open too. */
static void expect_backing_view(const struct fpair *p, struct ubdk_cow *c)
{
	struct ubdk_err e = { 0 };
	uint8_t buf[512];

	fault_set(FAULT_NONE, 0, 0, false);
	ck_assert(!tu_cow_test(c, 3));
	TU_OK(ubdk_cow_pread(c, buf, 512, 3 * 512, &e), e);
	ck_assert_int_eq(memcmp(buf, p->back_data, 512), 0);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	c = open_rw(p);
	ck_assert(!tu_cow_test(c, 3));
	TU_OK(ubdk_cow_pread(c, buf, 512, 3 * 512, &e), e);
	ck_assert_int_eq(memcmp(buf, p->back_data, 512), 0);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
}

/* The data write fails (full disk, I/O error, short write): no bit. */
START_TEST(data_write_fails)
{
	static const struct { int errnum; bool short_write; } cases[] = {
		{ ENOSPC, false }, { EIO, false }, { ENOSPC, true },
	};
	struct ubdk_err e = { 0 };
	struct fpair p;
	struct ubdk_cow *c;
	uint8_t buf[512];

	make_fpair(&p);
	c = open_rw(&p);
	memset(buf, 0x11, sizeof(buf));
	fault_set(FAULT_PWRITEV, 1, cases[_i].errnum, cases[_i].short_write);
	TU_EXPECT_ERR(ubdk_cow_pwrite(c, buf, 512, 3 * 512, &e), e, UBDK_E_SYS);
	ck_assert_int_eq(e.errnum, cases[_i].errnum);
	ck_assert_int_eq(e.file, UBDK_FILE_COW);
	TU_MSG_HAS(e, p.cow);
	ck_assert_int_eq(fault_plan.fired, 1);
	ck_assert(!ubdk_cow_dirty(c));
	expect_backing_view(&p, c);
}
END_TEST

/* The bitmap write-back fails: flush says so, the bits stay dirty and a
 * later flush puts them on disk. */
START_TEST(bitmap_writeback_fails)
{
	struct ubdk_err e = { 0 };
	struct fpair p;
	struct ubdk_cow *c;
	uint8_t buf[512], got[512];

	make_fpair(&p);
	c = open_rw(&p);
	memset(buf, 0x22, sizeof(buf));
	TU_OK(ubdk_cow_pwrite(c, buf, 512, 3 * 512, &e), e);
	fault_set(FAULT_PWRITE, 1, EIO, false);
	TU_EXPECT_ERR(ubdk_cow_flush(c, &e), e, UBDK_E_SYS);
	ck_assert_int_eq(e.errnum, EIO);
	TU_MSG_HAS(e, "bitmap");
	ck_assert(ubdk_cow_dirty(c));
	/* The data landed: the handle's view shows it. */
	fault_set(FAULT_NONE, 0, 0, false);
	TU_OK(ubdk_cow_pread(c, got, 512, 3 * 512, &e), e);
	ck_assert_int_eq(memcmp(got, buf, 512), 0);
	/* The fsync after a good write-back fails too: reported. */
	fault_set(FAULT_FSYNC, 1, EIO, false);
	TU_EXPECT_ERR(ubdk_cow_flush(c, &e), e, UBDK_E_SYS);
	TU_MSG_HAS(e, "fsync");
	fault_set(FAULT_NONE, 0, 0, false);
	TU_OK(ubdk_cow_flush(c, &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	c = open_rw(&p);
	ck_assert(tu_cow_test(c, 3));
	TU_OK(ubdk_cow_pread(c, got, 512, 3 * 512, &e), e);
	ck_assert_int_eq(memcmp(got, buf, 512), 0);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
}
END_TEST

/* A write-back that fails at close: close reports it. */
START_TEST(close_reports_writeback)
{
	struct ubdk_err e = { 0 };
	struct fpair p;
	struct ubdk_cow *c;
	uint8_t buf[512];

	make_fpair(&p);
	c = open_rw(&p);
	memset(buf, 0x44, sizeof(buf));
	TU_OK(ubdk_cow_pwrite(c, buf, 512, 3 * 512, &e), e);
	fault_set(FAULT_PWRITE, 1, ENOSPC, false);
	ck_assert_int_eq(ubdk_cow_close(c), -ENOSPC);
	/* Data without its bit: the old contents, never garbage. */
	c = open_rw(&p);
	expect_backing_view(&p, c);
}
END_TEST

/* A bitmap chunk that cannot be read: that request fails, the next one
 * (the disk recovered) works. */
START_TEST(bitmap_read_fails)
{
	struct ubdk_err e = { 0 };
	struct fpair p;
	struct ubdk_cow *c;
	uint8_t buf[512];

	make_fpair(&p);
	c = open_rw(&p);
	memset(buf, 0x55, sizeof(buf));
	TU_OK(ubdk_cow_pwrite(c, buf, 512, 3 * 512, &e), e);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	c = open_rw(&p);
	fault_set(FAULT_PREAD, 1, EIO, false);
	TU_EXPECT_ERR(ubdk_cow_pread(c, buf, 512, 3 * 512, &e), e, UBDK_E_SYS);
	TU_MSG_HAS(e, "reading bitmap");
	ck_assert_int_eq(e.file, UBDK_FILE_COW);
	fault_set(FAULT_PREAD, 1, EIO, false);
	TU_EXPECT_ERR(ubdk_cow_pwrite(c, buf, 512, 4 * 512, &e), e, UBDK_E_SYS);
	fault_set(FAULT_NONE, 0, 0, false);
	memset(buf, 0, sizeof(buf));
	TU_OK(ubdk_cow_pread(c, buf, 512, 3 * 512, &e), e);
	ck_assert_int_eq(buf[0], 0x55);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
}
END_TEST

/* A merged-view read that fails names the file it came from. */
START_TEST(data_read_fails)
{
	struct ubdk_err e = { 0 };
	struct fpair p;
	struct ubdk_cow *c;
	uint8_t buf[512];

	make_fpair(&p);
	c = open_rw(&p);
	fault_set(FAULT_PREADV, 1, EIO, false);
	TU_EXPECT_ERR(ubdk_cow_pread(c, buf, 512, 0, &e), e, UBDK_E_SYS);
	ck_assert_int_eq(e.file, UBDK_FILE_BACKING);
	TU_MSG_HAS(e, p.back);
	fault_set(FAULT_NONE, 0, 0, false);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
}
END_TEST

static Suite *fault_suite(void)
{
	Suite *s = suite_create("fault");
	TCase *tc = tcase_create("inject");

	tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
	tcase_add_loop_test(tc, data_write_fails, 0, 3);
	tcase_add_test(tc, bitmap_writeback_fails);
	tcase_add_test(tc, close_reports_writeback);
	tcase_add_test(tc, bitmap_read_fails);
	tcase_add_test(tc, data_read_fails);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (tu_make_root() < 0) {
		perror("mkdtemp");
		return 2;
	}
	sr = srunner_create(fault_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	tu_remove_root();
	return failed ? 1 : 0;
}
