/* SPDX-License-Identifier: GPL-2.0-or-later */
/* probe.c - libblkid on an image or a pair's merged view; ext details. */
#define _GNU_SOURCE
#include "probe.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <blkid/blkid.h>
#include <et/com_err.h>

#include "extfs.h"
#include "grow.h"
#include "pairio.h"

#define GRANULE (1ULL << 20)
#define MAX_PARTS 128
#define MAX_AMB 8

struct sig {
	int rc;                    /* blkid_do_safeprobe: 0 found, 1 none, -2 ambivalent */
	char type[32], usage[32], version[64], uuid[64], label[256], sec_type[32];
	char amb[MAX_AMB][32];
	int namb;
};

struct part {
	int number;
	uint64_t start, size;      /* bytes */
	char type[64], uuid[64], name[128];
	unsigned long long flags;
	const char *kind;
	struct sig sig;
};

struct scan {
	struct sig whole;
	bool has_pt;
	char pttype[32], ptid[64];
	struct part parts[MAX_PARTS];
	int nparts;
	bool windowed;
};

/* The descriptor libblkid reads. */
struct dev {
	struct img *im;
	int fd;
	bool windowed;
	uint64_t *granules;        /* sorted indices of filled granules */
	size_t ngran, cap;
};

static void copy_value(blkid_probe pr, const char *tag, char *dst, size_t len)
{
	const char *v = NULL;

	dst[0] = 0;
	if (blkid_probe_lookup_value(pr, tag, &v, NULL) == 0 && v)
		snprintf(dst, len, "%s", v);
}

static void read_sig(blkid_probe pr, int rc, struct sig *s)
{
	memset(s, 0, sizeof(*s));
	s->rc = rc;
	if (rc != 0)
		return;
	copy_value(pr, "TYPE", s->type, sizeof(s->type));
	copy_value(pr, "USAGE", s->usage, sizeof(s->usage));
	copy_value(pr, "VERSION", s->version, sizeof(s->version));
	copy_value(pr, "UUID", s->uuid, sizeof(s->uuid));
	copy_value(pr, "LABEL", s->label, sizeof(s->label));
	copy_value(pr, "SEC_TYPE", s->sec_type, sizeof(s->sec_type));
}

static blkid_probe new_probe(int fd, uint64_t off, uint64_t size, bool parts)
{
	blkid_probe pr = blkid_new_probe();

	if (!pr)
		return NULL;
	if (blkid_probe_set_device(pr, fd, (blkid_loff_t)off,
				   (blkid_loff_t)size) < 0) {
		blkid_free_probe(pr);
		return NULL;
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_LABEL |
					  BLKID_SUBLKS_UUID | BLKID_SUBLKS_TYPE |
					  BLKID_SUBLKS_SECTYPE |
					  BLKID_SUBLKS_USAGE |
					  BLKID_SUBLKS_VERSION);
	blkid_probe_enable_partitions(pr, parts);
	if (parts)
		blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
	return pr;
}

/* The types behind an ambivalent result, one probe at a time. */
static void list_ambivalent(int fd, uint64_t off, uint64_t size, struct sig *s)
{
	blkid_probe pr = new_probe(fd, off, size, false);

	if (!pr)
		return;
	while (s->namb < MAX_AMB && blkid_do_probe(pr) == 0) {
		const char *v = NULL;

		if (blkid_probe_lookup_value(pr, "TYPE", &v, NULL) == 0 && v)
			snprintf(s->amb[s->namb++], sizeof(s->amb[0]), "%s", v);
	}
	blkid_free_probe(pr);
}

static int fill_granule(struct dev *d, uint64_t g)
{
	static uint8_t buf[GRANULE];
	uint64_t off = g * GRANULE, len = GRANULE;
	size_t lo = 0, hi = d->ngran;
	uint64_t *n;
	int ret;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (d->granules[mid] < g)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < d->ngran && d->granules[lo] == g)
		return 0;
	if (off + len > d->im->size)
		len = d->im->size - off;
	ret = img_pread(d->im, buf, (size_t)len, off);
	if (ret < 0)
		return ret;
	if (pwrite(d->fd, buf, (size_t)len, (off_t)off) != (ssize_t)len)
		return -errno;
	n = grow_array(d->granules, &d->cap, d->ngran, sizeof(*n), 32);
	if (!n)
		return -ENOMEM;
	d->granules = n;
	memmove(d->granules + lo + 1, d->granules + lo,
		(d->ngran - lo) * sizeof(*d->granules));
	d->granules[lo] = g;
	d->ngran++;
	return 1;
}

