/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers shared by the ubdkit command-line tools. */
#ifndef UBDK_CLI_H
#define UBDK_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "ubdk_cow.h"

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define CLI_NORETURN __attribute__((noreturn))
#else
#define CLI_PRINTF(a, b)
#define CLI_NORETURN
#endif

/* Name the tool reports itself as (basename of argv[0]). */
extern const char *cli_prog;

void cli_init(const char *argv0);
/* "prog: message" on stderr. */
void cli_error(const char *fmt, ...) CLI_PRINTF(1, 2);
/*
 * fmt formatted into small (size bytes) or, when longer, into a buffer
 * from malloc: the caller frees the result when it is not small.
 */
char *cli_vformat(char *small, size_t size, const char *fmt, va_list ap)
	CLI_PRINTF(3, 0);
/* Print err's message as "prog: message" (see cli_err_text). */
void cli_report(const struct ubdk_err *err);
/*
 * err's message; when a long name filled the library's message buffer and
 * cut the reason off, its start followed by the reason the code gives,
 * written into buf.
 */
#define CLI_ERR_TEXT (UBDK_ERR_MSG_MAX + 128)
const char *cli_err_text(const struct ubdk_err *err, char *buf, size_t len);
/*
 * After getopt_long() returned '?' with opterr = 0: one line naming the
 * unknown option or the option missing its argument.
 */
void cli_bad_option(char *const *argv, int optopt_value);
/* "prog (ubdkit) VERSION" on stdout. */
void cli_version(void);
/* Parse an unsigned 32-bit number; false if not a clean number. */
bool cli_parse_u32(const char *s, unsigned *out);
/*
 * Fill err for a failed OS call about a file, as "name: what: strerror":
 * code UBDK_E_SYS, errnum, no file kind.  Returns -errnum.  Prints nothing,
 * for engines that leave the printing to the command line.
 */
int cli_fail_sys(struct ubdk_err *err, int errnum, const char *name,
		 const char *what);

#endif /* UBDK_CLI_H */
