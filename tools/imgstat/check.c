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

#include "hostlock.h"
#include "quote.h"
#include "extent.h"
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

/* Set bits found by scan_bits: how many, the first and the last. */
struct bits {
	uint64_t n, first, last;
};

/*
 * Set bits [from, to) of the bitmap area as the file stores them, read a
 * piece at a time through its data extents.  The library has no view of
 * these: they are bits of sectors the device does not have, or a bitmap
 * the file ends inside (which the library refuses to open).
 */
static int scan_bits(const struct img *im, uint64_t from, uint64_t to,
		     struct bits *b)
{
	static uint8_t buf[65536];
	uint64_t base = im->geo.bitmap_offset, off, len;
	struct extent_iter it;
	int ret;

	b->n = 0;
	b->first = b->last = UINT64_MAX;
	if (from >= to)
		return 0;
	extent_iter_init(&it, im->fd, base + from / 8, base + (to + 7) / 8);
	while ((ret = extent_next(&it, &off, &len)) > 0) {
		for (uint64_t done = 0; done < len;) {
			size_t n = len - done < sizeof(buf) ? (size_t)(len - done) :
				   sizeof(buf);
			uint64_t bit0 = (off + done - base) * 8, s, e, p;
			ssize_t got = img_read_fd(im->fd, buf, n, off + done);

			if (got < 0)
				return (int)got;
			s = from > bit0 ? from - bit0 : 0;
			e = to - bit0 < (uint64_t)n * 8 ? to - bit0 : (uint64_t)n * 8;
			done += n;
			if (s >= e || !ubdk_bitmap_count(buf, s, e))
				continue;
			b->n += ubdk_bitmap_count(buf, s, e);
			p = ubdk_bitmap_find(buf, s, e, true);
			if (b->first == UINT64_MAX)
				b->first = bit0 + p;
			/* No backward search: walk the runs to the last. */
			while (p < e) {
				uint64_t q = ubdk_bitmap_find(buf, p, e, false);

				b->last = bit0 + q - 1;
				p = ubdk_bitmap_find(buf, q, e, true);
			}
		}
	}
	return ret;
}

/*
 * Bytes of the data area that the file stores (allocated, not holes) for
 * sectors whose bit is clear, in whole filesystem blocks, leaving out the
 * block of the final byte that creating the COW wrote.
 */
