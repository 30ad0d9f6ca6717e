/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "tool.h"
#include "quote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const method_names[M_COUNT] = { "auto", "reflink", "tracked", "compare", "copy" };

volatile sig_atomic_t tool_interrupted;

double tool_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void tool_utc_stamp(char *buf, size_t len, bool basic)
{
	struct timespec ts;
	struct tm tm;
	char day[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (!strftime(day, sizeof(day), basic ? "%Y%m%dT%H%M%S" : "%Y-%m-%dT%H:%M:%S", &tm))
		day[0] = '\0';
	snprintf(buf, len, "%s.%03dZ", day, (int)(ts.tv_nsec / 1000000));
}

const char *tool_lib_msg(const struct ubdk_err *err, const char *path)
{
	static char buf[2048];
	char reason[64], name[256];

	if (strlen(err->msg) + 1 < sizeof(err->msg))
		return err->msg;
	if (err->code == UBDK_E_SYS)
		snprintf(reason, sizeof(reason), "%s", strerror(err->errnum));
	else
		snprintf(reason, sizeof(reason), "%s", ubdk_errcode_name(err->code));
	for (char *p = reason; *p; p++)
		*p = *p == '-' ? ' ' : *p;
	snprintf(buf, sizeof(buf), "%s: %s", quote_elide(name, sizeof(name), path), reason);
	return buf;
}

int tool_parse_unit(const char *s)
{
	char *end;
	long n;

	if (!strncmp(s, "ubd", 3))
		s += 3;
	if (s[0] >= 'a' && s[0] <= 'p' && s[1] == '\0')
		return s[0] - 'a';
	if (s[0] < '0' || s[0] > '9')
		return -1;
	n = strtol(s, &end, 10);
	return *end || n < 0 || n >= MAX_DEV ? -1 : (int)n;
}
