/* SPDX-License-Identifier: GPL-2.0-or-later */
/* check.c - --check: is a COW file consistent, and does it fit its backing? */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "escape.h"
#include "imgstat.h"

enum { SEV_ERROR, SEV_WARNING };

struct finding {
	int sev;
	const char *code;
	char msg[2048];
};

struct findings {
	struct finding v[32];
	int n, errors, warnings;
};

static void add(struct findings *f, int sev, const char *code,
		const char *fmt, ...) CLI_PRINTF(4, 5);

static void add(struct findings *f, int sev, const char *code,
		const char *fmt, ...)
{
	struct finding *x;
	va_list ap;

	if (sev == SEV_ERROR)
		f->errors++;
	else
		f->warnings++;
	if (f->n == (int)(sizeof(f->v) / sizeof(f->v[0])))
		return;
	x = &f->v[f->n++];
	x->sev = sev;
	x->code = code;
	va_start(ap, fmt);
	vsnprintf(x->msg, sizeof(x->msg), fmt, ap);
	va_end(ap);
}

/* Set bits in [from, to) of the bitmap area, counting stored parts only. */
static uint64_t count_bits(const struct img *im, uint64_t from, uint64_t to,
			   uint64_t *first)
{
	uint64_t total = 0;

	*first = UINT64_MAX;
	for (size_t i = 0; i < im->nax; i++) {
		uint64_t s = im->ax[i].start * 8, e = (im->ax[i].start +
						      im->ax[i].len) * 8;
		uint64_t c;

		if (s < from)
			s = from;
		if (e > to)
			e = to;
		if (s >= e)
			continue;
		c = ubdk_bitmap_count(im->area, s, e);
		if (c && *first == UINT64_MAX)
			*first = ubdk_bitmap_find(im->area, s, e, true);
		total += c;
	}
	return total;
}

/*
 * Bytes of the data area that the file stores (allocated, not holes) for
 * sectors whose bit is clear, in whole filesystem blocks, leaving out the
 * block of the final byte that creating the COW wrote.
 */
static uint64_t unmapped_data(const struct img *im, uint64_t *first_off)
{
	const struct ubdk_geometry *g = &im->geo;
	uint64_t ss = im->hdr.sectorsize, blk = (uint64_t)im->st.st_blksize;
	uint64_t fsz = (uint64_t)im->st.st_size, total = 0;
	uint64_t data_end = g->data_offset + g->sectors * ss;
	uint64_t marker;
	uint64_t pos = g->data_offset;

	*first_off = UINT64_MAX;
	if (blk < 512)
		blk = 4096;
	marker = (g->data_offset + im->hdr.size - 1) / blk;
	if (data_end > fsz)
		data_end = fsz;
	while (pos < data_end) {
		off_t d = lseek(im->fd, (off_t)pos, SEEK_DATA), h;
		uint64_t s, e;

		if (d < 0 || (uint64_t)d >= data_end)
			break;
		h = lseek(im->fd, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h > data_end)
			h = (off_t)data_end;
		s = ((uint64_t)d - g->data_offset) / ss;
		e = ((uint64_t)h - g->data_offset + ss - 1) / ss;
		while (s < e) {
			uint64_t c = img_find(im, s, false), stop, a, b;

			if (c >= e)
				break;
			stop = img_find(im, c, true);
			if (stop > e)
				stop = e;
			/* Whole blocks inside the clear run and the extent. */
			a = g->data_offset + c * ss;
			b = g->data_offset + stop * ss;
			if (a < (uint64_t)d)
				a = (uint64_t)d;
			if (b > (uint64_t)h)
				b = (uint64_t)h;
			a = (a + blk - 1) / blk;
			b = b / blk;
			for (uint64_t x = a; x < b; x++) {
				if (x == marker)
					continue;
				if (*first_off == UINT64_MAX)
					*first_off = x * blk;
				total += blk;
			}
			s = stop;
		}
		pos = (uint64_t)h;
	}
	return total;
}

static void check_header(struct findings *f, const struct img *im)
{
	const struct ubdk_header *h = &im->hdr;

	if (h->layout == UBDK_LAYOUT_V3_BROKEN)
		add(f, SEV_WARNING, "broken-v3-layout",
		    "the header has the broken version 3 layout of old 64-bit "
		    "builds; current kernels read it as a packed v3 header and "
		    "misunderstand it ('uml_mkcow --rebase BACKING COW' rewrites "
		    "it as v3)");
	if (h->layout == UBDK_LAYOUT_V1 && h->v1_swapped)
		add(f, SEV_WARNING, "v1-foreign-byte-order",
		    "version 1 header written by a host of the other byte order: "
		    "a kernel here reads v1 in its own byte order and cannot "
		    "use it");
	if (h->backing[0] && h->backing[0] != '/')
		add(f, SEV_WARNING, "backing-path-relative",
		    "backing path '%s' is relative: it depends on the directory "
		    "the guest is started from", h->backing);
	if (h->sectorsize != 512)
		add(f, SEV_WARNING, "sectorsize-not-512",
		    "sector size %" PRIu32 ": the kernel does I/O and bit indexing "
		    "in 512-byte units, so it reads this file differently",
		    h->sectorsize);
	if (h->size == 0)
		add(f, SEV_ERROR, "empty-device", "the header's size is 0");
}

