/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "quote.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 character at s (1-4), 0 if s starts none. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0], cp;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;       /* also stops at the NUL */
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and beyond U+10FFFF are not UTF-8. */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/*
 * The message scheme's escape of the character at s into out (4 bytes),
 * its length; 0 if the character stands as it is.  *n is the number of
 * bytes of s covered: an escape covers one byte, so that a character that
 * is not UTF-8 shows each of its bytes.  A backslash is left to callers:
 * messages double it, a message's own text and single quotes keep it.
 */
static size_t escape_at(const unsigned char *s, size_t *n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t len = utf8_len(s);

	/* C1 controls (U+0080-U+009F) act on terminals too. */
	if (len == 2 && s[0] == 0xc2 && s[1] < 0xa0)
		len = 0;
	if (len > 1 || (len == 1 && !is_ctl(s[0]))) {
		*n = len;
		return 0;
	}
	*n = 1;
	out[0] = '\\';
	switch (s[0]) {
	case '\n': out[1] = 'n'; return 2;
	case '\t': out[1] = 't'; return 2;
	case '\r': out[1] = 'r'; return 2;
	}
	out[1] = 'x';
	out[2] = hex[s[0] >> 4];
	out[3] = hex[s[0] & 15];
	return 4;
}

/* What a unit of a string becomes. */
enum form {
	F_RAW,          /* as it is: whole characters, for shortening */
	F_LINE,         /* escaped, backslashes kept */
	F_NAME,         /* escaped, backslashes doubled */
};

/*
 * The form of the character at s: its bytes in out (at most 4), their
 * count in *outlen; returns how many bytes of s it covers.
 */
static size_t msg_unit(const unsigned char *s, enum form form, char *out, size_t *outlen)
{
	size_t n;

	if (form == F_RAW) {
		/* A whole character, or one stray byte. */
		n = utf8_len(s);
		n = n ? n : 1;
	} else if ((*outlen = escape_at(s, &n, out)) > 0) {
		return n;
	} else if (form == F_NAME && *s == '\\') {
		out[0] = out[1] = '\\';
		*outlen = 2;
		return 1;
	}
	memcpy(out, s, n);
	*outlen = n;
	return n;
}

static char *shorten(char *dst, size_t dstlen, const char *s, enum form form)
{
	const unsigned char *p;
	size_t total = 0, at = 0, pos = 0, head, tail, ulen;
	char unit[4];

	for (p = (const unsigned char *)s; *p; total += ulen)
		p += msg_unit(p, form, unit, &ulen);
	if (total < dstlen) {
		head = total;
		tail = 0;
	} else {
		/* A third for the start, the rest for the end, "..." between. */
		head = (dstlen - 4) / 3;
		tail = dstlen - 4 - head;
	}
	for (p = (const unsigned char *)s; *p; at += ulen) {
		p += msg_unit(p, form, unit, &ulen);
		/* Whole units only: never half an escape or a character. */
		if ((at + ulen <= head) || (tail && at >= total - tail)) {
			memcpy(dst + pos, unit, ulen);
			pos += ulen;
		} else if (tail && pos <= head) {
			memcpy(dst + pos, "...", 3);
			pos += 3;
			head = 0;       /* "..." once */
		}
	}
	dst[pos] = '\0';
	return dst;
}

char *quote_msg(char *dst, size_t dstlen, const char *s)
{
	return shorten(dst, dstlen, s, F_NAME);
}

char *quote_elide(char *dst, size_t dstlen, const char *s)
{
	return shorten(dst, dstlen, s, F_RAW);
}

const char *quote_name(const char *s)
{
	/* Per thread: uml_backup's threads report too. */
	static _Thread_local char buf[8][QUOTE_NAME_MAX + 1];
	static _Thread_local unsigned next;

	return quote_msg(buf[next++ % 8], sizeof(buf[0]), s);
}

static void write_form(FILE *f, const char *s, enum form form)
{
	const unsigned char *p = (const unsigned char *)s;
	char unit[4];
	size_t ulen;

	while (*p) {
		p += msg_unit(p, form, unit, &ulen);
		fwrite(unit, 1, ulen, f);
	}
}

void quote_write(FILE *f, const char *s)
{
	write_form(f, s, F_NAME);
}

void quote_line(FILE *f, const char *s)
{
	write_form(f, s, F_LINE);
}

char *quote_shell(char *dst, size_t dstlen, const char *s)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789_@%+=:,./-";
	const unsigned char *p;
	size_t pos = 0, n;
	bool dollar = false;
	char w[4];

	if (*s && strspn(s, safe) == strlen(s)) {
		if (strlen(s) >= dstlen)
			goto too_long;
		strcpy(dst, s);
		return dst;
	}
	/* Anything a message would escape: $'...', where escapes work. */
	for (p = (const unsigned char *)s; *p && !dollar; p += n)
		dollar = escape_at(p, &n, w) > 0;
	if (dstlen < 4)
		goto too_long;
	if (dollar)
		dst[pos++] = '$';
	dst[pos++] = '\'';
	for (p = (const unsigned char *)s; *p; p += n) {
		size_t wl = escape_at(p, &n, w);

		if (wl) {
			/* w holds the escape */
		} else if (*p == '\'' && !dollar) {
			/* Close, an escaped quote, reopen. */
			memcpy(w, "'\\''", 4);
			wl = 4;
		} else if ((*p == '\'' || *p == '\\') && dollar) {
			w[0] = '\\';
			w[1] = (char)*p;
			wl = 2;
		} else {
			memcpy(w, p, n);
			wl = n;
		}
		if (pos + wl + 2 > dstlen)
			goto too_long;
		memcpy(dst + pos, w, wl);
		pos += wl;
	}
	dst[pos++] = '\'';
	dst[pos] = '\0';
	return dst;
too_long:
	if (dstlen)
		dst[0] = '\0';
	return NULL;
}

char *quote_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	/* At worst every byte takes two. */
	char *out = malloc(2 * strlen(s) + 1), *o = out;

	if (!out)
		return NULL;
	while (*p) {
		size_t n = utf8_len(p);

		if (n) {
			memcpy(o, p, n);
			o += n;
			p += n;
			continue;
		}
		*o++ = (char)(0xc0 | *p >> 6);
		*o++ = (char)(0x80 | (*p & 0x3f));
		p++;
	}
	*o = '\0';
	return out;
}

json_t *quote_json_string(const char *s)
{
	char *u = quote_utf8(s);
	json_t *j = u ? json_string(u) : NULL;

	free(u);
	return j;
}

void quote_json(FILE *f, const char *s)
{
	json_t *j = quote_json_string(s);

	/* A bare string: JSON_ENCODE_ANY.  UTF-8 is kept, not \\u-escaped. */
	if (!j || json_dumpf(j, f, JSON_ENCODE_ANY) != 0)
		fputs("null", f);
	json_decref(j);
}

bool quote_json_matches(const char *raw, const char *decoded)
{
	const unsigned char *r = (const unsigned char *)raw;
	const unsigned char *d = (const unsigned char *)decoded;

	while (*r) {
		size_t n = utf8_len(r);

		if (n) {
			/* strncmp: stops at the end of a shorter decoded. */
			if (strncmp((const char *)r, (const char *)d, n))
				return false;
			r += n;
			d += n;
			continue;
		}
		/* U+0080-U+00FF in UTF-8: 0xc2 or 0xc3, then the low 6 bits. */
		if (d[0] != (0xc0 | *r >> 6) || d[1] != (0x80 | (*r & 0x3f)))
			return false;
		r++;
		d += 2;
	}
	return *d == '\0';
}
