/* SPDX-License-Identifier: GPL-2.0-or-later */
/* json.h - a small JSON reader, enough for backup manifests. */
#ifndef UBDK_JSON_H
#define UBDK_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
	int type;
	bool boolean;
	char *text;             /* string value, or a number as written */
	size_t n;               /* array items / object members */
	struct json **items;
	char **keys;            /* objects: member names */
};

/* Parse a whole document; NULL with a message (and offset) on error. */
struct json *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(struct json *j);

/* Member of an object, NULL if absent or j is not an object. */
const struct json *json_get(const struct json *j, const char *key);
/* String member, NULL if absent or not a string. */
const char *json_str(const struct json *j, const char *key);
/* Unsigned integer member; false if absent or not one. */
bool json_u64(const struct json *j, const char *key, uint64_t *out);

#endif