static void check_layout(struct findings *f, const struct img *im)
{
	const struct ubdk_geometry *g = &im->geo;
	uint64_t fsz = (uint64_t)im->st.st_size, ss = im->hdr.sectorsize;
	uint64_t bm_end = g->bitmap_offset + g->bitmap_len, first, n, last;
	uint64_t full = g->data_offset + g->sectors * ss;

	if (!im->area) {
		add(f, SEV_ERROR, "bitmap-unreadable", "cannot read the bitmap: %s",
		    strerror(im->bitmap_errno));
		return;
	}
	if (fsz < bm_end)
		add(f, SEV_ERROR, "short-bitmap",
		    "the file is %" PRIu64 " bytes but its bitmap ends at %" PRIu64
		    ": %" PRIu64 " bytes of bitmap are missing (sectors from %"
		    PRIu64 " on have no bit)", fsz, bm_end, bm_end - fsz,
		    im->bits);
	if (g->covered < g->sectors)
		add(f, SEV_WARNING, "uncovered-sectors",
		    "%" PRIu64 " sector%s at the end (from %" PRIu64 ") have no bit "
		    "(the v1/v2 bitmap rounding bug): they always read from the "
		    "backing file, and a guest writing them corrupts the first "
		    "COW sectors", g->sectors - g->covered,
		    g->sectors - g->covered == 1 ? "" : "s", g->covered);
	/* Bits of sectors the device does not have, up to data_offset. */
	n = count_bits(im, g->sectors, im->area_present * 8, &first);
	if (n)
		add(f, SEV_ERROR, "bits-past-end",
		    "%" PRIu64 " bit%s set past the end of the device (%" PRIu64
		    " sectors), the first for sector %" PRIu64 " (byte %" PRIu64
		    " of the file)", n, n == 1 ? "" : "s", g->sectors, first,
		    g->bitmap_offset + first / 8);
	/* Every sector marked present must have its data in the file. */
	last = img_last_set(im);
	n = img_short_data(im, &first);
	if (n) {
		uint64_t need = g->data_offset + (last + 1) * ss;

		if (need > g->data_offset + im->hdr.size)
			need = g->data_offset + im->hdr.size;
		add(f, SEV_ERROR, "short-data",
		    "%" PRIu64 " sector%s marked as in the COW lie%s past the end "
		    "of the file (%" PRIu64 " bytes; the first is sector %" PRIu64
		    ", the data of sector %" PRIu64 " ends at %" PRIu64 ")", n,
		    n == 1 ? "" : "s", n == 1 ? "s" : "", fsz, first, last, need);
	}
	if (fsz >= bm_end && fsz < g->data_offset + im->hdr.size &&
	    (last == UINT64_MAX || fsz >= g->data_offset + (last + 1) * ss))
		add(f, SEV_WARNING, "short-file",
		    "the file is %" PRIu64 " bytes, shorter than the %" PRIu64
		    " the kernel gives a COW for this device (truncated?); no "
		    "sector it holds is missing", fsz,
		    g->data_offset + im->hdr.size);
	if (fsz > full && fsz > g->data_offset + im->hdr.size)
		add(f, SEV_WARNING, "trailing-bytes",
		    "%" PRIu64 " bytes after the data area (which ends at %" PRIu64
		    ")", fsz - full, full);
	n = unmapped_data(im, &first);
	if (n)
		add(f, SEV_WARNING, "unmapped-data",
		    "%" PRIu64 " bytes of the data area are allocated for sectors "
		    "whose bit is clear, from offset %" PRIu64 " (a write "
		    "interrupted before its bitmap update, or a copy that did "
		    "not keep holes); they are never read", n, first);
}

