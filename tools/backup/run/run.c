/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * run.c - a backup run (run.h): its devices, its destination, the copy's
 * method, and what is undone when it fails.
 */
#define _GNU_SOURCE
#include "run/run.h"
#include "run/parent.h"
#include "cli.h"
#include "extent.h"
#include "input.h"
#include "quote.h"
#include "codec/pack.h"
#include "format/stream.h"
#include "format/xstream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

void backup_init(struct backup *b, const struct options *o, bool live)
{
	memset(b, 0, sizeof(*b));
	b->o = o;
	b->live = live;
	b->dirfd = -1;
	b->gs.mc.fd = -1;
	b->gs.wd.fd = -1;
	b->gs.io_idle = "none";
	b->t_start = tool_now();
	/* The point's id: unique without coordination (docs/backup-format.md). */
	if (getrandom(b->point, sizeof(b->point), 0) != (ssize_t)sizeof(b->point)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		for (size_t i = 0; i < sizeof(b->point); i++)
			b->point[i] ^= (uint8_t)((uint64_t)ts.tv_nsec >> (i % 4 * 8)) ^
				       (uint8_t)(getpid() >> (i % 2 * 8)) ^ (uint8_t)(ts.tv_sec >> i);
	}
	/* A plain backup is a point too (its stream and table carry the id). */
	xs_hex128(b->point, b->point_hex);
}

struct device *backup_device_new(struct backup *b, int unit)
{
	struct device *d = &b->dev[b->ndev];

	memset(d, 0, sizeof(*d));
	d->src = -1;
	d->out.af.fd = d->out.zf.fd = -1;
	d->unit = unit;
	return d;
}

/* --- devices ------------------------------------------------------------ */

int backup_read_header(struct device *d, const char *what)
{
	struct ubdk_err err = { 0 };
	char name[256];

	/* The name is only for messages: short enough to leave room for why. */
	quote_elide(name, sizeof(name), d->cow);
	if (ubdk_header_read_fd(d->src, name, &d->hdr, &d->geo, &err) < 0) {
		if (err.code == UBDK_E_SYS)
			cli_error("%s: %s: cannot read: %s", d->name, quote_name(d->cow),
				  strerror(err.errnum));
		else if (err.code == UBDK_E_BAD_MAGIC || err.code == UBDK_E_SHORT_HEADER)
			cli_error("%s: %s is not a COW file (%s); uml_backup copies "
				  "COW files%s", d->name, quote_name(d->cow), what,
				  d->unit >= 0 ? ": choose devices with -d" : "");
		else
			cli_error("%s", err.msg);
		return EXIT_DEVICE;
	}
	return 0;
}

int backup_open_source(struct device *d)
{
	/* The name comes from the user or the guest: it may be a FIFO. */
	int fd = input_open(d->cow, &d->st);

	if (fd < 0) {
		cli_error("%s: %s: %s%s", d->name, quote_name(d->cow), fd == INPUT_E_TYPE ||
			  fd == -EISDIR ? "" : "cannot open: ", input_strerror(fd));
		return EXIT_DEVICE;
	}
	d->src = fd;
	if (!S_ISREG(d->st.st_mode)) {
		cli_error("%s: %s: a block device, not a COW file", d->name, quote_name(d->cow));
		return EXIT_DEVICE;
	}
	return 0;
}

/* --- destination -------------------------------------------------------- */

int backup_prepare_dest(struct backup *b)
{
	const struct options *o = b->o;
	struct stat st;

	if (o->incremental) {
		int cst = parent_prepare(b);

		if (cst)
			return cst;
	} else {
		snprintf(b->dest, sizeof(b->dest), "%s", o->dest);
	}
	if (o->incremental)
		;
	else if (mkdir(o->dest, 0755) == 0)
		b->made_dest = true;
	else if (errno != EEXIST) {
		cli_error("%s: cannot create the directory: %s", quote_name(o->dest),
			  strerror(errno));
		return EXIT_DEST;
	}
	b->dirfd = open(b->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->dirfd < 0) {
		cli_error("%s: %s", quote_name(o->dest), errno == ENOTDIR ? "not a directory" :
			  strerror(errno));
		return EXIT_DEST;
	}
	if (!o->force && fstatat(b->dirfd, MANIFEST, &st, 0) == 0) {
		cli_error("%s: already holds a backup (%s); use -f to replace it",
			  quote_name(o->dest), MANIFEST);
		return EXIT_DEST;
	}
	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];
		char path[PATH_MAX + 80];
		int ret;

		char file[sizeof(d->out.file)];

		/*
		 * Through a local: gcc's -Wrestrict cannot tell that the suffix
		 * (a string constant) is not inside *b, which holds d->out.file.
		 */
		/* Compressed or a chain point: an extent stream, whose size follows the data. */
		snprintf(file, sizeof(file), "%s.%s%s", d->name, o->compress || o->incremental ?
			 "ubdx" : "cow",
			 pack_suffix(o->compress));
		memcpy(d->out.file, file, sizeof(file));
		if (!o->force && fstatat(b->dirfd, d->out.file, &st, 0) == 0) {
			cli_error("%s/%s: already exists; use -f to replace it",
				  quote_name(o->dest), quote_name(d->out.file));
			return EXIT_DEST;
		}
		snprintf(path, sizeof(path), "%s/%s.cow", b->dest, d->name);
		ret = afile_open(&d->out.af, b->dirfd, path, 0644, true);
		if (ret < 0) {
			cli_error("%s: cannot create files: %s", quote_name(o->dest),
				  strerror(-ret));
			return EXIT_DEST;
		}
		d->data_bytes = extent_data_bytes(d->src, (uint64_t)d->st.st_size);
	}
	return 0;
}