/* Copy [off, off + len) of the view into the probe image: 1 if new. */
static int fill(struct dev *d, uint64_t off, uint64_t len)
{
	uint64_t end;
	int any = 0;

	if (!d->windowed || off >= d->im->size || len == 0)
		return 0;
	end = len > d->im->size - off ? d->im->size : off + len;
	for (uint64_t g = off / GRANULE; g * GRANULE < end; g++) {
		int r = fill_granule(d, g);

		if (r < 0)
			return r;
		any |= r;
	}
	return any;
}

static int dev_open(struct dev *d, struct img *im)
{
	uint64_t w = PROBE_WINDOW;
	int r;

	memset(d, 0, sizeof(*d));
	d->im = im;
	if (im->kind == IMG_RAW) {
		d->fd = im->fd;
		return 0;
	}
	d->windowed = true;
	d->fd = memfd_create("uml_imgstat-view", MFD_CLOEXEC);
	if (d->fd < 0)
		return -errno;
	if (ftruncate(d->fd, (off_t)im->size) < 0)
		return -errno;
	r = fill(d, 0, w);
	if (r >= 0)
		r = fill(d, im->size > w ? im->size - w : 0, w);
	return r < 0 ? r : 0;
}

static void dev_close(struct dev *d)
{
	if (d->windowed && d->fd >= 0)
		close(d->fd);
	free(d->granules);
}

static const char *part_kind(blkid_partition par)
{
	if (blkid_partition_is_extended(par))
		return "extended";
	if (blkid_partition_is_logical(par))
		return "logical";
	return "primary";
}

/* One pass of probing; returns the probe (caller frees) or NULL. */
static blkid_probe probe_whole(struct dev *d, struct scan *s)
{
	blkid_probe pr = new_probe(d->fd, 0, d->im->size, true);
	blkid_partlist ls;
	int rc;

	if (!pr)
		return NULL;
	rc = blkid_do_safeprobe(pr);
	read_sig(pr, rc, &s->whole);
	s->nparts = 0;
	s->has_pt = false;
	ls = blkid_probe_get_partitions(pr);
	if (ls) {
		blkid_parttable tab = blkid_partlist_get_table(ls);
		int n = blkid_partlist_numof_partitions(ls);

		if (tab) {
			const char *v = blkid_parttable_get_type(tab);
			const char *id = blkid_parttable_get_id(tab);

			s->has_pt = true;
			snprintf(s->pttype, sizeof(s->pttype), "%s", v ? v : "");
			snprintf(s->ptid, sizeof(s->ptid), "%s", id ? id : "");
		}
		for (int i = 0; i < n && s->nparts < MAX_PARTS; i++) {
			blkid_partition par = blkid_partlist_get_partition(ls, i);
			struct part *p = &s->parts[s->nparts++];
			const char *ts = blkid_partition_get_type_string(par);
			const char *u = blkid_partition_get_uuid(par);
			const char *nm = blkid_partition_get_name(par);

			memset(p, 0, sizeof(*p));
			p->number = blkid_partition_get_partno(par);
			p->start = (uint64_t)blkid_partition_get_start(par) * 512;
			p->size = (uint64_t)blkid_partition_get_size(par) * 512;
			if (ts)
				snprintf(p->type, sizeof(p->type), "%s", ts);
			else
				snprintf(p->type, sizeof(p->type), "0x%x",
					 blkid_partition_get_type(par));
			snprintf(p->uuid, sizeof(p->uuid), "%s", u ? u : "");
			snprintf(p->name, sizeof(p->name), "%s", nm ? nm : "");
			p->flags = blkid_partition_get_flags(par);
			p->kind = part_kind(par);
		}
	}
	return pr;
}

