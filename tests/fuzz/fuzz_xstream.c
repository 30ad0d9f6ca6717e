/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the extent stream parser (tools/backup/format/xstream.c):
 * backups and `uml_backup restore -` read streams from anywhere.  The
 * first input byte says how to cut the rest into feeds (its low 7 bits; the
 * parser must not depend on it) and, its top bit, whether streams may follow
 * each other (multi, as `restore -` reads a chain); the callback checks what the parser promises:
 * records in order, within file_size, a DATA record's payload at most
 * 4 MiB; and a stream taken must end exactly at its end record.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	bool multi;
	int headers, ends;
	uint64_t file_size, next;
};

static int check(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
		 const uint8_t *data)
{
	struct seen *s = ctx;

	if (off == XS_END_CALL) {
		/* Only a multi parser ends streams this way, each after its header. */
		if (!s->multi || s->ends++ != s->headers - 1 || len || data)
			abort();
		return 0;
	}
	if (off == XS_HEADER_CALL) {
		if ((s->headers++ && !s->multi) || s->ends != s->headers - 1 || len || data)
			abort();
		s->file_size = h->file_size;
		s->next = 0;
		return 0;
	}
	if (!s->headers || off < s->next || len == 0 || off > s->file_size ||
	    len > s->file_size - off || (data && len > XS_MAX_DATA))
		abort();
	/* The payload is readable: ASan says otherwise. */
	if (data && len)
		s->next = off + len + (data[0] & 0) + (data[len - 1] & 0);
	else
		s->next = off + len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xs_parser p;
	struct seen s = { 0 };
	size_t step;
	char msg[256];
	int ret;

	if (size == 0)
		return 0;
	step = (size_t)(data[0] & 0x7f) + 1;
	s.multi = data[0] & 0x80;
	data++;
	size--;
	if (xs_parser_init(&p, check, &s) < 0)
		return 0;
	p.multi = s.multi;
	ret = 0;
	for (size_t at = 0; at < size && ret == 0;) {
		size_t k = step < size - at ? step : size - at;

		/* A piece of zeros goes as NULL, as the decompressors pass them. */
		bool zero = data[at] == 0 && (k == 1 || !memcmp(data + at, data + at + 1, k - 1));

		ret = xs_parser_feed(&p, zero ? NULL : data + at, k);
		at += k;
	}
	if (ret == 0) {
		ret = xs_parser_end(&p, msg, sizeof(msg));
		/* Taken: it said it was whole, so every byte was consumed. */
		if (ret == 0 && p.pos != size)
			abort();
	} else {
		if (!p.msg[0] || strncmp(p.msg, "stream byte ", 12))
			abort();
		xs_parser_free(&p);
	}
	return 0;
}
