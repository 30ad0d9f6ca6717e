/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * out.h - one emitter for both output forms of uml_imgstat.
 *
 * Every value has a JSON key and a human label: in JSON mode the key is
 * written (compact, one document per line), in text mode "label: value"
 * at the current indentation; a NULL label keeps a value out of the text
 * (and an object or array opened with one has no heading or indentation),
 * a NULL key (inside an array) writes a bare JSON element.  out_line()
 * writes text only, for tables and sentences.
 */
#ifndef IMGSTAT_OUT_H
#define IMGSTAT_OUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"

#define OUT_MAX_DEPTH 32

struct out {
	FILE *f;
	bool json;
	int depth;
	bool first[OUT_MAX_DEPTH];
	bool text_open[OUT_MAX_DEPTH]; /* the level printed its label */
	int indent;
};

void out_init(struct out *o, FILE *f, bool json);
void out_doc_begin(struct out *o);
void out_doc_end(struct out *o);
void out_obj(struct out *o, const char *key, const char *label);
void out_obj_end(struct out *o);
void out_arr(struct out *o, const char *key, const char *label);
void out_arr_end(struct out *o);

void out_str(struct out *o, const char *key, const char *label, const char *s);
void out_fmt(struct out *o, const char *key, const char *label,
	     const char *fmt, ...) CLI_PRINTF(4, 5);
void out_u64(struct out *o, const char *key, const char *label, uint64_t v);
void out_i64(struct out *o, const char *key, const char *label, int64_t v);
void out_bool(struct out *o, const char *key, const char *label, bool v);
void out_null(struct out *o, const char *key, const char *label);
/* A byte count; text adds a binary-prefixed size. */
void out_bytes(struct out *o, const char *key, const char *label, uint64_t v);
/* Seconds since the epoch; text adds the UTC date. */
void out_time(struct out *o, const char *key, const char *label, int64_t t);
/* A number written in hex in text, decimal in JSON. */
void out_hex(struct out *o, const char *key, const char *label, uint64_t v);
/* A percentage (0-100) with 4 decimals in JSON, 2 in text. */
void out_pct(struct out *o, const char *key, const char *label, double v);
/* JSON only: an array element [a,b]. */
void out_pair(struct out *o, uint64_t a, uint64_t b);
/* Text only, at the current indentation. */
void out_line(struct out *o, const char *fmt, ...) CLI_PRINTF(2, 3);

/* "1.5 GiB" */
const char *human_size(uint64_t v, char *buf, size_t len);
/* "2024-02-29 12:34:56 UTC" */
const char *human_time(int64_t t, char *buf, size_t len);

/*
 * Report an error about the file being examined: one line on stderr, and
 * "error" in the JSON document.
 */
void file_error(struct out *o, const char *fmt, ...) CLI_PRINTF(2, 3);

#endif /* IMGSTAT_OUT_H */