static int scan(struct img *im, struct scan *s)
{
	struct dev d;
	blkid_probe pr = NULL;
	int ret;

	memset(s, 0, sizeof(*s));
	ret = dev_open(&d, im);
	if (ret < 0) {
		dev_close(&d);
		return ret;
	}
	s->windowed = d.windowed;
	/* Until the partitions found no longer add windows. */
	for (int pass = 0; pass < MAX_PARTS + 2; pass++) {
		int added = 0;

		if (pr)
			blkid_free_probe(pr);
		pr = probe_whole(&d, s);
		if (!pr) {
			ret = -ENOMEM;
			break;
		}
		if (!d.windowed)
			break;
		for (int i = 0; i < s->nparts && added >= 0; i++) {
			const struct part *p = &s->parts[i];
			uint64_t end = p->start + p->size;
			int r = fill(&d, p->start, PROBE_WINDOW);

			if (r >= 0)
				r |= fill(&d, end > PROBE_WINDOW ? end - PROBE_WINDOW : 0,
					  PROBE_WINDOW);
			if (r >= 0)
				r |= fill(&d, end, PROBE_WINDOW);
			added = r < 0 ? r : (added | r);
		}
		if (added < 0) {
			ret = added;
			break;
		}
		if (!added)
			break;
	}
	if (pr) {
		if (s->whole.rc == -2)
			list_ambivalent(d.fd, 0, im->size, &s->whole);
		blkid_free_probe(pr);
	}
	for (int i = 0; ret == 0 && i < s->nparts; i++) {
		struct part *p = &s->parts[i];
		blkid_probe pp;

		if (!strcmp(p->kind, "extended") || p->size == 0 ||
		    p->start >= im->size)
			continue;
		if (p->start + p->size > im->size)
			p->size = im->size - p->start;
		pp = new_probe(d.fd, p->start, p->size, false);
		if (!pp)
			continue;
		read_sig(pp, blkid_do_safeprobe(pp), &p->sig);
		blkid_free_probe(pp);
		if (p->sig.rc == -2)
			list_ambivalent(d.fd, p->start, p->size, &p->sig);
	}
	dev_close(&d);
	return ret;
}

static void put_opt(struct out *o, const char *key, const char *v)
{
	if (v[0])
		out_str(o, key, NULL, v);
	else
		out_null(o, key, NULL);
}

/* The "signature" object (or null) and "ambivalent" array, text too. */
static void write_sig(struct out *o, const struct sig *s)
{
	if (s->rc == 0 && s->type[0]) {
		out_obj(o, "signature", NULL);
		put_opt(o, "type", s->type);
		put_opt(o, "usage", s->usage);
		put_opt(o, "version", s->version);
		put_opt(o, "uuid", s->uuid);
		put_opt(o, "label", s->label);
		put_opt(o, "sec_type", s->sec_type);
		out_obj_end(o);
		out_line(o, "signature: %s%s%s%s%s%s", s->type,
			 s->usage[0] ? " (" : "", s->usage,
			 s->usage[0] ? ")" : "", s->version[0] ? ", version " : "",
			 s->version);
		if (s->uuid[0])
			out_line(o, "uuid: %s", s->uuid);
		if (s->label[0])
			out_line(o, "label: %s", s->label);
	} else {
		out_null(o, "signature", NULL);
	}
	out_arr(o, "ambivalent", NULL);
	for (int i = 0; i < s->namb; i++)
		out_str(o, NULL, NULL, s->amb[i]);
	out_arr_end(o);
	if (s->rc == -2) {
		char list[MAX_AMB * 34] = "";

		for (int i = 0; i < s->namb; i++) {
			if (i)
				strcat(list, ", ");
			strcat(list, s->amb[i]);
		}
		out_line(o, "signature: ambivalent, several signatures found "
			 "(%s); libblkid will not choose", list);
	}
}

static void write_ext(struct out *o, struct img *im, const struct sig *s,
		      uint64_t offset)
{
	struct extfs x;
	long ret;

	if (!(s->rc == 0 && extfs_type(s->type))) {
		out_null(o, "ext", NULL);
		return;
	}
	/* Describe what the superblock says, even with a checksum off. */
	ret = extfs_open(&x, im, PIO_VIEW, offset, EXTFS_IGNORE_CSUM);
	if (ret) {
		out_null(o, "ext", NULL);
		out_str(o, "ext_error", "ext2/3/4", error_message(ret));
		return;
	}
	extfs_describe(o, x.fs);
	extfs_close(&x);
}

static bool nothing_found(const struct scan *s)
{
	return s->whole.rc == 1 && !s->has_pt;
}

