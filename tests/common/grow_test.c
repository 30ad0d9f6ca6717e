/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tools/common/grow.c: arrays that grow by doubling, and refuse overflow. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "grow.h"

int main(void)
{
	uint64_t *v = NULL, *nv;
	size_t cap = 0, n;
	char big = 0;

	/* 1000 appends: first 16, then doubling; the contents move along. */
	for (n = 0; n < 1000; n++) {
		nv = grow_array(v, &cap, n, sizeof(*v), 16);
		CHECK(nv != NULL, "no room at %zu", n);
		if (!nv)
			break;
		v = nv;
		v[n] = n * 7;
		CHECK(cap > n && (cap == 16 || cap % 16 == 0), "cap %zu at %zu", cap, n);
	}
	CHECK(cap == 1024, "cap %zu after 1000", cap);
	for (n = 0; n < 1000; n++)
		CHECK(v[n] == n * 7, "v[%zu] = %llu", n, (unsigned long long)v[n]);
	/* Room left: the same pointer, no realloc. */
	CHECK(grow_array(v, &cap, 1000, sizeof(*v), 16) == v, "moved with room left");
	/* A size that overflows size_t: NULL, the array and cap untouched. */
	cap = SIZE_MAX / 2 + 1;
	CHECK(grow_array(&big, &cap, cap, 1, 16) == NULL, "overflow not refused");
	CHECK(cap == SIZE_MAX / 2 + 1, "cap changed on failure");
	cap = 1024;
	CHECK(grow_array(v, &cap, 1024, SIZE_MAX / 1024, 16) == NULL,
	      "element overflow not refused");
	free(v);
	if (failures)
		return 1;
	printf("grow: all passed\n");
	return 0;
}