static void check_backing(struct findings *f, const struct img *im)
{
	const struct ubdk_backing_check *c = &im->chk;
	uint8_t magic[4];

	char name[ESC_NAME_BUF], cmd[REBASE_COMMAND_SIZE];

	esc_name(im->backing, name);
	if (im->bfd < 0) {
		if (im->berrno == ENOENT)
			add(f, SEV_ERROR, "backing-missing",
			    "backing file %s does not exist (if it moved: %s)",
			    name, rebase_command(NULL, im->path, cmd, sizeof(cmd)));
		else if (im->backing_notreg)
			add(f, SEV_ERROR, "backing-not-regular",
			    "backing file %s: not a regular file or block device",
			    name);
		else
			add(f, SEV_ERROR, "backing-unreadable",
			    "backing file %s: %s", name, backing_error(im));
		return;
	}
	if (!S_ISREG(im->bst.st_mode) && !S_ISBLK(im->bst.st_mode)) {
		add(f, SEV_ERROR, "backing-not-regular",
		    "backing file %s: not a regular file or block device", name);
		return;
	}
	if (im->bst.st_dev == im->st.st_dev && im->bst.st_ino == im->st.st_ino) {
		add(f, SEV_ERROR, "backing-is-self",
		    "the backing file %s is this COW file itself", name);
		return;
	}
	if (im->chk_done && !c->size_ok)
		add(f, SEV_ERROR, "size-mismatch",
		    "backing file %s is %" PRIu64 " bytes but the header says %"
		    PRIu64 " (%+" PRId64 "): not the file this COW was made on, "
		    "or it was resized", name, c->actual_size,
		    c->header_size, c->size_delta);
	if (im->chk_done && !c->mtime_ok)
		add(f, SEV_ERROR, "mtime-mismatch",
		    "backing file %s has mtime %" PRIu32 " but the header says %"
		    PRIu32 " (%+" PRId64 " s): the kernel refuses the pair; if "
		    "its content is unchanged: %s", name, c->actual_mtime,
		    c->header_mtime, c->mtime_delta,
		    rebase_command(im->backing, im->path, cmd, sizeof(cmd)));
	if (pread(im->bfd, magic, 4, 0) == 4 &&
	    ((uint32_t)magic[0] << 24 | (uint32_t)magic[1] << 16 |
	     (uint32_t)magic[2] << 8 | magic[3]) == UBDK_COW_MAGIC)
		add(f, SEV_WARNING, "backing-is-cow",
		    "backing file %s is itself a COW file: the kernel reads it "
		    "as a raw disk, header and bitmap included", name);
}

int mode_check(struct out *o, struct img *im, const struct opts *op)
{
	struct findings *f;
	const char *status;
	int ret;
	long pid;

	if (im->kind != IMG_COW) {
		out_obj(o, "check", NULL);
		out_str(o, "status", NULL, "could-not-check");
		out_obj_end(o);
		file_error(o, "%s: not a COW file (no COW magic): nothing to check",
			   im->path);
		return ST_FAILED;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		file_error(o, "%s: %s", im->path, strerror(ENOMEM));
		return ST_FAILED;
	}
	if (!im->hdr_ok) {
		add(f, SEV_ERROR, ubdk_errcode_name(im->hdr_err.code), "%s",
		    im->hdr_err.msg);
	} else {
		check_header(f, im);
		if (!im->geo_ok)
			add(f, SEV_ERROR, ubdk_errcode_name(im->geo_err.code),
			    "%s", im->geo_err.msg);
		else
			check_layout(f, im);
		check_backing(f, im);
	}
	pid = cli_lock_holder(im->fd);
	if (pid)
		add(f, SEV_WARNING, "in-use",
		    "process %ld holds a lock on the file (a running guest?): "
		    "what is read may change while reading", pid);
	ret = f->errors || (op->strict && f->warnings) ? ST_PROBLEMS : ST_OK;
	status = ret ? "problems" : "clean";
	out_obj(o, "check", NULL);
	out_str(o, "status", NULL, status);
	out_u64(o, "errors", NULL, (uint64_t)f->errors);
	out_u64(o, "warnings", NULL, (uint64_t)f->warnings);
	out_arr(o, "findings", NULL);
	for (int i = 0; i < f->n; i++) {
		out_obj(o, NULL, NULL);
		out_str(o, "severity", NULL, f->v[i].sev == SEV_ERROR ? "error" :
			"warning");
		out_str(o, "code", NULL, f->v[i].code);
		out_str(o, "message", NULL, f->v[i].msg);
		out_obj_end(o);
	}
	out_arr_end(o);
	out_obj_end(o);
	if (!o->json) {
		if (!f->errors && !f->warnings)
			printf("%s: check: clean\n", im->path);
		else
			printf("%s: check: %s: %d error%s, %d warning%s\n", im->path,
			       status, f->errors, f->errors == 1 ? "" : "s",
			       f->warnings, f->warnings == 1 ? "" : "s");
		for (int i = 0; i < f->n; i++)
			printf("  %s %s: %s\n", f->v[i].sev == SEV_ERROR ?
			       "error" : "warning", f->v[i].code, f->v[i].msg);
	}
	if (ret)
		cli_error("%s: check found %d error%s and %d warning%s", im->path,
			  f->errors, f->errors == 1 ? "" : "s", f->warnings,
			  f->warnings == 1 ? "" : "s");
	free(f);
	return ret;
}
