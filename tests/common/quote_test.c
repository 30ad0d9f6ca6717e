/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * quote_test - tools/common/quote.c: escaping for messages, shortening
 * that keeps whole characters and both ends, shell words, JSON for names
 * that are not UTF-8, and reading such JSON back.
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

static void test_msg(void)
{
	char buf[64], big[2000], out[200];

	CHECK(!strcmp(quote_msg(buf, sizeof(buf), "plain/path.cow"), "plain/path.cow"), "%s", buf);
	CHECK(!strcmp(quote_msg(buf, sizeof(buf), "a\nb\tc\rd\\e\x1b" "f"),
		      "a\\nb\\tc\\rd\\\\e\\x1bf"), "%s", buf);
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

static void test_shell(void)
{
	char buf[64];

	CHECK(!strcmp(quote_shell(buf, sizeof(buf), "/run/uml/g1/mconsole"),
		      "/run/uml/g1/mconsole"), "%s", buf);
	CHECK(!strcmp(quote_shell(buf, sizeof(buf), ""), "''"), "%s", buf);
	CHECK(!strcmp(quote_shell(buf, sizeof(buf), "a b"), "'a b'"), "%s", buf);
	CHECK(!strcmp(quote_shell(buf, sizeof(buf), "it's;$(x)"), "'it'\\''s;$(x)'"),
	      "%s", buf);
	CHECK(quote_shell(buf, 5, "a b c") == NULL && buf[0] == '\0', "too long");
	CHECK(quote_shell(buf, 6, "a b") != NULL, "fits");
}

static void test_json(void)
{
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
}

int main(void)
{
	test_msg();
	test_shell();
	test_json();
	printf("quote_test: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
