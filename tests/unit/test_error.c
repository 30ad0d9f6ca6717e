/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Version queries and the names of error codes and layouts. */
#include <stdio.h>
#include <string.h>

#include "suites.h"
#include "test_util.h"

START_TEST(version_string_and_number)
{
	const char *v = ubdk_version();
	int major = -1, minor = -1, patch = -1, end = 0;

	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v, UBDK_VERSION_STRING);
	ck_assert_int_eq(sscanf(v, "%d.%d.%d%n", &major, &minor, &patch, &end), 3);
	ck_assert_int_eq((int)strlen(v), end);
	ck_assert_int_eq(major, UBDK_VERSION_MAJOR);
	ck_assert_int_eq(minor, UBDK_VERSION_MINOR);
	ck_assert_int_eq(patch, UBDK_VERSION_PATCH);
	ck_assert_int_eq(ubdk_version_number(), major * 10000 + minor * 100 + patch);
}
END_TEST

/* Every code has its own short lowercase name; others are "unknown". */
START_TEST(errcode_names)
{
	const char *names[UBDK_E__COUNT];

	for (int c = 0; c < UBDK_E__COUNT; c++) {
		names[c] = ubdk_errcode_name(c);
		ck_assert_ptr_nonnull(names[c]);
		TU_CHECK(strlen(names[c]) > 0, "code %d", c);
		TU_CHECK(strcmp(names[c], "unknown") != 0, "code %d", c);
		for (const char *p = names[c]; *p; p++)
			TU_CHECK((*p >= 'a' && *p <= 'z') || *p == '-',
				      "code %d: \"%s\"", c, names[c]);
		for (int d = 0; d < c; d++)
			TU_CHECK(strcmp(names[c], names[d]) != 0,
				      "codes %d and %d are both \"%s\"", d, c,
				      names[c]);
	}
	ck_assert_str_eq(ubdk_errcode_name(UBDK_E_BAD_MAGIC), "bad-magic");
	ck_assert_str_eq(ubdk_errcode_name(-1), "unknown");
	ck_assert_str_eq(ubdk_errcode_name(UBDK_E__COUNT), "unknown");
	ck_assert_str_eq(ubdk_errcode_name(1 << 30), "unknown");
}
END_TEST

START_TEST(layout_names)
{
	ck_assert_str_eq(ubdk_layout_name(UBDK_LAYOUT_V1), "v1");
	ck_assert_str_eq(ubdk_layout_name(UBDK_LAYOUT_V2), "v2");
	ck_assert_str_eq(ubdk_layout_name(UBDK_LAYOUT_V3), "v3");
	ck_assert_str_eq(ubdk_layout_name(UBDK_LAYOUT_V3_BROKEN), "v3-broken");
	for (int l = -2; l <= 6; l++) {
		const char *n = ubdk_layout_name(l);

		ck_assert_ptr_nonnull(n);
		if (l >= UBDK_LAYOUT_V1 && l <= UBDK_LAYOUT_V3_BROKEN)
			continue;
		TU_CHECK(n[0] != 'v', "layout %d named \"%s\"", l, n);
	}
}
END_TEST

/* The documented sizes agree with the field tables of the format. */
START_TEST(header_size_constants)
{
	ck_assert_uint_eq(UBDK_HDR_V1_SIZE, 4 + 4 + 256 + 4 + 8 + 4);
	ck_assert_uint_eq(UBDK_HDR_V2_SIZE, 4 + 4 + 4096 + 4 + 8 + 4);
	ck_assert_uint_eq(UBDK_HDR_V3_SIZE, 4 + 4 + 4 + 8 + 4 + 4 + 4 + 4096);
	/* Unpacked: 8-byte mtime, and 4 bytes of tail padding to 8. */
	ck_assert_uint_eq(UBDK_HDR_V3_BROKEN_SIZE,
			  4 + 4 + 8 + 8 + 4 + 4 + 4 + 4096 + 4);
	ck_assert_uint_ge(UBDK_HDR_MAX_SIZE, UBDK_HDR_V3_BROKEN_SIZE);
	ck_assert_uint_eq(UBDK_COW_MAGIC, ('O' << 24 | 'O' << 16 | 'O' << 8 | 'M'));
}
END_TEST

Suite *error_suite(void)
{
	Suite *s = suite_create("error");
	TCase *tc = tcase_create("names");

	tcase_add_test(tc, version_string_and_number);
	tcase_add_test(tc, errcode_names);
	tcase_add_test(tc, layout_names);
	tcase_add_test(tc, header_size_constants);
	suite_add_tcase(s, tc);
	return s;
}
