/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "names.h"
#include "quote.h"

#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct template {
	char *prefix, *suffix;       /* with %% already turned into % */
	bool zero;
	int width;
};

/* Copy s[0..len) into a new string, turning %% into %. */
static char *unescape(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		*o++ = s[i];
		if (s[i] == '%')
			i++;
	}
	*o = '\0';
	return out;
}

static int parse(const char *tpl, struct template *t, char *msg, size_t len)
{
	const char *conv = NULL, *conv_end = NULL;

	memset(t, 0, sizeof(*t));
	for (const char *p = tpl; *p; p++) {
		const char *q;

		if (*p != '%')
			continue;
		if (p[1] == '%') {
			p++;
			continue;
		}
		q = p + 1;
		if (*q == '0')
			q++;
		while (isdigit((unsigned char)*q))
			q++;
		if (*q != 'd' || conv) {
			snprintf(msg, len, "bad name template '%s': it needs "
				 "exactly one %%d (like guest-%%04d.cow), and "
				 "%%%% for a literal %%", quote_name(tpl));
			return -1;
		}
		conv = p;
		conv_end = q + 1;
		t->zero = p[1] == '0';
		t->width = atoi(p + 1 + t->zero);
		if (t->width > 64) {
			snprintf(msg, len, "bad name template '%s': width %d "
				 "is too large", quote_name(tpl), t->width);
			return -1;
		}
		p = q;
	}
	if (!conv) {
		snprintf(msg, len, "bad name template '%s': it has no %%d, so "
			 "every clone would get the same name", quote_name(tpl));
		return -1;
	}
	t->prefix = unescape(tpl, (size_t)(conv - tpl));
	t->suffix = unescape(conv_end, strlen(conv_end));
	if (!t->prefix || !t->suffix) {
		snprintf(msg, len, "out of memory");
		return -1;
	}
	return 0;
}

char **names_expand(const char *tpl, unsigned long start, size_t count,
		    char *msg, size_t msglen)
{
	struct template t;
	char **names = NULL;
	size_t i = 0;

	if (parse(tpl, &t, msg, msglen) < 0)
		goto out;
	if (count > ULONG_MAX - start) {
		snprintf(msg, msglen, "--start %lu plus --count %zu overflows",
			 start, count);
		goto out;
	}
	names = calloc(count + 1, sizeof(*names));
	if (!names) {
		snprintf(msg, msglen, "out of memory for %zu names", count);
		goto out;
	}
	for (i = 0; i < count; i++) {
		size_t need = strlen(t.prefix) + strlen(t.suffix) + 90;

		names[i] = malloc(need);
		if (!names[i]) {
			snprintf(msg, msglen, "out of memory for %zu names", count);
			goto fail;
		}
		snprintf(names[i], need, t.zero ? "%s%0*lu%s" : "%s%*lu%s",
			 t.prefix, t.width, start + i, t.suffix);
		if (strlen(names[i]) >= PATH_MAX) {
			snprintf(msg, msglen, "name template '%s' makes a name "
				 "longer than %d bytes", quote_name(tpl), PATH_MAX - 1);
			i++;
			goto fail;
		}
	}
	goto out;
fail:
	names_free(names);
	names = NULL;
out:
	free(t.prefix);
	free(t.suffix);
	return names;
}

void names_free(char **names)
{
	if (!names)
		return;
	for (char **n = names; *n; n++)
		free(*n);
	free(names);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

long names_find_duplicate(char *const *names, size_t count)
{
	char **sorted = malloc((count ? count : 1) * sizeof(*sorted));
	long dup = -1;

	if (!sorted)
		return -1;
	memcpy(sorted, names, count * sizeof(*sorted));
	qsort(sorted, count, sizeof(*sorted), cmp_name);
	for (size_t i = 1; i < count && dup < 0; i++) {
		if (strcmp(sorted[i - 1], sorted[i]) != 0)
			continue;
		for (size_t j = 0; j < count; j++) {
			if (names[j] == sorted[i] || names[j] == sorted[i - 1]) {
				dup = (long)j;
				break;
			}
		}
	}
	free(sorted);
	return dup;
}