int backup_check_space(struct backup *b)
{
	struct statvfs vfs;
	uint64_t need = 0, avail;

	/* An incremental's size is known only once compared: ENOSPC then. */
	if (b->method == M_REFLINK || b->chain.has_parent || fstatvfs(b->dirfd, &vfs) < 0)
		return 0;
	for (int i = 0; i < b->ndev; i++)
		need += b->dev[i].data_bytes;
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (avail < need + need / 64) {
		cli_error("%s: not enough space: the copy needs %.1f MiB, %.1f MiB free",
			  quote_name(b->o->dest), (double)need / 1048576.0,
			  (double)avail / 1048576.0);
		return EXIT_DEST;
	}
	return 0;
}

int backup_dest_error(const struct snap_ctx *c, int ret)
{
	if (ret == -EINTR)
		return EXIT_INTERRUPTED;
	cli_error("%s", c->msg[0] ? c->msg : strerror(-ret));
	return ret == -ENOSPC || ret == -EFBIG || ret == -EDQUOT || ret == -EROFS ||
	       ret == -EACCES ? EXIT_DEST : EXIT_FAILED;
}

void backup_snap_of(struct device *d, struct snap_file *f)
{
	f->src = d->src;
	f->dst = d->out.af.fd;
	f->src_name = d->cow;
	f->dst_name = d->out.file;
	f->size = (uint64_t)d->st.st_size;
}

int backup_try_reflink(struct backup *b)
{
	const struct options *o = b->o;
	struct snap_ctx c = { .intr = &tool_interrupted };
	int ret;

	b->method = o->method;
	/* A chain point is a stream written from a scan, never a clone. */
	if (o->incremental && o->method == M_REFLINK) {
		cli_error("--method reflink: not with --incremental (a point is a stream)");
		return EXIT_USAGE;
	}
	if (o->incremental && o->method == M_AUTO)
		return 0;
	/* Offline, a compressed backup reads the COW itself: a clone serves nothing. */
	if (!b->live && o->compress && o->method == M_AUTO)
		return 0;
	if (o->method != M_AUTO && o->method != M_REFLINK)
		return 0;
	for (int i = 0; i < b->ndev; i++) {
		struct snap_file f;

		backup_snap_of(&b->dev[i], &f);
		ret = snap_reflink(&f, &c);
		if (ret < 0 && !snap_no_reflink(ret))
			return backup_dest_error(&c, ret);
		if (ret == 0)
			continue;
		if (o->method == M_REFLINK) {
			cli_error("%s: the filesystem cannot share extents with %s "
				  "(FICLONE: %s); use another --method", quote_name(o->dest),
				  quote_name(b->dev[i].cow), strerror(-ret));
			return EXIT_DEST;
		}
		b->method = M_AUTO;
		return 0;
	}
	b->method = M_REFLINK;
	return 0;
}

void backup_utc_now(char *buf, size_t len)
{
	tool_utc_stamp(buf, len, false);
}

/* Remove what this run published: without a manifest it is no backup. */
static void cleanup(struct backup *b)
{
	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];

		if (d->out.published)
			unlinkat(b->dirfd, d->out.file, 0);
		if (d->out.tpublished)
			unlinkat(b->dirfd, d->out.chunks_file, 0);
		d->out.published = d->out.tpublished = false;
		afile_discard(&d->out.tf);
		afile_discard(&d->out.af);
		afile_discard(&d->out.zf);
	}
	/* A directory we made for nothing goes too (only if empty). */
	if (b->made_dest)
		rmdir(b->dest);
}

void backup_end(struct backup *b, int status)
{
	if (status != 0 && status != EXIT_USAGE)
		cleanup(b);
	mc_close(&b->gs.mc);
	for (int i = 0; i < b->ndev; i++) {
		if (b->dev[i].src >= 0)
			close(b->dev[i].src);
		afile_discard(&b->dev[i].out.af);
		afile_discard(&b->dev[i].out.zf);
		afile_discard(&b->dev[i].out.tf);
		table_free(&b->dev[i].pipe.ptab);
		table_free(&b->dev[i].pipe.er.tab);
		if (b->dev[i].pipe.scanning)
			scan_free(&b->dev[i].pipe.scan);
		free(b->dev[i].cbt.bits);
	}
	if (b->chain.has_parent)
		point_free(&b->chain.parent);
	if (b->dirfd >= 0)
		close(b->dirfd);
}

int backup_device_grid(struct device *d)
{
	if (!grid_init(&d->pipe.grid, (uint64_t)d->st.st_size, d->geo.data_offset, CHUNK_SIZE)) {
		cli_error("%s: %s: data offset past the file's end", d->name, quote_name(d->cow));
		return EXIT_DEVICE;
	}
	return 0;
}