int probe_content(struct out *o, struct img *im, struct probe_result *res)
{
	struct scan *s = calloc(1, sizeof(*s));
	bool view = im->kind == IMG_COW;
	char hb[32];
	int ret;

	if (res)
		memset(res, 0, sizeof(*res));
	out_obj(o, "content", view ? "content (merged view)" : "content");
	out_str(o, "source", NULL, view ? "merged-view" : "image");
	if (!s) {
		ret = -ENOMEM;
		goto fail;
	}
	if (view && !img_view_ok(im)) {
		ret = -ENOENT;
		out_str(o, "error", "not read",
			"the merged view needs a readable COW and its backing file");
		goto out;
	}
	ret = scan(im, s);
	if (ret < 0)
		goto fail;
	out_u64(o, "probe_window", NULL, s->windowed ? PROBE_WINDOW : 0);
	write_sig(o, &s->whole);
	if (nothing_found(s))
		out_line(o, "nothing found: no filesystem, no partition table "
			 "(libblkid)");
	write_ext(o, im, &s->whole, 0);
	if (res) {
		snprintf(res->type, sizeof(res->type), "%s", s->whole.type);
		res->has_ext = s->whole.rc == 0 && extfs_type(s->whole.type);
		res->partitions = s->nparts;
	}
	if (!s->has_pt) {
		out_null(o, "partition_table", NULL);
		goto out;
	}
	out_obj(o, "partition_table", NULL);
	out_str(o, "type", NULL, s->pttype);
	put_opt(o, "id", s->ptid);
	out_line(o, "partition table: %s%s%s%s, %d partition%s", s->pttype,
		 s->ptid[0] ? " (id " : "", s->ptid, s->ptid[0] ? ")" : "",
		 s->nparts, s->nparts == 1 ? "" : "s");
	o->indent++;
	out_arr(o, "partitions", NULL);
	for (int i = 0; i < s->nparts; i++) {
		struct part *p = &s->parts[i];

		out_obj(o, NULL, NULL);
		out_u64(o, "number", NULL, (uint64_t)p->number);
		out_u64(o, "start", NULL, p->start);
		out_u64(o, "size", NULL, p->size);
		out_str(o, "kind", NULL, p->kind);
		out_str(o, "type", NULL, p->type);
		put_opt(o, "uuid", p->uuid);
		put_opt(o, "name", p->name);
		out_u64(o, "flags", NULL, p->flags);
		out_obj_end(o);
		if (!o->json) {
			/* Text for the partition, then its content, indented. */
			out_line(o, "partition %d: %s, type %s, start %" PRIu64
				 ", size %" PRIu64 " (%s)%s%s%s", p->number,
				 p->kind, p->type, p->start, p->size,
				 human_size(p->size, hb, sizeof(hb)),
				 p->name[0] ? ", name \"" : "", p->name,
				 p->name[0] ? "\"" : "");
		}
	}
	out_arr_end(o);
	/* Filesystems inside partitions, by partition number. */
	out_arr(o, "partition_content", NULL);
	for (int i = 0; i < s->nparts; i++) {
		struct part *p = &s->parts[i];

		if (!strcmp(p->kind, "extended"))
			continue;
		out_obj(o, NULL, NULL);
		out_u64(o, "number", NULL, (uint64_t)p->number);
		out_line(o, "partition %d content:", p->number);
		o->indent++;
		write_sig(o, &p->sig);
		if (p->sig.rc == 1)
			out_line(o, "nothing found (libblkid)");
		write_ext(o, im, &p->sig, p->start);
		o->indent--;
		out_obj_end(o);
		if (res && !res->has_ext && p->sig.rc == 0 && extfs_type(p->sig.type)) {
			res->has_ext = true;
			res->ext_offset = p->start;
			snprintf(res->type, sizeof(res->type), "%s", p->sig.type);
		}
	}
	out_arr_end(o);
	o->indent--;
	out_obj_end(o);
	goto out;
fail:
	out_str(o, "error", "error", strerror(-ret));
out:
	out_obj_end(o);
	free(s);
	return ret;
}

int probe_find_ext(struct img *im, struct probe_result *res)
{
	struct scan *s = calloc(1, sizeof(*s));
	int ret;

	memset(res, 0, sizeof(*res));
	if (!s)
		return -ENOMEM;
	ret = scan(im, s);
	if (ret == 0) {
		snprintf(res->type, sizeof(res->type), "%s", s->whole.type);
		res->partitions = s->nparts;
		if (s->whole.rc == 0 && extfs_type(s->whole.type)) {
			res->has_ext = true;
		} else {
			for (int i = 0; i < s->nparts; i++) {
				if (s->parts[i].sig.rc == 0 &&
				    extfs_type(s->parts[i].sig.type)) {
					res->has_ext = true;
					res->ext_offset = s->parts[i].start;
					snprintf(res->type, sizeof(res->type), "%s",
						 s->parts[i].sig.type);
					break;
				}
			}
		}
	}
	free(s);
	return ret;
}
