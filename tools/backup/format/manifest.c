/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "format/manifest.h"
#include "cli.h"
#include "input.h"
#include "quote.h"
#include "samefile.h"
#include "tool.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum ftype { T_STR, T_U64, T_I64, T_BOOL, T_MS1, T_MS3, T_OBJ, T_DEVICES };
enum {
	F_NULL = 1,             /* written as null when absent */
	F_OPT = 2,              /* written only when present */
	F_BREAK = 4,            /* a device entry goes on a new line here */
};

struct field {
	const char *key;
	unsigned char type, flags;
	size_t off;                     /* in struct manifest or manifest_device */
	const struct field *sub;        /* T_OBJ: its members, same struct */
};

#define M(key, type, flags, member) { key, type, flags, offsetof(struct manifest, member), NULL }
#define D(key, type, flags, member) \
	{ key, type, flags, offsetof(struct manifest_device, member), NULL }

static const struct field timing_fields[] = {
	M("precopy", T_MS1, 0, t_precopy),
	M("sync", T_MS1, 0, t_sync),
	M("pause", T_MS3, 0, t_pause),
	M("checksum_compress", T_MS1, 0, t_checksum_compress),
	M("fsync", T_MS1, 0, t_fsync),
	M("total", T_MS1, 0, t_total),
	{ NULL, 0, 0, 0, NULL },
};

static const struct field checksum_fields[] = {
	D("crc32", T_STR, 0, crc32),
	D("sha256_tree", T_STR, 0, sha256_tree),
	{ NULL, 0, 0, 0, NULL },
};

static const struct field device_fields[] = {
	D("device", T_STR, 0, device),
	D("cow", T_STR, 0, cow),
	D("backing", T_STR, 0, backing),
	D("size", T_U64, F_BREAK, size),
	D("mtime", T_U64, 0, mtime),
	D("layout", T_STR, 0, layout),
	D("sectorsize", T_U64, 0, sectorsize),
	D("file", T_STR, F_BREAK, file),
	D("compression", T_STR, 0, compression),
	D("format", T_STR, 0, format),
	D("stream_xxh128", T_STR, F_OPT, stream_xxh128),
	D("stored_bytes", T_U64, 0, stored_bytes),
	D("cow_bytes", T_U64, F_BREAK, cow_bytes),
	D("data_bytes", T_U64, 0, data_bytes),
	D("cow_sectors", T_U64, F_OPT, cow_sectors),
	D("paused_copy_bytes", T_U64, 0, paused_copy_bytes),
	{ "checksums", T_OBJ, F_BREAK | F_OPT, 0, checksum_fields },
	D("chunks", T_STR, F_OPT | F_BREAK, chunks),
	D("chunks_xxh128", T_STR, F_OPT, chunks_xxh128),
	{ NULL, 0, 0, 0, NULL },
};

static const struct field parent_fields[] = {
	M("point", T_STR, 0, parent_point),
	M("dir", T_STR, 0, parent_dir),
	{ NULL, 0, 0, 0, NULL },
};

static const struct field manifest_fields[] = {
	M("format", T_STR, 0, format),
	M("version", T_U64, 0, version),
	M("tool", T_STR, 0, tool),
	M("guest", T_STR, F_NULL, guest),
	M("mconsole", T_STR, F_NULL, mconsole),
	M("kernel", T_STR, F_NULL, kernel),
	M("live", T_BOOL, 0, live),
	M("created", T_STR, 0, created),
	M("point", T_STR, 0, point),
	M("kind", T_STR, 0, kind),
	M("method", T_STR, 0, method),
	M("method_note", T_STR, F_OPT, method_note),
	M("synced", T_BOOL, 0, synced),
	M("drained", T_BOOL, 0, drained),
	M("dirty_kb", T_I64, 0, dirty_kb),
	M("io_idle", T_STR, 0, io_idle),
	M("pause_ms", T_MS3, 0, pause_ms),
	{ "timing_ms", T_OBJ, 0, 0, timing_fields },
	M("tracked_writes", T_U64, F_OPT, tracked_writes),
	{ "parent", T_OBJ, F_OPT, 0, parent_fields },
	M("changes", T_STR, F_OPT, changes),
	M("changes_note", T_STR, F_OPT, changes_note),
	{ "devices", T_DEVICES, 0, 0, NULL },
	{ NULL, 0, 0, 0, NULL },
};

#define AT(base, f, type) ((type *)((char *)(base) + (f)->off))

