/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Names of the clones: a printf-like template and checks on lists. */
#ifndef UBDK_MKCOW_NAMES_H
#define UBDK_MKCOW_NAMES_H

#include <stddef.h>

/*
 * Expand a template holding exactly one %d conversion (with an optional
 * 0 flag and width, as in "guest-%04d.cow"; %% is a literal percent) for
 * the numbers start .. start + count - 1.  Returns a NULL-terminated array
 * to free with names_free(), or NULL with a reason in msg.
 */
char **names_expand(const char *tpl, unsigned long start, size_t count,
		    char *msg, size_t msglen);
void names_free(char **names);

/* Index of a name that appears twice, or -1. */
long names_find_duplicate(char *const *names, size_t count);

#endif
