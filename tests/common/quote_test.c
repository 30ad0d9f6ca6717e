/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * quote_test - tools/common/quote.c, the one module every tool escapes
 * untrusted strings with: the message scheme (escapes, shortening that
 * keeps whole characters and both ends, whole names, whole lines), shell
 * words, JSON strings written by jansson for names that are not UTF-8,
 * and reading such JSON back.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quote.h"

static int failures, checks;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		checks++;                                                    \
		if (!(cond)) {                                               \
			failures++;                                          \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__,        \
				__LINE__, #cond);                            \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

/* What fn(f, s) writes to f, in buf. */
static const char *written(void (*fn)(FILE *, const char *), const char *s, char *buf,
			   size_t len)
{
	FILE *f = fmemopen(buf, len, "w");

	fn(f, s);
	fclose(f);
	return buf;
}

static void test_msg(void)
{
	char buf[64], big[2000], out[200];

	CHECK(!strcmp(quote_msg(buf, sizeof(buf), "plain/path.cow"), "plain/path.cow"), "%s", buf);
	CHECK(!strcmp(quote_msg(buf, sizeof(buf), "a\nb\tc\rd\\e\x1b" "f\x7f"),
		      "a\\nb\\tc\\rd\\\\e\\x1bf\\x7f"), "%s", buf);
	/* UTF-8 stays; a stray byte, an overlong form, a C1 control do not. */
	CHECK(!strcmp(quote_msg(buf, sizeof(buf), "caf\xc3\xa9 \xe9 \xc0\xaf \xc2\x9b"),
		      "caf\xc3\xa9 \\xe9 \\xc0\\xaf \\xc2\\x9b"), "%s", buf);
	/* Too long: the start, "...", the longer end; never half an escape. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "/start", 6);
	memcpy(big + sizeof(big) - 12, "\n/end.cow", 10);
	quote_msg(out, sizeof(out), big);
	CHECK(strlen(out) < sizeof(out) && !strncmp(out, "/start", 6) &&
	      strstr(out, "...") && !strcmp(out + strlen(out) - 10, "\\n/end.cow"),
	      "%s", out);
	for (size_t n = 8; n < 40; n++) {
		char small[40];
		char s[] = "\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11";

		quote_msg(small, n, s);
		CHECK(strlen(small) < n, "length %zu: %s", n, small);
		/* Every escape is whole: \\x and two hex digits. */
		for (char *p = small; (p = strstr(p, "\\x")); p += 2)
			CHECK(p[2] && p[3], "cut escape at %zu: %s", n, small);
	}
	/* Multi-byte characters are never cut by quote_elide either. */
	for (size_t n = 8; n < 30; n++) {
		char small[30];

		quote_elide(small, n, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
			    "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac");
		CHECK(strlen(small) < n, "elide %zu", n);
		for (char *p = small; *p; p++)
			if ((unsigned char)*p == 0xe2)
				CHECK(p[1] && p[2], "cut character at %zu", n);
	}
}

static void test_name(void)
{
	char big[1000], out[64];
	const char *r, *dots, *a, *b;
	size_t head;

	/* A long path stays recognisable in at most QUOTE_NAME_MAX bytes. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[0] = '/';
	big[sizeof(big) - 2] = 'Z';
	r = quote_name(big);
	CHECK(strlen(r) <= QUOTE_NAME_MAX && strstr(r, "...") && r[0] == '/' &&
	      r[strlen(r) - 1] == 'Z', "%s", r);
	/* A long name of escapes is cut between escapes, never inside one. */
	memset(big, '\n', 300);
	big[300] = '\0';
	r = quote_name(big);
	dots = strstr(r, "...");
	head = dots ? (size_t)(dots - r) : 1;
	CHECK(strlen(r) <= QUOTE_NAME_MAX && dots && head % 2 == 0 &&
	      strlen(dots + 3) % 2 == 0 && strspn(r, "\\n") == head &&
	      strspn(dots + 3, "\\n") == strlen(dots + 3), "%s", r);
	/* The names of one message do not overwrite each other. */
	a = quote_name("a\n");
	b = quote_name("b");
	CHECK(!strcmp(a, "a\\n") && !strcmp(b, "b"), "%s %s", a, b);
	/* Whole names and whole lines: the same escapes, nothing cut. */
	CHECK(!strcmp(written(quote_write, "a\nb\\c\xff", out, sizeof(out)),
		      "a\\nb\\\\c\\xff"), "%s", out);
	CHECK(!strcmp(written(quote_line, "a\nb\\c\xff\xc2\x9b\xc3\xa9", out, sizeof(out)),
		      "a\\nb\\c\\xff\\xc2\\x9b\xc3\xa9"), "%s", out);
}

