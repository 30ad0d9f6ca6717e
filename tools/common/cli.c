/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cli.h"
#include "quote.h"

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

char *cli_vformat(char *small, size_t size, const char *fmt, va_list ap)
{
	char *msg;
	va_list again;
	int n;

	va_copy(again, ap);
	n = vsnprintf(small, size, fmt, ap);
	/* Never cut: the reason comes last, after the names. */
	if (n < 0 || (size_t)n < size || !(msg = malloc((size_t)n + 1))) {
		va_end(again);
		return small;
	}
	vsnprintf(msg, (size_t)n + 1, fmt, again);
	va_end(again);
	return msg;
}

void cli_error(const char *fmt, ...)
{
	char small[1024], *msg;
	va_list ap;

	va_start(ap, fmt);
	msg = cli_vformat(small, sizeof(small), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: ", cli_prog);
	/* One line, whatever bytes the names in it hold. */
	quote_line(stderr, msg);
	fputc('\n', stderr);
	if (msg != small)
		free(msg);
}

/*
 * What each error code means, for a library message cut at its buffer's
 * size by a long name: the name is what is lost, the reason is restored.
 */
static const char *const reasons[UBDK_E__COUNT] = {
	[UBDK_E_NOMEM] = "out of memory",
	[UBDK_E_INVALID_ARG] = "invalid argument",
	[UBDK_E_SHORT_HEADER] = "the file is shorter than a COW header",
	[UBDK_E_BAD_MAGIC] = "not a COW file (bad magic)",
	[UBDK_E_BAD_VERSION] = "unknown COW version",
	[UBDK_E_COW_FORMAT] = "unknown COW format",
	[UBDK_E_SECTORSIZE] = "bad sector size",
	[UBDK_E_ALIGNMENT] = "bad alignment",
	[UBDK_E_OVERFLOW] = "the geometry overflows 64 bits",
	[UBDK_E_BACKING_UNTERMINATED] = "the backing path is not terminated",
	[UBDK_E_BACKING_EMPTY] = "the backing path is empty",
	[UBDK_E_SHORT_BITMAP] = "the file ends inside its bitmap",
	[UBDK_E_SHORT_DATA] = "sectors marked present lie past the end of the file",
	[UBDK_E_SIZE_MISMATCH] = "the backing file's size differs from the header",
	[UBDK_E_MTIME_MISMATCH] = "the backing file's mtime differs from the header",
	[UBDK_E_LOCKED] = "in use: another process holds a lock on it",
	[UBDK_E_PATH_TOO_LONG] = "the backing path does not fit the header",
	[UBDK_E_RANGE] = "out of range",
	[UBDK_E_READ_ONLY] = "opened read-only",
	[UBDK_E_NOT_REGULAR] = "not a regular file or block device",
	[UBDK_E_EMPTY_BACKING] = "the backing file is empty",
};

const char *cli_err_text(const struct ubdk_err *err, char *buf, size_t len)
{
	size_t n = strnlen(err->msg, sizeof(err->msg));
	const char *why;

	if (!n)
		return strerror(err->errnum);
	if (n < sizeof(err->msg) - 1)
		return err->msg;
	/* Probably cut: keep a start of it, then the reason. */
	why = err->code > 0 && err->code < UBDK_E__COUNT && reasons[err->code] ?
	      reasons[err->code] : strerror(err->errnum);
	snprintf(buf, len, "%.*s...: %s%s%s", QUOTE_NAME_MAX, err->msg, why,
		 err->code == UBDK_E_SYS ? "" : " (",
		 err->code == UBDK_E_SYS ? "" : ubdk_errcode_name(err->code));
	if (err->code != UBDK_E_SYS && strlen(buf) + 2 <= len)
		strcat(buf, ")");
	return buf;
}

void cli_report(const struct ubdk_err *err)
{
	char buf[CLI_ERR_TEXT];

	cli_error("%s", cli_err_text(err, buf, sizeof(buf)));
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

int cli_fail_sys(struct ubdk_err *err, int errnum, const char *name,
		 const char *what)
{
	err->code = UBDK_E_SYS;
	err->errnum = errnum;
	err->file = UBDK_FILE_NONE;
	snprintf(err->msg, sizeof(err->msg), "%s: %s: %s", name, what,
		 strerror(errnum));
	return -errnum;
}