/* Every key absent, as a reader starts and a writer fills in. */
static void clear(const struct field *t, void *base)
{
	for (const struct field *f = t; f->key; f++) {
		if (f->type == T_STR)
			*AT(base, f, const char *) = NULL;
		else if (f->type == T_U64)
			*AT(base, f, uint64_t) = MANIFEST_ABSENT;
		else if (f->type == T_OBJ)
			clear(f->sub, base);
	}
}

void manifest_init(struct manifest *m)
{
	memset(m, 0, sizeof(*m));
	clear(manifest_fields, m);
	m->format = "ubdkit-backup";
	m->version = 1;
}

/* Rounded as the manifest shows it, so the binary fraction shows no tail. */
static json_t *ms(double v, double scale)
{
	return json_real(manifest_json_round(v, scale));
}

double manifest_json_round(double v, double scale)
{
	/* Times are not negative: no libm for this. */
	return v > 0 ? (double)(long long)(v * scale + 0.5) / scale : 0;
}

/* One field's value; NULL for an optional field that is absent. */
static json_t *value_of(const struct field *f, const void *base)
{
	switch (f->type) {
	case T_STR: {
		const char *s = *AT(base, f, const char *const);

		if (!s)
			return f->flags & F_OPT ? NULL : json_null();
		return quote_json_string(s);
	}
	case T_U64: {
		uint64_t v = *AT(base, f, const uint64_t);

		if (v == MANIFEST_ABSENT && (f->flags & F_OPT))
			return NULL;
		return json_integer((json_int_t)v);
	}
	case T_I64:
		return json_integer((json_int_t)*AT(base, f, const int64_t));
	case T_BOOL:
		return json_boolean(*AT(base, f, const bool));
	case T_MS1:
		return ms(*AT(base, f, const double), 10);
	case T_MS3:
		return ms(*AT(base, f, const double), 1000);
	case T_OBJ: {
		json_t *o = json_object();

		for (const struct field *g = f->sub; g->key; g++) {
			json_t *v = value_of(g, base);

			/* An optional object whose members are all absent is left out. */
			if ((f->flags & F_OPT) && json_is_null(v)) {
				json_decref(v);
				continue;
			}
			json_object_set_new(o, g->key, v);
		}
		if ((f->flags & F_OPT) && json_object_size(o) == 0) {
			json_decref(o);
			return NULL;
		}
		return o;
	}
	}
	return NULL;
}

#define DUMP_FLAGS (JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))

/*
 * The fields of t, each through jansson, laid out as earlier releases
 * wrote them (key order and line breaks), so that the files stay
 * comparable line by line: false if out of memory.
 */
static bool put_fields(FILE *f, const struct field *t, const void *base, const char *first,
		       const char *sep, const char *brk)
{
	bool ok = true;

	for (const struct field *fl = t; fl->key && ok; fl++) {
		json_t *v = value_of(fl, base);

		if (fl->type == T_DEVICES || !v) {
			json_decref(v);
			continue;
		}
		fprintf(f, "%s\"%s\": ", fl == t ? first : fl->flags & F_BREAK ? brk : sep,
			fl->key);
		ok = json_dumpf(v, f, DUMP_FLAGS) == 0;
		json_decref(v);
	}
	return ok;
}

char *manifest_text(const struct manifest *m, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	bool ok;

	if (!f)
		return NULL;
	fputs("{", f);
	ok = put_fields(f, manifest_fields, m, "\n  ", ",\n  ", ",\n  ");
	fputs(",\n  \"devices\": [", f);
	for (size_t i = 0; i < m->ndev && ok; i++) {
		fputs(i ? ",\n    {" : "\n    {", f);
		ok = put_fields(f, device_fields, &m->dev[i], "", ", ", ",\n     ");
		fputs("}", f);
	}
	fputs("\n  ]\n}\n", f);
	if (fclose(f) != 0 || !ok) {
		free(buf);
		return NULL;
	}
	return buf;
}

int manifest_json_print(json_t *j)
{
	int ret = j && json_dumpf(j, stdout, DUMP_FLAGS) == 0 ? 0 : -ENOMEM;

	json_decref(j);
	putchar('\n');
	return ret;
}

