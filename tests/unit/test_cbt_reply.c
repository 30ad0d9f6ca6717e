/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The `cbt` reply line (cbt_reply.h): the lines of docs/cbt.md parse to
 * their fields, what the driver formats parses back the same, and error
 * replies come back as codes, whatever their words.
 */
#include <errno.h>
#include <string.h>

#include "suites.h"
#include "cbt_reply.h"

START_TEST(status_line)
{
	struct ubdk_cbt_reply r;
	char line[256];
	int n;

	/* As docs/cbt.md shows it, with a newline and a field added later. */
	ck_assert_int_eq(ubdk_cbt_reply_parse("checkpoint=A state=inconsistent "
		"reason=unclean granularity=65536 blocks=1 size=67108864 "
		"generation=1 mem=4248 future=x\n", &r), 0);
	ck_assert_int_eq(r.kind, UBDK_CBT_REPLY_STATUS);
	ck_assert_str_eq(r.name, "A");
	ck_assert_uint_eq(r.reason, UBDK_CBT_UNCLEAN);
	ck_assert_uint_eq(r.granularity, 65536);
	ck_assert_uint_eq(r.blocks, 1);
	ck_assert_uint_eq(r.size, 67108864);
	ck_assert_uint_eq(r.generation, 1);
	ck_assert_uint_eq(r.mem, 4248);

	r.reason = 0;
	r.name[0] = '\0';
	r.blocks = 18446744073709551615ULL;
	n = ubdk_cbt_reply_format(line, sizeof(line), &r);
	ck_assert_int_eq(n, (int)strlen(line));
	ck_assert_str_eq(line, "checkpoint= state=consistent granularity=65536 "
			 "blocks=18446744073709551615 size=67108864 "
			 "generation=1 mem=4248");
	ck_assert_int_eq(ubdk_cbt_reply_parse(line, &r), 0);
	ck_assert_str_eq(r.name, "");
	ck_assert_uint_eq(r.reason, 0);
	ck_assert_uint_eq(r.blocks, 18446744073709551615ULL);
}
END_TEST

START_TEST(checkpoint_line)
{
	struct ubdk_cbt_reply r = { .kind = UBDK_CBT_REPLY_CHECKPOINT,
				    .name = "B", .from = "A",
				    .reason = UBDK_CBT_LOST,
				    .granularity = 65536, .blocks = 3,
				    .size = 1 << 26, .generation = 2,
				    .map = "/srv/my guests/g1.cow.cbt-map",
				    .map_len = 29 };
	char line[256];

	ubdk_cbt_reply_format(line, sizeof(line), &r);
	ck_assert_str_eq(line, "from=A to=B state=inconsistent reason=lost "
			 "granularity=65536 blocks=3 size=67108864 "
			 "generation=2 map=/srv/my guests/g1.cow.cbt-map");
	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(ubdk_cbt_reply_parse(line, &r), 0);
	ck_assert_int_eq(r.kind, UBDK_CBT_REPLY_CHECKPOINT);
	ck_assert_str_eq(r.from, "A");
	ck_assert_str_eq(r.name, "B");
	ck_assert_uint_eq(r.reason, UBDK_CBT_LOST);
	/* The path runs to the end of the line, its spaces kept. */
	ck_assert_uint_eq(r.map_len, 29);
	ck_assert(!memcmp(r.map, "/srv/my guests/g1.cow.cbt-map", 29));
}
END_TEST

START_TEST(error_codes)
{
	static const struct { const char *text; int code; } cases[] = {
		{ UBDK_CBT_REPLY_ERR_BUSY "cbt: busy, try again", UBDK_CBT_REPLY_BUSY },
		{ UBDK_CBT_REPLY_ERR_NOT_OPEN "ubdb: not open (...)", UBDK_CBT_REPLY_NOT_OPEN },
		{ UBDK_CBT_REPLY_ERR_USAGE "usage", UBDK_CBT_REPLY_USAGE },
		{ "error=no-tracking", UBDK_CBT_REPLY_NO_TRACKING },
		{ "error=failed /x.cow.cbt-map: busy\n", UBDK_CBT_REPLY_FAILED },
	};
	struct ubdk_cbt_reply r;
	char line[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(ubdk_cbt_reply_parse(cases[i].text, &r), 0);
		ck_assert_int_eq(r.kind, UBDK_CBT_REPLY_ERROR);
		ck_assert_int_eq(r.error, cases[i].code);
	}
	/* The words after the code are the message; a failed one says busy
	 * in its words and is still no busy reply. */
	ck_assert_uint_eq(r.msg_len, 20);
	ck_assert(!memcmp(r.msg, "/x.cow.cbt-map: busy", 20));
	ubdk_cbt_reply_format(line, sizeof(line), &r);
	ck_assert_str_eq(line, "error=failed /x.cow.cbt-map: busy");
}
END_TEST

START_TEST(not_a_reply)
{
	static const char *const bad[] = {
		/* mconsole's own answer from a kernel without the command. */
		"Unknown command",
		"",
		"error=busyness x",
		/* Missing fields, bad numbers, names and states. */
		"checkpoint=A state=consistent granularity=65536 blocks=1 size=1 "
		"generation=1",
		"checkpoint=A state=consistent granularity=65536 blocks=-1 size=1 "
		"generation=1 mem=1",
		"checkpoint=A state=consistent granularity=65536 "
		"blocks=18446744073709551616 size=1 generation=1 mem=1",
		"checkpoint=a/b state=consistent granularity=65536 blocks=1 size=1 "
		"generation=1 mem=1",
		"checkpoint=A state=inconsistent granularity=65536 blocks=1 size=1 "
		"generation=1 mem=1",
		"checkpoint=A state=consistent reason=lost granularity=65536 "
		"blocks=1 size=1 generation=1 mem=1",
		"checkpoint=A state=inconsistent reason=bogus granularity=65536 "
		"blocks=1 size=1 generation=1 mem=1",
		"from=A to=B state=consistent granularity=65536 blocks=1 size=1 "
		"generation=1",
	};
	struct ubdk_cbt_reply r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(ubdk_cbt_reply_parse(bad[i], &r) == -EINVAL,
			      "accepted: '%s'", bad[i]);
}
END_TEST

Suite *cbt_reply_suite(void)
{
	Suite *s = suite_create("cbt_reply");
	TCase *tc = tcase_create("reply");

	tcase_add_test(tc, status_line);
	tcase_add_test(tc, checkpoint_line);
	tcase_add_test(tc, error_codes);
	tcase_add_test(tc, not_a_reply);
	suite_add_tcase(s, tc);
	return s;
}
