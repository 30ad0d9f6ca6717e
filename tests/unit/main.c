/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the format library.  Every test runs in its own scratch
 * directory under one root made here, so that a failing test (which in fork
 * mode exits without its teardown) still leaves nothing behind.
 */
#include <stdio.h>
#include <stdlib.h>

#include "suites.h"
#include "test_util.h"

int main(void)
{
	SRunner *sr;
	int failed;

	if (tu_make_root() < 0) {
		perror("mkdtemp");
		return 2;
	}
	sr = srunner_create(header_suite());
	srunner_add_suite(sr, bitmap_suite());
	srunner_add_suite(sr, create_suite());
	srunner_add_suite(sr, cow_suite());
	srunner_add_suite(sr, backing_suite());
	srunner_add_suite(sr, error_suite());
	srunner_add_suite(sr, sparse_suite());
	srunner_add_suite(sr, cbt_suite());
	srunner_add_suite(sr, cbt_reply_suite());
	srunner_add_suite(sr, scan_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	tu_remove_root();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
