/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * check.h - the CHECK of the small stand-alone tests (tools/common's, the
 * backup formats'): a failed condition is printed with its place and
 * counted in `failures`, which main() turns into the exit status.
 */
#ifndef UBDK_TESTS_CHECK_H
#define UBDK_TESTS_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		failures++; \
	} \
} while (0)

#endif