static void test_shell(void)
{
	char buf[64], worst[QUOTE_SHELL_SIZE(4)];

	CHECK(!strcmp(quote_shell(buf, sizeof(buf), "/run/uml/g1/mconsole"),
		      "/run/uml/g1/mconsole"), "%s", buf);
	CHECK(!strcmp(quote_shell(buf, sizeof(buf), ""), "''"), "%s", buf);
	CHECK(!strcmp(quote_shell(buf, sizeof(buf), "a b"), "'a b'"), "%s", buf);
	CHECK(!strcmp(quote_shell(buf, sizeof(buf), "it's;$(x)"), "'it'\\''s;$(x)'"),
	      "%s", buf);
	CHECK(!strcmp(quote_shell(buf, sizeof(buf), "caf\xc3\xa9 1"), "'caf\xc3\xa9 1'"),
	      "%s", buf);
	/* What a message would escape: $'...' with the same escapes, one line. */
	CHECK(!strcmp(quote_shell(buf, sizeof(buf), "a\nb'c\\"), "$'a\\nb\\'c\\\\'"),
	      "%s", buf);
	CHECK(!strcmp(quote_shell(buf, sizeof(buf), "x\xffy\x1b"), "$'x\\xffy\\x1b'"),
	      "%s", buf);
	CHECK(quote_shell(buf, 5, "a b c") == NULL && buf[0] == '\0', "too long");
	CHECK(quote_shell(buf, 6, "a b") != NULL, "fits");
	CHECK(quote_shell(buf, 8, "a\nb") != NULL && quote_shell(buf, 7, "a\nb") == NULL,
	      "fits exactly");
	/* The worst cases fit QUOTE_SHELL_SIZE. */
	CHECK(quote_shell(worst, sizeof(worst), "\x01\x02\x03\x04") != NULL, "%s", worst);
	CHECK(quote_shell(worst, sizeof(worst), "''''") != NULL, "%s", worst);
}

static void test_json(void)
{
	char out[128];
	char *j;

	/* Valid UTF-8 and control characters as they are: the JSON library escapes. */
	j = quote_utf8("a\"b\\c\n\x01" "caf\xc3\xa9\xf0\x9f\x98\x80");
	CHECK(!strcmp(j, "a\"b\\c\n\x01" "caf\xc3\xa9\xf0\x9f\x98\x80"), "%s", j);
	free(j);
	j = quote_utf8("caf\xc3\xa9/\xe9\xff.cow");
	CHECK(!strcmp(j, "caf\xc3\xa9/\xc3\xa9\xc3\xbf.cow"), "%s", j);
	free(j);
	/* A truncated UTF-8 sequence at the end; an overlong form; a surrogate. */
	j = quote_utf8("x\xe2\x82");
	CHECK(!strcmp(j, "x\xc3\xa2\xc2\x82"), "%s", j);
	free(j);
	j = quote_utf8("\xc0\xaf\xed\xa0\x80");
	CHECK(!strcmp(j, "\xc3\x80\xc2\xaf\xc3\xad\xc2\xa0\xc2\x80"), "%s", j);
	CHECK(quote_json_matches("\xc0\xaf\xed\xa0\x80", j), "matches its own conversion");
	free(j);
	/* Read back: U+00E9 is what \u00e9 decodes to. */
	CHECK(quote_json_matches("caf\xc3\xa9/\xe9", "caf\xc3\xa9/\xc3\xa9"), "matches");
	CHECK(!quote_json_matches("caf\xc3\xa9/\xe9", "caf\xc3\xa9/\xe9"), "raw byte");
	CHECK(!quote_json_matches("abc", "ab"), "shorter");
	CHECK(!quote_json_matches("ab", "abc"), "longer");
	CHECK(!quote_json_matches("\xe2\x82\xac", "\xe2\x82"), "cut character");
	/* Written by jansson: its escapes, UTF-8 kept, other bytes as Latin-1. */
	CHECK(!strcmp(written(quote_json, "q\"\\\n\x01/caf\xc3\xa9\xff", out, sizeof(out)),
		      "\"q\\\"\\\\\\n\\u0001/caf\xc3\xa9\xc3\xbf\""), "%s", out);
	CHECK(!strcmp(written(quote_json, "", out, sizeof(out)), "\"\""), "%s", out);
}

int main(void)
{
	test_msg();
	test_name();
	test_shell();
	test_json();
	printf("quote_test: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