/* Fill the fields of t present in o with the right type. */
static void get_fields(const struct field *t, void *base, const json_t *o)
{
	for (const struct field *f = t; f->key; f++) {
		json_t *v = json_object_get(o, f->key);

		switch (f->type) {
		case T_STR:
			if (json_is_string(v))
				*AT(base, f, const char *) = json_string_value(v);
			break;
		case T_U64:
			if (json_is_integer(v) && json_integer_value(v) >= 0)
				*AT(base, f, uint64_t) = (uint64_t)json_integer_value(v);
			break;
		case T_I64:
			if (json_is_integer(v))
				*AT(base, f, int64_t) = json_integer_value(v);
			break;
		case T_BOOL:
			if (json_is_boolean(v))
				*AT(base, f, bool) = json_is_true(v);
			break;
		case T_MS1:
		case T_MS3:
			if (json_is_number(v))
				*AT(base, f, double) = json_number_value(v);
			break;
		case T_OBJ:
			get_fields(f->sub, base, v);
			break;
		}
	}
}

/* The document of path; NULL after a message. */
static json_t *load(const char *path)
{
	json_error_t e;
	struct stat st;
	char *text;
	json_t *j;
	int fd = input_open(path, &st);

	if (fd >= 0 && !S_ISREG(st.st_mode)) {
		close(fd);
		fd = INPUT_E_TYPE;
	}
	if (fd < 0) {
		cli_error("%s: %s", quote_name(path), fd == -ENOENT ? "no manifest: not a complete "
			  "backup" : input_strerror(fd));
		return NULL;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text || read(fd, text, (size_t)st.st_size) != st.st_size) {
		cli_error("%s: cannot read", quote_name(path));
		free(text);
		close(fd);
		return NULL;
	}
	close(fd);
	/* A key twice would let two readers see two manifests. */
	j = json_loadb(text, (size_t)st.st_size, JSON_REJECT_DUPLICATES, &e);
	free(text);
	if (!j)
		cli_error("%s: not a uml_backup manifest: %s at byte %d", quote_name(path),
			  quote_name(e.text),
			  e.position);
	return j;
}

bool manifest_read(const char *dir, struct manifest *m)
{
	char path[PATH_MAX + 32];
	const json_t *devs;

	snprintf(path, sizeof(path), "%s/%s", dir, MANIFEST);
	memset(m, 0, sizeof(*m));
	clear(manifest_fields, m);
	m->doc = load(path);
	if (!m->doc)
		return false;
	devs = json_object_get(m->doc, "devices");
	if (!json_is_array(devs)) {
		cli_error("%s: not a uml_backup manifest", quote_name(path));
		manifest_free(m);
		return false;
	}
	/* Every backup has a device: an empty list would check nothing. */
	if (json_array_size(devs) == 0) {
		cli_error("%s: the manifest lists no devices", quote_name(path));
		manifest_free(m);
		return false;
	}
	m->dev = calloc(json_array_size(devs), sizeof(*m->dev));
	if (!m->dev) {
		cli_error("out of memory");
		manifest_free(m);
		return false;
	}
	get_fields(manifest_fields, m, m->doc);
	m->ndev = json_array_size(devs);
	for (size_t i = 0; i < m->ndev; i++) {
		clear(device_fields, &m->dev[i]);
		get_fields(device_fields, &m->dev[i], json_array_get(devs, i));
	}
	return true;
}

void manifest_free(struct manifest *m)
{
	json_decref(m->doc);
	free(m->dev);
	m->doc = NULL;
	m->dev = NULL;
	m->ndev = 0;
}

const struct manifest_device *manifest_pick_device(const struct manifest *m, const char *dir,
						   const char *want)
{
	const struct manifest_device *dv = NULL;

	for (size_t i = 0; i < m->ndev; i++) {
		const char *name = m->dev[i].device;

		if (want ? name && tool_parse_unit(name) >= 0 && tool_parse_unit(name) == tool_parse_unit(want) :
		    m->ndev == 1)
			dv = &m->dev[i];
	}
	if (!dv && want)
		cli_error("%s: no device %s in this backup", quote_name(dir), quote_name(want));
	else if (!dv)
		cli_error("%s: %zu devices in this backup: choose one with -d", quote_name(dir),
			  m->ndev);
	return dv;
}

/* Whether DIR/NAME is the file st is (a link in the point is not its target). */
static bool point_file_is(const char *dir, const char *name, const struct stat *st)
{
	char path[PATH_MAX];

	if (!name || strchr(name, '/'))
		return false;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return same_file(path, st, false);
}

bool manifest_lists_file(const struct manifest *m, const char *dir, const struct stat *st)
{
	if (!S_ISREG(st->st_mode))
		return false;
	if (point_file_is(dir, MANIFEST, st))
		return true;
	for (size_t i = 0; i < m->ndev; i++)
		if (point_file_is(dir, m->dev[i].file, st) || point_file_is(dir, m->dev[i].chunks, st))
			return true;
	return false;
}
