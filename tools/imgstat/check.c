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
#include "ubdk_static.h"

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

/*
 * Bytes of the data area that the file stores (allocated, not holes) for
 * sectors whose bit is clear, in whole filesystem blocks, leaving out the
 * block of the final byte that creating the COW wrote.
 */
static int unmapped_data(struct img *im, uint64_t *total, uint64_t *first_off)
{
	uint64_t blk = (uint64_t)im->st.st_blksize, pos = 0, off, len;
	/* The byte a new COW is given its size with. */
	uint64_t marker = (im->geo.file_size - 1) / (blk < 512 ? 4096 : blk);
	int ret;

	*total = 0;
	*first_off = UINT64_MAX;
	if (blk < 512)
		blk = 4096;
	while ((ret = ubdk_cow_next_stray(im->cow, &pos, &off, &len, NULL)) > 0) {
		/* Whole blocks inside the stray range. */
		uint64_t a = (off + blk - 1) / blk, b = (off + len) / blk;

		if (a < b && a == marker)
			a++;
		if (a >= b)
			continue;
		if (*first_off == UINT64_MAX)
			*first_off = a * blk;
		*total += (b - a - (marker > a && marker < b)) * blk;
	}
	/* A walk that fails ends here: this is a warning, not worth -errno. */
	return ret == -ENOMEM ? ret : 0;
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

/* Where the data of sector n ends in the file (a whole sector). */
static uint64_t data_end(const struct img *im, uint64_t n)
{
	uint64_t ss = im->hdr.sectorsize, data, bits, bits_len;

	ubdk_geometry_locate(&im->hdr, &im->geo, n * ss, 1, &data, &bits, &bits_len);
	return data + ss;
}

static void check_layout(struct findings *f, struct img *im)
{
	const struct ubdk_geometry *g = &im->geo;
	const struct ubdk_scan *sc = &im->scan;
	const struct ubdk_scan_bits *past = &sc->past, *gone = &sc->short_data;
	uint64_t fsz = sc->file_size, bm_end = sc->bitmap_end;
	uint64_t full = data_end(im, g->sectors - 1), first, n;
	int ret;

	if (!im->cow && !im->short_bitmap) {
		add(f, SEV_ERROR, "bitmap-unreadable", "%s", im->why);
		return;
	}
	if (!im->scan_ok) {
		add(f, SEV_ERROR, "bitmap-unreadable", "cannot read the bitmap: %s",
		    strerror(im->scan_err.errnum));
		return;
	}
	if (sc->short_bitmap)
		add(f, SEV_ERROR, "short-bitmap",
		    "the file is %" PRIu64 " bytes but its bitmap ends at %" PRIu64
		    ": %" PRIu64 " bytes of bitmap are missing (sectors from %"
		    PRIu64 " on have no bit)", fsz, bm_end, bm_end - fsz,
		    sc->bits);
	if (g->covered < g->sectors)
		add(f, SEV_WARNING, "uncovered-sectors",
		    "%" PRIu64 " sector%s at the end (from %" PRIu64 ") have no bit "
		    "(the v1/v2 bitmap rounding bug): they always read from the "
		    "backing file, and a guest writing them corrupts the first "
		    "COW sectors", g->sectors - g->covered,
		    g->sectors - g->covered == 1 ? "" : "s", g->covered);
	if (past->count)
		add(f, SEV_ERROR, "bits-past-end",
		    "%" PRIu64 " bit%s set past the end of the device (%" PRIu64
		    " sectors), the first for sector %" PRIu64 " (byte %" PRIu64
		    " of the file)", past->count, past->count == 1 ? "" : "s",
		    g->sectors, past->first, sc->past_byte);
	/*
	 * Every sector marked present must have its data in the file; in a
	 * file that ends inside its bitmap none has.
	 */
	if (gone->count) {
		uint64_t need = data_end(im, gone->last);

		if (need > g->file_size)
			need = g->file_size;
		add(f, SEV_ERROR, "short-data",
		    "%" PRIu64 " sector%s marked as in the COW lie%s past the end "
		    "of the file (%" PRIu64 " bytes; the first is sector %" PRIu64
		    ", the data of sector %" PRIu64 " ends at %" PRIu64 ")",
		    gone->count, gone->count == 1 ? "" : "s",
		    gone->count == 1 ? "s" : "", fsz, gone->first, gone->last, need);
	}
	if (fsz >= bm_end && fsz < g->file_size && !gone->count)
		add(f, SEV_WARNING, "short-file",
		    "the file is %" PRIu64 " bytes, shorter than the %" PRIu64
		    " the kernel gives a COW for this device (truncated?); no "
		    "sector it holds is missing", fsz, g->file_size);
	if (fsz > full && fsz > g->file_size)
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
