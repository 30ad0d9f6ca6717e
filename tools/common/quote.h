/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * quote.h - untrusted strings (file names, guest replies) in messages,
 * suggested shell commands and JSON.
 *
 * A file name may hold any byte but NUL and '/': newlines that would split
 * a one-line error, terminal escapes, quotes, bytes that are not UTF-8.
 * These helpers make such a name safe for one kind of output each.
 */
#ifndef UBDK_QUOTE_H
#define UBDK_QUOTE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * s for a one-line message, into dst (dstlen > 7): control characters
 * and bytes that are not UTF-8 as \n, \t, \r or \xNN, a backslash as \\.
 * If that does not fit, the middle is replaced by "..." so that the start
 * and, longer, the end (a path's file name) survive.  Returns dst.
 */
char *quote_msg(char *dst, size_t dstlen, const char *s);

/*
 * s shortened as quote_msg() does, but not escaped: for names that go into
 * a fixed-size message buffer escaped later as a whole.
 */
char *quote_elide(char *dst, size_t dstlen, const char *s);

/*
 * s as one word for a POSIX shell: as it is when made only of
 * [A-Za-z0-9_@%+=:,./-] (and not empty), else in single quotes with each '
 * written '\''.  Returns dst, or NULL (dst "") if it does not fit.
 */
char *quote_shell(char *dst, size_t dstlen, const char *s);

/*
 * s as valid UTF-8, for a JSON library (which takes nothing else): valid
 * UTF-8 as it is; every byte that is not part of valid UTF-8 as the
 * character of its Latin-1 reading (U+0080-U+00FF).  Returns a string to
 * free, NULL if out of memory.
 */
char *quote_utf8(const char *s);

/*
 * Whether decoded, a string read back from the JSON string of
 * quote_utf8(raw) (or of the \\u00XX escapes of earlier releases), is that
 * string: compares the bytes of raw that are valid UTF-8 as they are
 * and each other byte as the UTF-8 of its Latin-1 character.
 */
bool quote_json_matches(const char *raw, const char *decoded);

#endif /* UBDK_QUOTE_H */
