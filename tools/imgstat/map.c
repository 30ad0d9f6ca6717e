/* SPDX-License-Identifier: GPL-2.0-or-later */
/* map.c - the runs of sectors a COW holds, optionally merged into extents. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "imgstat.h"

static void emit(struct out *o, const struct img *im, uint64_t off,
		 uint64_t len, uint64_t *n, uint64_t *total)
{
	uint64_t ss = im->hdr.sectorsize;

	(*n)++;
	*total += len;
	if (o->json)
		out_pair(o, off, len);
	else if (off % ss == 0 && len % ss == 0) {
		fprintf(o->f, "  %16" PRIu64 " %14" PRIu64 " %14" PRIu64
			" %12" PRIu64 "\n", off, len, off / ss, len / ss);
	} else {
		fprintf(o->f, "  %16" PRIu64 " %14" PRIu64 "\n", off, len);
	}
}

int mode_map(struct out *o, struct img *im, const struct opts *op)
{
	uint64_t ss, align, pos = 0, runs = 0, n = 0, total = 0;
	uint64_t cur_s = 0, cur_e = 0;
	bool have = false;
	struct extent r;
	int ret;

	if (im->kind != IMG_COW) {
		file_error(o, "%s: not a COW file: --map lists the sectors a COW "
			   "holds", quote_name(im->path));
		return ST_FAILED;
	}
	if (!im->cow) {
		file_error(o, "%s: %s", quote_name(im->path), !im->hdr_ok ? im->hdr_err.msg :
			   !im->geo_ok ? im->geo_err.msg : im->why);
		return ST_FAILED;
	}
	ss = im->hdr.sectorsize;
	align = op->align ? op->align : ss;
	out_obj(o, "map", NULL);
	out_u64(o, "sector_size", NULL, ss);
	out_u64(o, "align", NULL, align);
	out_u64(o, "gap", NULL, op->gap);
	if (!o->json) {
		fprintf(o->f, "%s: map of the sectors in the COW (bytes of the "
			"device", im->path);
		if (op->align || op->gap)
			fprintf(o->f, "; runs rounded out to %" PRIu64 " bytes, "
				"merged when less than %" PRIu64 " bytes apart",
				align, op->gap);
		fprintf(o->f, ")\n  %16s %14s %14s %12s\n", "offset", "length",
			"sector", "sectors");
	}
	out_arr(o, "extents", NULL);
	while ((ret = img_next_cow_run(im, &pos, &r)) > 0) {
		uint64_t s = r.start * ss, e = (r.start + r.len) * ss;

		runs++;
		if (e > im->hdr.size)
			e = im->hdr.size;
		s -= s % align;
		if (e % align)
			e += align - e % align;
		if (e > im->hdr.size)
			e = im->hdr.size;
		/* A gap near 2^64 merges everything: no wrap-around. */
		if (have && (op->gap >= UINT64_MAX - cur_e ||
			     s <= cur_e + op->gap)) {
			if (e > cur_e)
				cur_e = e;
			continue;
		}
		if (have)
			emit(o, im, cur_s, cur_e - cur_s, &n, &total);
		cur_s = s;
		cur_e = e;
		have = true;
	}
	if (have)
		emit(o, im, cur_s, cur_e - cur_s, &n, &total);
	out_arr_end(o);
	if (ret < 0) {
		out_obj_end(o);
		file_error(o, "%s: cannot read the bitmap: %s", quote_name(im->path),
			   strerror(-ret));
		return ST_FAILED;
	}
	out_u64(o, "runs", NULL, runs);
	out_u64(o, "count", NULL, n);
	out_u64(o, "bytes", NULL, total);
	out_obj_end(o);
	if (!o->json) {
		char hb[32];

		fprintf(o->f, "  %" PRIu64 " extent%s, %" PRIu64 " bytes (%s)",
			n, n == 1 ? "" : "s", total, human_size(total, hb, sizeof(hb)));
		if (n != runs)
			fprintf(o->f, ", from %" PRIu64 " runs", runs);
		fputc('\n', o->f);
	}
	return ST_OK;
}
