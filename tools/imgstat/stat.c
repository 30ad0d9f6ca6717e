/* SPDX-License-Identifier: GPL-2.0-or-later */
/* stat.c - the full description of a COW file or a raw image. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hostlock.h"
#include "quote.h"
#include "imgstat.h"
#include "probe.h"

const char *layout_description(const struct img *im)
{
	switch (im->hdr.layout) {
	case UBDK_LAYOUT_V1:
		return im->hdr.v1_swapped ?
		       "version 1: 280-byte header in the byte order of a host of "
		       "the other endianness" :
		       "version 1: 280-byte header in host byte order";
	case UBDK_LAYOUT_V2:
		return "version 2: 4120-byte big-endian header";
	case UBDK_LAYOUT_V3:
		return "version 3: 4128-byte packed big-endian header";
	case UBDK_LAYOUT_V3_BROKEN:
		return "broken version 3: the unpacked 4136-byte header of 64-bit "
		       "builds before late 2005 (4 bytes of padding after mtime "
		       "move every later field)";
	default:
		return "unknown";
	}
}

static void write_header(struct out *o, const struct img *im)
{
	const struct ubdk_header *h = &im->hdr;

	out_obj(o, "header", "header");
	out_hex(o, "magic", "magic", UBDK_COW_MAGIC);
	out_str(o, "byte_order", "byte order",
		im->hdr.magic_le ? "little-endian" : "big-endian");
	out_u64(o, "version", "version", h->version);
	out_str(o, "backing_file", "backing file", h->backing);
	out_time(o, "mtime", "backing mtime", h->mtime);
	out_bytes(o, "size", "size", h->size);
	out_u64(o, "sectorsize", "sector size", h->sectorsize);
	if (h->layout == UBDK_LAYOUT_V3 || h->layout == UBDK_LAYOUT_V3_BROKEN) {
		out_u64(o, "alignment", "alignment", h->alignment);
		out_u64(o, "cow_format", "cow format", h->cow_format);
	} else {
		/* v1/v2 have no such fields: their bitmap aligns to sectors. */
		out_null(o, "alignment", NULL);
		out_null(o, "cow_format", NULL);
	}
	out_obj_end(o);
}

static void write_geometry(struct out *o, const struct img *im)
{
	const struct ubdk_geometry *g = &im->geo;

	out_obj(o, "geometry", "geometry");
	out_u64(o, "header_len", "header length", g->header_len);
	out_u64(o, "sectors", "sectors", g->sectors);
	out_u64(o, "bitmap_offset", "bitmap offset", g->bitmap_offset);
	out_u64(o, "bitmap_len", "bitmap length", g->bitmap_len);
	out_u64(o, "bitmap_used", "bitmap bytes used", g->bitmap_used);
	out_u64(o, "covered", "sectors with a bit", g->covered);
	out_u64(o, "data_offset", "data offset", g->data_offset);
	out_u64(o, "file_size", "expected file size", g->file_size);
	out_obj_end(o);
}

const char *backing_status(const struct img *im)
{
	if (!im->backing_ok)
		return im->berrno == ENOENT ? "missing" : im->backing_notreg ?
		       "not-regular" : "unreadable";
	if (!im->chk_done)
		return "unreadable";
	if (!im->chk.size_ok && !im->chk.mtime_ok)
		return "size-and-mtime-mismatch";
	if (!im->chk.size_ok)
		return "size-mismatch";
	if (!im->chk.mtime_ok)
		return "mtime-mismatch";
	return "ok";
}

const char *backing_error(const struct img *im)
{
	return im->backing_notreg ? "not a regular file or block device" :
	       strerror(im->berrno);
}

const char *rebase_command(const char *backing, const char *cow, char *buf,
			   size_t len)
{
	char b[QUOTE_SHELL_SIZE(UBDK_PATH_MAX)], c[QUOTE_SHELL_SIZE(UBDK_PATH_MAX)];

	snprintf(buf, len, "uml_mkcow --rebase %s %s",
		 backing ? quote_shell(b, sizeof(b), backing) : "BACKING",
		 quote_shell(c, sizeof(c), cow));
	return buf;
}

