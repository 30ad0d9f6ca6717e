/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "grow.h"

#include <stdint.h>
#include <stdlib.h>

void *grow_array(void *v, size_t *cap, size_t n, size_t size, size_t first)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return v;
	ncap = *cap ? *cap * 2 : first;
	if (ncap < *cap || (size && ncap > SIZE_MAX / size))
		return NULL;
	nv = realloc(v, ncap * size);
	if (nv)
		*cap = ncap;
	return nv;
}
