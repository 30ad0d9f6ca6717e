/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * quote.h - untrusted strings (file names, COW headers' backing paths,
 * guest replies) in messages, listings, suggested shell commands and JSON.
 *
 * A file name may hold any byte but NUL: newlines that would split a
 * one-line error, terminal escapes, quotes, bytes that are not UTF-8,
 * 4 KiB of directories.  Every tool makes such a name safe through these
 * helpers, one scheme per kind of output, so that a name reads the same
 * in every tool's messages, commands and JSON.
 *
 * The message scheme: valid UTF-8 is kept; control characters (C0, DEL,
 * C1) and bytes that are not part of valid UTF-8 are written as \n, \t,
 * \r or \xNN, and a backslash as \\, so that the result is one line and
 * can be read back unambiguously.
 */
#ifndef UBDK_QUOTE_H
#define UBDK_QUOTE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/*
 * s for a one-line message, into dst (dstlen > 7), in the message scheme.
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
 * The longest name quote_name() writes: long enough to recognise a path,
 * short enough that the reason after it in a message stays in view.
 */
#define QUOTE_NAME_MAX 200

/*
 * quote_msg() into one of a few buffers of this thread that take turns,
 * for the few names of one message: cli_error("%s: %s", quote_name(a),
 * quote_name(b)).
 */
const char *quote_name(const char *s);

/* s in the message scheme, whole (for listings, where nothing is cut). */
void quote_write(FILE *f, const char *s);

/*
 * A message whose names went through quote_name(): the same escapes for
 * what else it holds, but its backslashes kept (they are the names'
 * escapes) and nothing shortened, so that it is one line.
 */
void quote_line(FILE *f, const char *s);

/*
 * s as one shell word, for commands shown to the user: as it is when made
 * only of [A-Za-z0-9_@%+=:,./-] (and not empty); in single quotes, each '
 * written '\'', when it holds nothing the message scheme escapes; else as
 * $'...' with the message scheme's escapes (bash, zsh, ksh, POSIX.1-2024),
 * so that the word is one line and goes into a message as it is.  Returns
 * dst, or NULL (dst "") if it does not fit.
 */
char *quote_shell(char *dst, size_t dstlen, const char *s);
/* A size that always holds quote_shell()'s word for n bytes. */
#define QUOTE_SHELL_SIZE(n) (4 * (n) + 4)

/*
 * s as valid UTF-8, for a JSON library (which takes nothing else): valid
 * UTF-8 as it is; every byte that is not part of valid UTF-8 as the
 * character of its Latin-1 reading (U+0080-U+00FF).  Returns a string to
 * free, NULL if out of memory.
 */
char *quote_utf8(const char *s);

/*
 * s as a jansson string: quote_utf8(s), which jansson then escapes as
 * JSON requires.  NULL if out of memory.
 */
json_t *quote_json_string(const char *s);

/*
 * s as a JSON string literal (quotes included) on f, encoded by jansson
 * from quote_json_string(s); null if out of memory, so that the document
 * stays valid.
 */
void quote_json(FILE *f, const char *s);

/*
 * Whether decoded, a string read back from the JSON string of
 * quote_utf8(raw) (or of the \\u00XX escapes of earlier releases), is that
 * string: compares the bytes of raw that are valid UTF-8 as they are
 * and each other byte as the UTF-8 of its Latin-1 character.
 */
bool quote_json_matches(const char *raw, const char *decoded);

#endif /* UBDK_QUOTE_H */