/* The command that fixes a mismatch, or NULL. */
static const char *backing_fix(const struct img *im, char *buf, size_t len)
{
	const char *st = backing_status(im);

	if (!strcmp(st, "mtime-mismatch"))
		return rebase_command(im->backing, im->path, buf, len);
	if (!strcmp(st, "missing"))
		return rebase_command(NULL, im->path, buf, len);
	return NULL;
}

static void write_backing(struct out *o, const struct img *im)
{
	const struct ubdk_backing_check *c = &im->chk;
	const char *st = backing_status(im);
	char fix[REBASE_COMMAND_SIZE];
	const char *cmd = backing_fix(im, fix, sizeof(fix));

	out_obj(o, "backing", "backing check");
	out_str(o, "path", "path", im->backing);
	out_bool(o, "override", NULL, im->backing_override);
	out_str(o, "status", "status", st);
	if (!im->backing_ok)
		out_str(o, "error", "error", backing_error(im));
	if (im->chk_done) {
		out_u64(o, "header_size", NULL, c->header_size);
		out_u64(o, "actual_size", NULL, c->actual_size);
		out_i64(o, "size_delta", NULL, c->size_delta);
		out_bool(o, "size_ok", NULL, c->size_ok);
		out_u64(o, "header_mtime", NULL, c->header_mtime);
		out_u64(o, "actual_mtime", NULL, c->actual_mtime);
		out_i64(o, "mtime_delta", NULL, c->mtime_delta);
		out_bool(o, "mtime_ok", NULL, c->mtime_ok);
		if (c->size_ok)
			out_line(o, "size: matches (%" PRIu64 " bytes)", c->actual_size);
		else
			out_line(o, "size: header %" PRIu64 ", file %" PRIu64
				 " (%+" PRId64 " bytes): not the file this COW "
				 "was made on, or it was resized", c->header_size,
				 c->actual_size, c->size_delta);
		if (c->mtime_ok) {
			out_line(o, "mtime: matches (%" PRIu32 ")", c->actual_mtime);
		} else {
			char a[64], b[64];

			out_line(o, "mtime: header %" PRIu32 " (%s), file %" PRIu32
				 " (%s), %+" PRId64 " s: the kernel refuses the "
				 "pair", c->header_mtime,
				 human_time(c->header_mtime, a, sizeof(a)),
				 c->actual_mtime,
				 human_time(c->actual_mtime, b, sizeof(b)),
				 c->mtime_delta);
		}
	}
	if (cmd) {
		out_str(o, "fix", NULL, cmd);
		if (!strcmp(st, "missing"))
			out_line(o, "fix: if the backing file moved: %s", cmd);
		else
			out_line(o, "fix: if its content is unchanged: %s", cmd);
	} else {
		out_null(o, "fix", NULL);
		if (!strcmp(st, "size-mismatch") ||
		    !strcmp(st, "size-and-mtime-mismatch"))
			out_line(o, "fix: none: find the backing file this COW "
				 "was made on (uml_mkcow --rebase refuses "
				 "another size)");
	}
	out_obj_end(o);
}

static int write_usage(struct out *o, struct img *im)
{
	uint64_t n = 0, runs = 0, pos = 0;
	struct extent r;
	double share;
	int ret;

	/* One walk gives both: the count is the runs' total. */
	while ((ret = img_next_cow_run(im, &pos, &r)) > 0) {
		runs++;
		n += r.len;
	}
	if (ret < 0) {
		out_null(o, "usage", NULL);
		return ret;
	}
	share = im->geo.sectors ? 100.0 * (double)n / (double)im->geo.sectors : 0;
	out_obj(o, "usage", "written by the guest");
	out_u64(o, "cow_sectors", "sectors in the COW", n);
	out_bytes(o, "cow_bytes", "bytes in the COW", n * im->hdr.sectorsize);
	out_pct(o, "share", "share of the disk", share);
	out_u64(o, "runs", "runs", runs);
	out_obj_end(o);
	return 0;
}

static void write_file(struct out *o, const char *key, const char *label,
		       const char *path, const struct stat *st)
{
	char a[32], b[32];

	out_obj(o, key, NULL);
	out_str(o, "path", NULL, path);
	out_u64(o, "apparent", NULL, (uint64_t)st->st_size);
	out_u64(o, "allocated", NULL, st_allocated(st));
	out_obj_end(o);
	out_line(o, "%s: %s apparent, %s allocated", label,
		 human_size((uint64_t)st->st_size, a, sizeof(a)),
		 human_size(st_allocated(st), b, sizeof(b)));
}

