/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * escape.h - file names from users and COW headers, made safe to print.
 *
 * A name may hold any byte but NUL: newlines that would split a one-line
 * error, terminal escapes, bytes that are not UTF-8, 4 KiB of directories.
 * These helpers give each output its own safe form: an escaped, shortened
 * name for messages, a shell word for commands we suggest, and a JSON
 * string that stays valid for any bytes.
 */
#ifndef UBDK_ESCAPE_H
#define UBDK_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

/*
 * Longest name esc_name() writes before eliding its middle: long enough
 * to recognise a path, short enough that the reason after it in a message
 * is never lost.
 */
#define ESC_NAME_MAX 200
/* A buffer that always holds esc_name()'s result. */
#define ESC_NAME_BUF (ESC_NAME_MAX + 8)

/*
 * s for a message: backslash as "\\", newline as "\n", tab as "\t", other
 * control characters and DEL as "\ooo" (octal); a result longer than
 * ESC_NAME_MAX keeps its start and end around "...".  Returns buf.
 */
const char *esc_name(const char *s, char buf[ESC_NAME_BUF]);

/*
 * s as one shell word, for commands shown to the user: unchanged when it
 * holds only characters no shell treats specially, in single quotes
 * otherwise, and, when it holds control characters, as $'...' with
 * escapes (bash, zsh, ksh, POSIX.1-2024), so that the result is one line.
 * Returns buf, or NULL (and buf empty) when len is too small.
 */
const char *esc_shell(const char *s, char *buf, size_t len);
/* The size esc_shell() may need for a string of n bytes. */
#define ESC_SHELL_SIZE(n) (4 * (n) + 4)

/*
 * s as a JSON string literal, quotes included.  Valid UTF-8 is kept;
 * each byte that is not part of valid UTF-8 is written as \udcXX, XX its
 * value, as Python's "surrogateescape" does (PEP 383): the document stays
 * valid JSON, and os.fsencode(json.loads(...)) gives back the bytes.
 */
void esc_json(FILE *f, const char *s);

/*
 * Write s with its control characters escaped as esc_name() does (but
 * backslashes kept, and nothing shortened), so that it is one line.
 */
void esc_line(FILE *f, const char *s);

#endif /* UBDK_ESCAPE_H */
