/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
/* Members of one object: duplicates are looked for in a linear scan. */
#define MAX_MEMBERS 4096

struct parser {
	const char *s, *end;
	const char *start;
	char *err;
	size_t errlen;
	bool failed;
};

static void fail(struct parser *p, const char *what)
{
	if (!p->failed)
		snprintf(p->err, p->errlen, "%s at byte %ld", what, (long)(p->s - p->start));
	p->failed = true;
}

static void skip_ws(struct parser *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' ||
				 *p->s == '\r'))
		p->s++;
}

static struct json *new_node(int type)
{
	struct json *j = calloc(1, sizeof(*j));

	if (j)
		j->type = type;
	return j;
}

void json_free(struct json *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n; i++) {
		json_free(j->items[i]);
		if (j->keys)
			free(j->keys[i]);
	}
	free(j->items);
	free(j->keys);
	free(j->text);
	free(j);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool hex4(struct parser *p, unsigned *out)
{
	unsigned v = 0;

	if (p->end - p->s < 4)
		return false;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p->s[i]);

		if (h < 0)
			return false;
		v = v << 4 | (unsigned)h;
	}
	p->s += 4;
	*out = v;
	return true;
}

static size_t utf8(unsigned cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A string; p->s is at the opening quote. */
static char *parse_string(struct parser *p)
{
	const char *q;
	char *out, *o;

	p->s++;
	/* The decoded string is never longer than the encoded one. */
	for (q = p->s; q < p->end && *q != '"'; q++)
		if (*q == '\\')
			q++;
	if (q >= p->end) {
		fail(p, "unterminated string");
		return NULL;
	}
	out = o = malloc((size_t)(q - p->s) + 1);
	if (!out) {
		fail(p, "out of memory");
		return NULL;
	}
	while (*p->s != '"') {
		unsigned char c = (unsigned char)*p->s++;
		unsigned cp, lo;

		if (c < 0x20) {
			fail(p, "control character in string");
			free(out);
			return NULL;
		}
		if (c != '\\') {
			*o++ = (char)c;
			continue;
		}
		c = (unsigned char)*p->s++;
		switch (c) {
		case '"': case '\\': case '/':
			*o++ = (char)c;
			break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			if (!hex4(p, &cp)) {
				fail(p, "bad \\u escape");
				free(out);
				return NULL;
			}
			if (cp >= 0xd800 && cp < 0xdc00 && p->end - p->s >= 6 &&
			    p->s[0] == '\\' && p->s[1] == 'u') {
				p->s += 2;
				if (!hex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff) {
					fail(p, "bad surrogate pair");
					free(out);
					return NULL;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			/* A NUL would end the C string early: "a\u0000b" == "a". */
			if (cp == 0) {
				fail(p, "NUL in string");
				free(out);
				return NULL;
			}
			o += utf8(cp, o);
			break;
		default:
			fail(p, "bad escape");
			free(out);
			return NULL;
		}
	}
	p->s++;
	*o = '\0';
	return out;
}

static struct json *parse_value(struct parser *p, int depth);

static bool push(struct json *j, struct json *item, char *key)
{
	struct json **items = realloc(j->items, (j->n + 1) * sizeof(*items));
	char **keys;

	if (!items)
		return false;
	j->items = items;
	if (j->type == JSON_OBJECT) {
		keys = realloc(j->keys, (j->n + 1) * sizeof(*keys));
		if (!keys)
			return false;
		j->keys = keys;
		j->keys[j->n] = key;
	}
	j->items[j->n++] = item;
	return true;
}

static struct json *parse_container(struct parser *p, int depth, bool object)
{
	struct json *j = new_node(object ? JSON_OBJECT : JSON_ARRAY);
	char close = object ? '}' : ']';

	if (!j) {
		fail(p, "out of memory");
		return NULL;
	}
	p->s++;
	skip_ws(p);
	if (p->s < p->end && *p->s == close) {
		p->s++;
		return j;
	}
	for (;;) {
		char *key = NULL;
		struct json *v;
		bool dup = false;

		skip_ws(p);
		if (object) {
			if (p->s >= p->end || *p->s != '"') {
				fail(p, "expected a member name");
				break;
			}
			key = parse_string(p);
			if (!key)
				break;
			skip_ws(p);
			if (p->s >= p->end || *p->s != ':') {
				free(key);
				fail(p, "expected ':'");
				break;
			}
			p->s++;
			/*
			 * A second "devices" would be read by one program and
			 * ignored by another: refuse it, as strict parsers do.
			 */
			for (size_t i = 0; i < j->n && !dup; i++)
				dup = !strcmp(j->keys[i], key);
			if (dup || j->n >= MAX_MEMBERS) {
				free(key);
				fail(p, dup ? "duplicate member name" : "too many members");
				break;
			}
		}
		v = parse_value(p, depth + 1);
		if (!v || !push(j, v, key)) {
			json_free(v);
			free(key);
			fail(p, "out of memory");
			break;
		}
		skip_ws(p);
		if (p->s < p->end && *p->s == ',') {
			p->s++;
			continue;
		}
		if (p->s < p->end && *p->s == close) {
			p->s++;
			return j;
		}
		fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
		break;
	}
	json_free(j);
	return NULL;
}

static struct json *parse_value(struct parser *p, int depth)
{
	struct json *j;
	const char *q;

	skip_ws(p);
	if (depth > MAX_DEPTH) {
		fail(p, "nested too deeply");
		return NULL;
	}
	if (p->s >= p->end) {
		fail(p, "unexpected end");
		return NULL;
	}
	switch (*p->s) {
	case '{':
		return parse_container(p, depth, true);
	case '[':
		return parse_container(p, depth, false);
	case '"':
		j = new_node(JSON_STRING);
		if (j && !(j->text = parse_string(p))) {
			free(j);
			return NULL;
		}
		return j;
	case 't':
	case 'f':
	case 'n': {
		static const char *const words[] = { "true", "false", "null" };

		for (int i = 0; i < 3; i++) {
			size_t l = strlen(words[i]);

			if ((size_t)(p->end - p->s) >= l && !strncmp(p->s, words[i], l)) {
				p->s += l;
				j = new_node(i == 2 ? JSON_NULL : JSON_BOOL);
				if (j)
					j->boolean = i == 0;
				return j;
			}
		}
		fail(p, "unexpected word");
		return NULL;
	}
	default:
		break;
	}
	/* A number: -?digits(.digits)?([eE][+-]?digits)? */
	q = p->s;
	if (q < p->end && *q == '-')
		q++;
	if (q >= p->end || *q < '0' || *q > '9') {
		fail(p, "unexpected character");
		return NULL;
	}
	while (q < p->end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' ||
			      *q == 'E' || *q == '+' || *q == '-'))
		q++;
	j = new_node(JSON_NUMBER);
	if (!j || !(j->text = strndup(p->s, (size_t)(q - p->s)))) {
		free(j);
		fail(p, "out of memory");
		return NULL;
	}
	p->s = q;
	return j;
}

struct json *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct parser p = { text, text + len, text, err, errlen, false };
	struct json *j = parse_value(&p, 0);

	if (j) {
		skip_ws(&p);
		if (p.s != p.end) {
			fail(&p, "trailing characters");
			json_free(j);
			j = NULL;
		}
	}
	return j;
}

const struct json *json_get(const struct json *j, const char *key)
{
	if (!j || j->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < j->n; i++)
		if (!strcmp(j->keys[i], key))
			return j->items[i];
	return NULL;
}

const char *json_str(const struct json *j, const char *key)
{
	const struct json *v = json_get(j, key);

	return v && v->type == JSON_STRING ? v->text : NULL;
}

bool json_u64(const struct json *j, const char *key, uint64_t *out)
{
	const struct json *v = json_get(j, key);
	char *end;

	if (!v || v->type != JSON_NUMBER || v->text[0] == '-')
		return false;
	errno = 0;
	*out = strtoull(v->text, &end, 10);
	return !errno && *end == '\0';
}