/*
 * The content of the image or merged view; a failure to read it is said on
 * stderr too, unless the file's status already says it failed.
 */
static int content(struct out *o, struct img *im, int status)
{
	int ret = probe_content(o, im, NULL);

	if (ret >= 0)
		return status;
	if (status == ST_OK)
		file_error(o, "%s: reading the %s: %s",
			   quote_name(im->path),
			   im->kind == IMG_COW ? "merged view" : "image",
			   strerror(-ret));
	return ST_FAILED;
}

/*
 * The usage, or why there is none: a COW cut inside its bitmap (which the
 * library refuses; --check counts what is left of it), cut inside its
 * data area (sectors marked present without data, read as zeros by
 * anything that copies extents), or whose bitmap cannot be read.  One
 * line on stderr, and ST_FAILED.
 */
static int usage(struct out *o, struct img *im)
{
	char name[QUOTE_NAME_MAX + 1];
	const struct ubdk_scan_bits *gone = &im->scan.short_data;
	int ret;

	quote_msg(name, sizeof(name), im->path);
	if (!im->cow) {
		out_null(o, "usage", NULL);
		file_error(o, "%s: %s%s", name, im->why,
			   im->short_bitmap ? " (see --check)" : "");
		return ST_FAILED;
	}
	ret = write_usage(o, im);
	if (ret < 0 || !im->scan_ok) {
		file_error(o, "%s: cannot read the bitmap: %s", name,
			   strerror(ret < 0 ? -ret : im->scan_err.errnum));
		return ST_FAILED;
	}
	if (gone->count) {
		file_error(o, "%s: %" PRIu64 " sector%s marked present lie%s "
			   "past the end of the file, from sector %" PRIu64
			   ": the file was cut short (see --check)", name,
			   gone->count, gone->count == 1 ? "" : "s",
			   gone->count == 1 ? "s" : "", gone->first);
		return ST_FAILED;
	}
	return ST_OK;
}

int mode_stat(struct out *o, struct img *im, const struct opts *op)
{
	int status = ST_OK;
	long pid = hostlock_holder(im->fd, true);

	(void)op;
	if (im->kind == IMG_RAW) {
		out_line(o, "%s: raw disk image", im->path);
		o->indent++;
		out_bytes(o, "size", "size", im->size);
		out_obj(o, "allocation", NULL);
		write_file(o, "image", "image", im->path, &im->st);
		out_obj_end(o);
		out_i64(o, "locked_by", pid ? "locked by pid" : NULL, pid);
		status = content(o, im, status);
		o->indent--;
		return status;
	}
	if (!im->hdr_ok) {
		out_line(o, "%s: COW magic, but the header cannot be decoded", im->path);
		out_null(o, "layout", NULL);
		file_error(o, "%s", im->hdr_err.msg);
		out_line(o, "  (run uml_imgstat --check for details)");
		return ST_FAILED;
	}
	out_line(o, "%s: UML COW file, %s", im->path, layout_description(im));
	o->indent++;
	out_str(o, "layout", NULL, ubdk_layout_name(im->hdr.layout));
	out_str(o, "layout_description", NULL, layout_description(im));
	write_header(o, im);
	if (!im->geo_ok) {
		out_null(o, "geometry", NULL);
		file_error(o, "%s", im->geo_err.msg);
		o->indent--;
		return ST_FAILED;
	}
	write_geometry(o, im);
	write_backing(o, im);
	status = usage(o, im);
	out_obj(o, "allocation", "files");
	write_file(o, "cow", "COW", im->path, &im->st);
	if (im->backing_ok)
		write_file(o, "backing", "backing", im->backing, &im->bst);
	else
		out_null(o, "backing", NULL);
	out_obj_end(o);
	out_i64(o, "locked_by", pid ? "in use: locked by pid" : NULL, pid);
	if (img_view_ok(im)) {
		if (strcmp(backing_status(im), "ok"))
			out_line(o, "note: the backing file does not match the "
				 "header: the merged view below may not be what "
				 "the guest saw");
		status = content(o, im, status);
	} else {
		out_null(o, "content", NULL);
		out_line(o, "content: not read: the merged view needs %s",
			 im->cow ? "the backing file" : "a readable bitmap");
	}
	o->indent--;
	return status;
}
