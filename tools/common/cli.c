/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *cli_prog = "ubdkit";

void cli_init(const char *argv0)
{
	const char *slash = argv0 ? strrchr(argv0, '/') : NULL;

	if (argv0 && *argv0)
		cli_prog = slash ? slash + 1 : argv0;
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_report(const struct ubdk_err *err)
{
	cli_error("%s", err->msg[0] ? err->msg : strerror(err->errnum));
}

void cli_bad_option(char *const *argv, int optopt_value)
{
	/* getopt leaves optind past the offending word. */
	const char *word = optind > 0 ? argv[optind - 1] : "?";

	if (optopt_value && strchr(word, optopt_value) && word[1] != '-')
		cli_error("option '-%c' is unknown or needs an argument "
			  "(see --help)", optopt_value);
	else
		cli_error("option '%s' is unknown or needs an argument "
			  "(see --help)", word);
}

void cli_version(void)
{
	printf("%s (ubdkit) %s\n", cli_prog, ubdk_version());
}

bool cli_parse_u32(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || v > 0xffffffffUL)
		return false;
	*out = (unsigned)v;
	return true;
}

void cli_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}
