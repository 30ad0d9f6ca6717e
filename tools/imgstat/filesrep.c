/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * filesrep.c - --files: running the comparison (files.c) and reporting
 * what it found, or why it could not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <et/com_err.h>

#include "fsdiff.h"
#include "imgstat.h"
#include "probe.h"
#include "quote.h"

static const char *const field_names[] = {
	"content", "size", "mode", "owner", "mtime", "ctime", "links", "flags",
	"xattr", "type", "replaced",
};

static const char *const kind_names[] = { "added", "deleted", "modified",
					  "renamed" };
static const char kind_letters[] = { 'A', 'D', 'M', 'R' };

static const char *const cat_keys[] = { "unexplained", "metadata", "journal",
					"directories", "files", "free" };

static const char *type_name(int t)
{
	switch (t) {
	case EXT2_FT_REG_FILE: return "file";
	case EXT2_FT_DIR: return "dir";
	case EXT2_FT_CHRDEV: return "char";
	case EXT2_FT_BLKDEV: return "block";
	case EXT2_FT_FIFO: return "fifo";
	case EXT2_FT_SOCK: return "socket";
	case EXT2_FT_SYMLINK: return "symlink";
	default: return "unknown";
	}
}

/* --- output --------------------------------------------------------- */

static int change_cmp(const void *a, const void *b)
{
	const struct change *x = a, *y = b;
	int r = strcmp(x->path, y->path);

	return r ? r : x->kind - y->kind;
}

static void fields_text(unsigned f, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = 0;
	for (size_t i = 0; i < sizeof(field_names) / sizeof(field_names[0]); i++)
		if (f & (1U << i))
			used += (size_t)snprintf(buf + used, used < len ? len - used : 0,
						 "%s%s", used ? "," : "", field_names[i]);
}

static void write_changes(struct out *o, struct ctx *c)
{
	uint64_t counts[4] = { 0 }, cats[CAT__COUNT] = { 0 };

	if (c->nch > 1)
		qsort(c->ch, c->nch, sizeof(*c->ch), change_cmp);
	for (size_t i = 0; i < c->nch; i++)
		counts[c->ch[i].kind]++;
	for (uint64_t i = 0; i < c->ncblocks; i++)
		cats[c->cat[i]]++;
	out_arr(o, "changes", NULL);
	for (size_t i = 0; i < c->nch; i++) {
		const struct change *x = &c->ch[i];
		char fl[256];

		fields_text(x->fields, fl, sizeof(fl));
		if (o->json) {
			out_obj(o, NULL, NULL);
			out_str(o, "change", NULL, kind_names[x->kind]);
			out_str(o, "path", NULL, x->path);
			if (x->kind == CH_RENAMED)
				out_str(o, "from", NULL, x->from);
			out_str(o, "type", NULL, type_name(x->type));
			out_u64(o, "ino", NULL, x->ino);
			out_u64(o, "size", NULL, x->size);
			if (x->kind == CH_MODIFIED || x->kind == CH_RENAMED) {
				out_u64(o, "size_before", NULL, x->size_before);
				out_arr(o, "fields", NULL);
				for (size_t k = 0; k < sizeof(field_names) /
				     sizeof(field_names[0]); k++)
					if (x->fields & (1U << k))
						out_str(o, NULL, NULL, field_names[k]);
				out_arr_end(o);
				out_u64(o, "changed_blocks", NULL, x->changed_blocks);
			}
			out_obj_end(o);
			continue;
		}
		fprintf(o->f, "  %c ", kind_letters[x->kind]);
		if (x->kind == CH_RENAMED) {
			quote_write(o->f, x->from);
			fputs(x->type == EXT2_FT_DIR ? "/ -> " : " -> ", o->f);
		}
		quote_write(o->f, x->path);
		if (x->type == EXT2_FT_DIR)
			fputc('/', o->f);
		if (x->kind == CH_MODIFIED || (x->kind == CH_RENAMED && x->fields)) {
			fprintf(o->f, "  (%s", fl);
			if (x->fields & F_SIZE)
				fprintf(o->f, "; size %" PRIu64 " -> %" PRIu64,
					x->size_before, x->size);
			if (x->changed_blocks)
				fprintf(o->f, "; %" PRIu64 " block%s differ%s",
					x->changed_blocks,
					x->changed_blocks == 1 ? "" : "s",
					x->changed_blocks == 1 ? "s" : "");
			fputc(')', o->f);
		} else if (x->type != EXT2_FT_DIR &&
			   (x->kind == CH_ADDED || x->kind == CH_DELETED)) {
			fprintf(o->f, "  (%" PRIu64 " bytes)", x->size);
		}
		fputc('\n', o->f);
	}
	out_arr_end(o);
	out_obj(o, "summary", NULL);
	for (int k = 0; k < 4; k++)
		out_u64(o, kind_names[k], NULL, counts[k]);
	out_obj_end(o);
	out_obj(o, "cow_blocks", NULL);
	out_u64(o, "total", NULL, c->ncblocks);
	for (int k = 0; k < CAT__COUNT; k++)
		out_u64(o, cat_keys[k], NULL, cats[k]);
	out_obj_end(o);
	out_line(o, "%" PRIu64 " added, %" PRIu64 " deleted, %" PRIu64
		 " modified, %" PRIu64 " renamed", counts[CH_ADDED],
		 counts[CH_DELETED], counts[CH_MODIFIED], counts[CH_RENAMED]);
	out_line(o, "filesystem blocks in the COW: %" PRIu64 " (files %" PRIu64
		 ", directories %" PRIu64 ", metadata %" PRIu64 ", journal %"
		 PRIu64 ", free now %" PRIu64 ", unexplained %" PRIu64 ")",
		 c->ncblocks, cats[CAT_FILE], cats[CAT_DIR], cats[CAT_META],
		 cats[CAT_JOURNAL], cats[CAT_FREE], cats[CAT_NONE]);
}