static int unmapped_data(struct img *im, uint64_t *total, uint64_t *first_off)
{
	const struct ubdk_geometry *g = &im->geo;
	uint64_t ss = im->hdr.sectorsize, blk = (uint64_t)im->st.st_blksize;
	uint64_t fsz = (uint64_t)im->st.st_size;
	uint64_t data_end = g->data_offset + g->sectors * ss;
	uint64_t marker, d, len;
	struct extent_iter it;
	int ret;

	*total = 0;
	*first_off = UINT64_MAX;
	if (blk < 512)
		blk = 4096;
	marker = (g->data_offset + im->hdr.size - 1) / blk;
	if (data_end > fsz)
		data_end = fsz;
	extent_iter_init(&it, im->fd, g->data_offset, data_end);
	while ((ret = extent_next(&it, &d, &len)) > 0) {
		uint64_t h = d + len, pos = (d - g->data_offset) / ss;
		uint64_t e = (h - g->data_offset + ss - 1) / ss;
		struct ubdk_run r;

		while ((ret = ubdk_cow_next_run(im->cow, &pos, e, &r, NULL)) > 0) {
			/* Whole blocks inside the clear run and the extent. */
			uint64_t a = g->data_offset + r.start * ss;
			uint64_t b = g->data_offset + (r.start + r.count) * ss;

			if (r.in_cow)
				continue;
			a = ((a < d ? d : a) + blk - 1) / blk;
			b = (b > h ? h : b) / blk;
			if (a < b && a == marker)
				a++;
			if (a >= b)
				continue;
			if (*first_off == UINT64_MAX)
				*first_off = a * blk;
			*total += (b - a - (marker > a && marker < b)) * blk;
		}
		if (ret < 0)
			return ret;
	}
	/* lseek failing ends the walk: this is a warning, not worth -errno. */
	return 0;
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

static void check_layout(struct findings *f, struct img *im)
{
	const struct ubdk_geometry *g = &im->geo;
	uint64_t fsz = (uint64_t)im->st.st_size, ss = im->hdr.sectorsize;
	uint64_t bm_end = g->bitmap_offset + g->bitmap_len, first, n;
	uint64_t full = g->data_offset + g->sectors * ss;
	struct bits past, gone;
	int ret;

	if (!im->cow && !im->short_bitmap) {
		add(f, SEV_ERROR, "bitmap-unreadable", "%s", im->why);
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
	ret = scan_bits(im, g->sectors, im->area_present * 8, &past);
	if (ret == 0 && past.n)
		add(f, SEV_ERROR, "bits-past-end",
		    "%" PRIu64 " bit%s set past the end of the device (%" PRIu64
		    " sectors), the first for sector %" PRIu64 " (byte %" PRIu64
		    " of the file)", past.n, past.n == 1 ? "" : "s", g->sectors,
		    past.first, g->bitmap_offset + past.first / 8);
	/*
	 * Every sector marked present must have its data in the file; in a
	 * file that ends inside its bitmap none has.
	 */
	if (ret == 0)
		ret = im->cow ? img_short_data(im, &gone.n, &gone.first,
					       &gone.last) :
		      scan_bits(im, 0, im->bits, &gone);
	if (ret < 0) {
		add(f, SEV_ERROR, "bitmap-unreadable",
		    "cannot read the bitmap: %s", strerror(-ret));
		return;
	}
	if (gone.n) {
		uint64_t need = g->data_offset + (gone.last + 1) * ss;

		if (need > g->data_offset + im->hdr.size)
			need = g->data_offset + im->hdr.size;
		add(f, SEV_ERROR, "short-data",
		    "%" PRIu64 " sector%s marked as in the COW lie%s past the end "
		    "of the file (%" PRIu64 " bytes; the first is sector %" PRIu64
		    ", the data of sector %" PRIu64 " ends at %" PRIu64 ")", gone.n,
		    gone.n == 1 ? "" : "s", gone.n == 1 ? "s" : "", fsz, gone.first,
		    gone.last, need);
	}
	if (fsz >= bm_end && fsz < g->data_offset + im->hdr.size && !gone.n)
		add(f, SEV_WARNING, "short-file",
		    "the file is %" PRIu64 " bytes, shorter than the %" PRIu64
		    " the kernel gives a COW for this device (truncated?); no "
		    "sector it holds is missing", fsz,
		    g->data_offset + im->hdr.size);
	if (fsz > full && fsz > g->data_offset + im->hdr.size)
		add(f, SEV_WARNING, "trailing-bytes",
		    "%" PRIu64 " bytes after the data area (which ends at %" PRIu64
		    ")", fsz - full, full);
	/* A file cut inside its bitmap has no data area at all. */
	if (!im->cow)
		return;
	ret = unmapped_data(im, &n, &first);
	if (ret < 0)
		add(f, SEV_ERROR, "bitmap-unreadable",
		    "cannot read the bitmap: %s", strerror(-ret));
	else if (n)
		add(f, SEV_WARNING, "unmapped-data",
		    "%" PRIu64 " bytes of the data area are allocated for sectors "
		    "whose bit is clear, from offset %" PRIu64 " (a write "
		    "interrupted before its bitmap update, or a copy that did "
		    "not keep holes); they are never read", n, first);
}

static void check_backing(struct findings *f, const struct img *im)
{
	const struct ubdk_backing_check *c = &im->chk;
	char name[QUOTE_NAME_MAX + 1], cmd[REBASE_COMMAND_SIZE];

	quote_msg(name, sizeof(name), im->backing);
	if (!im->backing_ok) {
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
	if (im->backing_is_cow)
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
			   quote_name(im->path));
		return ST_FAILED;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		file_error(o, "%s: %s", quote_name(im->path), strerror(ENOMEM));
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
	pid = hostlock_holder(im->fd, true);
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
		cli_error("%s: check found %d error%s and %d warning%s", quote_name(im->path),
			  f->errors, f->errors == 1 ? "" : "s", f->warnings,
			  f->warnings == 1 ? "" : "s");
	free(f);
	return ret;
}
