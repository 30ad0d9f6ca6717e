/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One Check suite per area of the format library. */
#ifndef UBDK_TEST_SUITES_H
#define UBDK_TEST_SUITES_H

#include <check.h>

Suite *header_suite(void);
Suite *bitmap_suite(void);
Suite *create_suite(void);
Suite *cow_suite(void);
Suite *backing_suite(void);
Suite *error_suite(void);
Suite *sparse_suite(void);
Suite *cbt_suite(void);
Suite *cbt_reply_suite(void);
Suite *scan_suite(void);

#endif /* UBDK_TEST_SUITES_H */
