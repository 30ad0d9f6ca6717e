/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * grow.h - room for one more element in a growing array: every tool's
 * lists (chunk tables, directories, changed granules, file changes) grow
 * the same way.
 */
#ifndef UBDK_TOOLS_GROW_H
#define UBDK_TOOLS_GROW_H

#include <stddef.h>

/*
 * v holds *cap elements of size bytes, n of them used: v itself while
 * n < *cap, else v moved to twice the room (first elements the first
 * time), *cap updated.  NULL, v untouched, when memory (or size_t) runs
 * out.
 */
void *grow_array(void *v, size_t *cap, size_t n, size_t size, size_t first);

#endif