int mode_files(struct out *o, struct img *im, const struct opts *op)
{
	struct probe_result pr;
	struct ctx c;
	long ret;
	int status = ST_OK;

	if (im->kind != IMG_COW) {
		file_error(o, "%s: not a COW file: --files compares a COW's merged "
			   "view with its backing file", quote_name(im->path));
		return ST_FAILED;
	}
	if (!img_view_ok(im)) {
		file_error(o, "%s: %s", quote_name(im->path), !im->hdr_ok ? im->hdr_err.msg :
			   !im->geo_ok ? im->geo_err.msg : !im->cow ? im->why :
			   "the backing file cannot be opened");
		return ST_FAILED;
	}
	ret = probe_find_ext(im, &pr);
	if (ret < 0) {
		file_error(o, "%s: reading the merged view: %s", quote_name(im->path),
			   strerror((int)-ret));
		return ST_FAILED;
	}
	if (!pr.has_ext) {
		file_error(o, "%s: the merged view holds no ext2/3/4 filesystem "
			   "(%s)", quote_name(im->path), pr.type[0] ? pr.type : "nothing found");
		return ST_FAILED;
	}
	if (fsd_files(&c, im, pr.ext_offset,
		      op->ignore_csum ? FSD_IGNORE_CSUM : 0) != FSD_OK) {
		file_error(o, "%s: %s", quote_name(im->path), c.stopmsg);
		fsd_ctx_free(&c);
		return ST_FAILED;
	}

	out_obj(o, "files", NULL);
	out_obj(o, "filesystem", NULL);
	out_str(o, "type", NULL, pr.type);
	out_u64(o, "offset", NULL, c.off);
	out_u64(o, "block_size", NULL, c.bs);
	out_bool(o, "same_filesystem", NULL, c.same_fs);
	out_str(o, "backing_status", NULL, backing_status(im));
	out_bool(o, "needs_recovery", NULL,
		 ext2fs_has_feature_journal_needs_recovery(c.m.fs->super));
	out_obj_end(o);
	if (!o->json) {
		fprintf(o->f, "%s: files the guest changed in the %s filesystem",
			im->path, pr.type);
		if (c.off)
			fprintf(o->f, " at offset %" PRIu64, c.off);
		fputs(" (A added, D deleted, M modified, R renamed)\n", o->f);
		if (!c.have_k)
			fputs("  the backing file holds no such filesystem: "
			      "everything is new\n", o->f);
		else if (!c.same_fs)
			fputs("  the guest made a new filesystem (another UUID): "
			      "everything is new\n", o->f);
		if (strcmp(backing_status(im), "ok"))
			fprintf(o->f, "  warning: the backing file does not match the "
				"header (%s): the comparison may not show what the "
				"guest did\n", backing_status(im));
		if (ext2fs_has_feature_journal_needs_recovery(c.m.fs->super))
			fputs("  warning: the journal needs recovery (the guest "
			      "did not unmount it): changes still in the journal "
			      "are not seen\n", o->f);
	}
	write_changes(o, &c);
	if (c.err) {
		out_str(o, "error", NULL, error_message(c.err));
		file_error(o, "%s: %s: %s", quote_name(im->path), c.errwhere,
			   error_message(c.err));
		status = ST_FAILED;
	}
	out_obj_end(o);
	fsd_ctx_free(&c);
	return status;
}
