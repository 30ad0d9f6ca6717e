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

/*
 * The message form of the character at s: its bytes in out (at most 8),
 * their count in *outlen; returns how many bytes of s it covers.
 */
static size_t msg_unit(const unsigned char *s, bool escape, char *out, size_t *outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = utf8_len(s);

	if (!escape) {
		/* A whole character, or one stray byte. */
		n = n ? n : 1;
		memcpy(out, s, n);
		*outlen = n;
		return n;
	}
	/* C1 controls (U+0080-U+009F) act on terminals too. */
	if (n == 2 && s[0] == 0xc2 && s[1] < 0xa0)
		n = 0;
	if (n > 1 || (n == 1 && s[0] >= 0x20 && s[0] != 0x7f && s[0] != '\\')) {
		memcpy(out, s, n);
		*outlen = n;
		return n;
	}
	out[0] = '\\';
	*outlen = 2;
	switch (s[0]) {
	case '\\': out[1] = '\\'; break;
	case '\n': out[1] = 'n'; break;
	case '\t': out[1] = 't'; break;
	case '\r': out[1] = 'r'; break;
	default:
		out[1] = 'x';
		out[2] = hex[s[0] >> 4];
		out[3] = hex[s[0] & 15];
		*outlen = 4;
		break;
	}
	return 1;
}

static char *shorten(char *dst, size_t dstlen, const char *s, bool escape)
{
	const unsigned char *p;
	size_t total = 0, at = 0, pos = 0, head, tail, ulen;
	char unit[8];

	for (p = (const unsigned char *)s; *p; total += ulen)
		p += msg_unit(p, escape, unit, &ulen);
	if (total < dstlen) {
		head = total;
		tail = 0;
	} else {
		/* A third for the start, the rest for the end, "..." between. */
		head = (dstlen - 4) / 3;
		tail = dstlen - 4 - head;
	}
	for (p = (const unsigned char *)s; *p; at += ulen) {
		p += msg_unit(p, escape, unit, &ulen);
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
	return shorten(dst, dstlen, s, true);
}

char *quote_elide(char *dst, size_t dstlen, const char *s)
{
	return shorten(dst, dstlen, s, false);
}

char *quote_shell(char *dst, size_t dstlen, const char *s)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789_@%+=:,./-";
	size_t pos = 0;

	if (*s && strspn(s, safe) == strlen(s)) {
		if (strlen(s) >= dstlen)
			goto too_long;
		strcpy(dst, s);
		return dst;
	}
	if (dstlen < 3)
		goto too_long;
	dst[pos++] = '\'';
	for (; *s; s++) {
		const char *w = *s == '\'' ? "'\\''" : NULL;
		size_t wl = w ? 4 : 1;

		if (pos + wl + 2 > dstlen)
			goto too_long;
		if (w)
			memcpy(dst + pos, w, wl);
		else
			dst[pos] = *s;
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
