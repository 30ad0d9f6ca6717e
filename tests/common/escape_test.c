/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tests of tools/common/escape.c: each form on the names that break them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

static int failures;

static void same(const char *what, const char *got, const char *want)
{
	if (strcmp(got, want) != 0) {
		fprintf(stderr, "FAIL %s: got [%s], want [%s]\n", what, got, want);
		failures++;
	}
}

/* esc_json() into a string. */
static const char *json(const char *s, char *buf, size_t len)
{
	FILE *f = fmemopen(buf, len, "w");

	esc_json(f, s);
	fclose(f);
	return buf;
}

int main(void)
{
	char nb[ESC_NAME_BUF], sb[ESC_SHELL_SIZE(64)], jb[256], big[1000];
	const char *r;

	/* Names for messages: one line, backslashes kept apart. */
	same("name plain", esc_name("/srv/a.cow", nb), "/srv/a.cow");
	same("name ctl", esc_name("a\nb\tc\\d\033e\x7f", nb),
	     "a\\nb\\tc\\\\d\\033e\\177");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[0] = '/';
	big[sizeof(big) - 2] = 'Z';
	r = esc_name(big, nb);
	if (strlen(r) > ESC_NAME_MAX || !strstr(r, "...") || r[0] != '/' ||
	    r[strlen(r) - 1] != 'Z') {
		fprintf(stderr, "FAIL long name: [%s]\n", r);
		failures++;
	}
	/* A long name of escapes is cut between escapes, never inside one. */
	memset(big, '\n', 300);
	big[300] = '\0';
	r = esc_name(big, nb);
	{
		const char *dots = strstr(r, "...");
		size_t head = dots ? (size_t)(dots - r) : 1;

		if (strlen(r) > ESC_NAME_MAX || !dots || head % 2 ||
		    strlen(dots + 3) % 2 || strspn(r, "\\n") != head ||
		    strspn(dots + 3, "\\n") != strlen(dots + 3)) {
			fprintf(stderr, "FAIL cut escape: [%s]\n", r);
			failures++;
		}
	}

	/* Shell words. */
	same("shell plain", esc_shell("/srv/guest-1.cow", sb, sizeof(sb)),
	     "/srv/guest-1.cow");
	same("shell space", esc_shell("/srv/my disk.cow", sb, sizeof(sb)),
	     "'/srv/my disk.cow'");
	same("shell quote", esc_shell("it's;rm -rf $HOME", sb, sizeof(sb)),
	     "'it'\\''s;rm -rf $HOME'");
	same("shell newline", esc_shell("a\nb'c\\", sb, sizeof(sb)),
	     "$'a\\nb\\'c\\\\'");
	same("shell empty", esc_shell("", sb, sizeof(sb)), "''");
	if (esc_shell("abcdef", sb, 8) != NULL || sb[0] != '\0') {
		fprintf(stderr, "FAIL shell small buffer\n");
		failures++;
	}

	/* JSON: UTF-8 kept, other bytes as surrogate escapes. */
	same("json utf8", json("d\xc3\xa9j\xc3\xa0 \xf0\x9f\x98\x80", jb, sizeof(jb)),
	     "\"d\xc3\xa9j\xc3\xa0 \xf0\x9f\x98\x80\"");
	same("json bytes", json("a\xff" "b\xc3(\xe0\x80\x80\xed\xa0\x80", jb, sizeof(jb)),
	     "\"a\\udcffb\\udcc3(\\udce0\\udc80\\udc80\\udced\\udca0\\udc80\"");
	same("json ctl", json("q\"\\\n\x7f", jb, sizeof(jb)),
	     "\"q\\\"\\\\\\u000a\\u007f\"");
	/* A sequence cut by the end of the string. */
	same("json cut", json("x\xe2\x82", jb, sizeof(jb)), "\"x\\udce2\\udc82\"");

	if (failures)
		return 1;
	printf("escape: all passed\n");
	return 0;
}
