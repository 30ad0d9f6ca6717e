/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "escape.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* The escape of one control character, into out (at least 5 bytes). */
static size_t ctl_escape(unsigned char c, char *out)
{
	static const char oct[] = "01234567";

	out[0] = '\\';
	if (c == '\n' || c == '\t') {
		out[1] = c == '\n' ? 'n' : 't';
		return 2;
	}
	out[1] = oct[c >> 6];
	out[2] = oct[(c >> 3) & 7];
	out[3] = oct[c & 7];
	return 4;
}

/* Escaped form of one byte for esc_name(); returns its length (1 to 4). */
static size_t name_escape(unsigned char c, char *out)
{
	if (c == '\\') {
		out[0] = out[1] = '\\';
		return 2;
	}
	if (is_ctl(c))
		return ctl_escape(c, out);
	out[0] = (char)c;
	return 1;
}

const char *esc_name(const char *s, char buf[ESC_NAME_BUF])
{
	/* Room for the whole escaped name up to ESC_NAME_MAX, then its tail. */
	enum { HEAD = ESC_NAME_MAX / 2 - 2, TAIL = ESC_NAME_MAX - HEAD - 3 };
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0, total = 0, tail = 0, start;
	char e[4];

	for (const unsigned char *q = p; *q; q++)
		total += name_escape(*q, e);
	if (total <= ESC_NAME_MAX) {
		for (; *p; p++)
			n += name_escape(*p, buf + n);
		buf[n] = '\0';
		return buf;
	}
	/* The head, whole escapes only. */
	for (; *p; p++) {
		size_t k = name_escape(*p, e);

		if (n + k > HEAD)
			break;
		memcpy(buf + n, e, k);
		n += k;
	}
	memcpy(buf + n, "...", 3);
	n += 3;
	/* The tail: the shortest suffix whose escape fits TAIL bytes. */
	start = strlen(s);
	while (start > 0) {
		size_t k = name_escape((unsigned char)s[start - 1], e);

		if (tail + k > TAIL)
			break;
		tail += k;
		start--;
	}
	for (p = (const unsigned char *)s + start; *p; p++)
		n += name_escape(*p, buf + n);
	buf[n] = '\0';
	return buf;
}

static bool shell_safe(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("/._-+,:@%=", c);
}

const char *esc_shell(const char *s, char *buf, size_t len)
{
	const unsigned char *p;
	bool plain = *s != '\0', ctl = false;
	size_t n = 0;

	for (p = (const unsigned char *)s; *p; p++) {
		plain = plain && shell_safe(*p);
		ctl = ctl || is_ctl(*p);
	}
	if (len < ESC_SHELL_SIZE(strlen(s))) {
		if (len)
			buf[0] = '\0';
		return NULL;
	}
	if (plain) {
		memcpy(buf, s, strlen(s) + 1);
		return buf;
	}
	if (ctl)
		buf[n++] = '$';
	buf[n++] = '\'';
	for (p = (const unsigned char *)s; *p; p++) {
		if (!ctl && *p == '\'') {
			/* Close, an escaped quote, reopen. */
			memcpy(buf + n, "'\\''", 4);
			n += 4;
		} else if (ctl && (*p == '\'' || *p == '\\')) {
			buf[n++] = '\\';
			buf[n++] = (char)*p;
		} else if (is_ctl(*p)) {
			n += ctl_escape(*p, buf + n);
		} else {
			buf[n++] = (char)*p;
		}
	}
	buf[n++] = '\'';
	buf[n] = '\0';
	return buf;
}

/* Length of the valid UTF-8 sequence at p (2 to 4), or 0 if none. */
static size_t utf8_len(const unsigned char *p)
{
	uint32_t cp;
	size_t n;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1fU;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0fU;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07U;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		/* A NUL ends the string here, and fails this test too. */
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3fU);
	}
	/* Overlong forms, surrogates and values past U+10FFFF are invalid. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

void esc_json(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		size_t n;

		if (*p == '"' || *p == '\\') {
			fputc('\\', f);
			fputc(*p++, f);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p++);
		} else if (*p < 0x80) {
			fputc(*p++, f);
		} else if ((n = utf8_len(p)) > 0) {
			fwrite(p, 1, n, f);
			p += n;
		} else {
			fprintf(f, "\\udc%02x", *p++);
		}
	}
	fputc('"', f);
}

void esc_line(FILE *f, const char *s)
{
	char e[4];

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (is_ctl(*p))
			fwrite(e, 1, ctl_escape(*p, e), f);
		else
			fputc(*p, f);
	}
}
