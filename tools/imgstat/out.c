/* SPDX-License-Identifier: GPL-2.0-or-later */
/* out.c - JSON or text, from the same calls. */
#include "out.h"
#include "quote.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void out_init(struct out *o, FILE *f, bool json)
{
	memset(o, 0, sizeof(*o));
	o->f = f;
	o->json = json;
	o->first[0] = true;
}

static bool text_on(const struct out *o, const char *label)
{
	return !o->json && label;
}

static void indent(struct out *o)
{
	for (int i = 0; i < o->indent; i++)
		fputs("  ", o->f);
}

/* JSON: comma and key before a member or element. */
static void key(struct out *o, const char *k)
{
	if (!o->first[o->depth])
		fputc(',', o->f);
	o->first[o->depth] = false;
	if (k) {
		quote_json(o->f, k);
		fputc(':', o->f);
	}
}

void out_doc_begin(struct out *o)
{
	if (o->json) {
		fputc('{', o->f);
		o->depth = 1;
		o->first[1] = true;
	}
}

void out_doc_end(struct out *o)
{
	if (o->json)
		fputs("}\n", o->f);
	o->depth = 0;
	o->indent = 0;
	fflush(o->f);
}

static void open_level(struct out *o, const char *k, const char *label,
		       char brace)
{
	if (o->json) {
		key(o, k);
		fputc(brace, o->f);
	} else if (text_on(o, label)) {
		indent(o);
		fprintf(o->f, "%s:\n", label);
	}
	if (o->depth + 1 >= OUT_MAX_DEPTH)
		return;
	o->depth++;
	o->first[o->depth] = true;
	o->text_open[o->depth] = false;
	if (!o->json && label) {
		o->indent++;
		o->text_open[o->depth] = true;
	}
}

static void close_level(struct out *o, char brace)
{
	if (o->json)
		fputc(brace, o->f);
	else if (o->text_open[o->depth])
		o->indent--;
	o->depth--;
}

void out_obj(struct out *o, const char *k, const char *label)
{
	open_level(o, k, label, '{');
}

void out_obj_end(struct out *o)
{
	close_level(o, '}');
}

void out_arr(struct out *o, const char *k, const char *label)
{
	open_level(o, k, label, '[');
}

void out_arr_end(struct out *o)
{
	close_level(o, ']');
}

void out_str(struct out *o, const char *k, const char *label, const char *s)
{
	if (o->json) {
		key(o, k);
		if (s)
			quote_json(o->f, s);
		else
			fputs("null", o->f);
	} else if (text_on(o, label)) {
		indent(o);
		fprintf(o->f, "%s: ", label);
		quote_write(o->f, s ? s : "(none)");
		fputc('\n', o->f);
	}
}

void out_fmt(struct out *o, const char *k, const char *label,
	     const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	out_str(o, k, label, buf);
}

void out_u64(struct out *o, const char *k, const char *label, uint64_t v)
{
	if (o->json) {
		key(o, k);
		fprintf(o->f, "%" PRIu64, v);
	} else if (text_on(o, label)) {
		indent(o);
		fprintf(o->f, "%s: %" PRIu64 "\n", label, v);
	}
}

void out_i64(struct out *o, const char *k, const char *label, int64_t v)
{
	if (o->json) {
		key(o, k);
		fprintf(o->f, "%" PRId64, v);
	} else if (text_on(o, label)) {
		indent(o);
		fprintf(o->f, "%s: %" PRId64 "\n", label, v);
	}
}

void out_bool(struct out *o, const char *k, const char *label, bool v)
{
	if (o->json) {
		key(o, k);
		fputs(v ? "true" : "false", o->f);
	} else if (text_on(o, label)) {
		indent(o);
		fprintf(o->f, "%s: %s\n", label, v ? "yes" : "no");
	}
}

void out_null(struct out *o, const char *k, const char *label)
{
	if (o->json) {
		key(o, k);
		fputs("null", o->f);
	} else if (text_on(o, label)) {
		indent(o);
		fprintf(o->f, "%s: -\n", label);
	}
}

void out_bytes(struct out *o, const char *k, const char *label, uint64_t v)
{
	char hb[32];

	if (o->json) {
		out_u64(o, k, label, v);
	} else if (text_on(o, label)) {
		indent(o);
		if (v < 1024)
			fprintf(o->f, "%s: %" PRIu64 " bytes\n", label, v);
		else
			fprintf(o->f, "%s: %" PRIu64 " bytes (%s)\n", label, v,
				human_size(v, hb, sizeof(hb)));
	}
}

void out_time(struct out *o, const char *k, const char *label, int64_t t)
{
	char tb[64];

	if (o->json) {
		out_i64(o, k, label, t);
	} else if (text_on(o, label)) {
		indent(o);
		if (t == 0)
			fprintf(o->f, "%s: 0 (never)\n", label);
		else
			fprintf(o->f, "%s: %" PRId64 " (%s)\n", label, t,
				human_time(t, tb, sizeof(tb)));
	}
}

void out_hex(struct out *o, const char *k, const char *label, uint64_t v)
{
	if (o->json) {
		out_u64(o, k, label, v);
	} else if (text_on(o, label)) {
		indent(o);
		fprintf(o->f, "%s: 0x%" PRIx64 "\n", label, v);
	}
}

void out_pct(struct out *o, const char *k, const char *label, double v)
{
	if (o->json) {
		key(o, k);
		fprintf(o->f, "%.4f", v);
	} else if (text_on(o, label)) {
		indent(o);
		if (v > 0 && v < 0.01)
			fprintf(o->f, "%s: %.2g%%\n", label, v);
		else
			fprintf(o->f, "%s: %.2f%%\n", label, v);
	}
}

void out_line(struct out *o, const char *fmt, ...)
{
	va_list ap;

	if (o->json)
		return;
	indent(o);
	va_start(ap, fmt);
	vfprintf(o->f, fmt, ap);
	va_end(ap);
	fputc('\n', o->f);
}

const char *human_size(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB",
					     "TiB", "PiB", "EiB" };
	double d = (double)v;
	int i = 0;

	while (d >= 1024 && i < 6) {
		d /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%" PRIu64 " bytes", v);
	else
		snprintf(buf, len, "%.1f %s", d, units[i]);
	return buf;
}

const char *human_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(buf, len, "?");
	return buf;
}

void out_pair(struct out *o, uint64_t a, uint64_t b)
{
	if (!o->json)
		return;
	key(o, NULL);
	fprintf(o->f, "[%" PRIu64 ",%" PRIu64 "]", a, b);
}

void file_error(struct out *o, const char *fmt, ...)
{
	char small[1024], *msg;
	va_list ap;

	va_start(ap, fmt);
	msg = cli_vformat(small, sizeof(small), fmt, ap);
	va_end(ap);
	fflush(stdout);
	cli_error("%s", msg);
	if (o->json)
		out_str(o, "error", NULL, msg);
	if (msg != small)
		free(msg);
}
