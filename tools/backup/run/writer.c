/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * writer.c - after the copy (writer.h): each device's chunk table and,
 * for a chain point or a compressed backup (a point of no chain), its
 * extent stream; the files published, the manifest last.
 *
 * A chain point's stream holds, per device, all data for the first, full
 * point and the chunks that differ from the parent's table otherwise.
 * Live, the pause stays what it is without chains: the comparison runs
 * while the guest does, writing only the differing chunks to a sparse
 * scratch file (writer_precopy); the source of changes (changes.h)
 * rescans the chunks the guest wrote meanwhile, the last round while it
 * is stopped.  The stream is written after `go`, from the scratch file.
 */
#define _GNU_SOURCE
#include "run/writer.h"
#include "run/run.h"
#include "cli.h"
#include "extent.h"
#include "quote.h"
#include "changes/kernel_cbt.h"
#include "codec/lz4_splice.h"
#include "codec/pack.h"
#include "format/manifest.h"
#include "format/stream.h"
#include "format/xstream.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fsync_error(const char *name, int err)
{
	cli_error("%s: %s", quote_name(name), strerror(err));
	return err == ENOSPC || err == EDQUOT || err == EFBIG ? EXIT_DEST : EXIT_FAILED;
}

/* d->pipe.er.tab as DESTDIR/ubdN.chunks, unnamed until published; 0 or an exit status. */
static int write_table(struct backup *b, struct device *d)
{
	char path[PATH_MAX + 80];
	uint8_t *bytes;
	size_t blen;
	int ret;

	char file[sizeof(d->out.chunks_file)];

	/* Through a local: gcc's -Wrestrict cannot tell d->name from d->out.chunks_file. */
	snprintf(file, sizeof(file), "%s.chunks", d->name);
	memcpy(d->out.chunks_file, file, sizeof(file));
	snprintf(path, sizeof(path), "%s/%s", b->dest, d->out.chunks_file);
	bytes = table_encode(&d->pipe.er.tab, &blen);
	if (!bytes) {
		cli_error("out of memory");
		return EXIT_FAILED;
	}
	ret = afile_open(&d->out.tf, b->dirfd, path, 0644, false);
	if (ret == 0)
		ret = stream_write_all(d->out.tf.fd, bytes, blen, -1);
	if (ret == 0 && fsync(d->out.tf.fd) < 0)
		ret = -errno;
	free(bytes);
	return ret < 0 ? fsync_error(path, -ret) : 0;
}

static int scan_error(struct scan *s, int ret)
{
	if (ret == -EINTR)
		return EXIT_INTERRUPTED;
	cli_error("%s", s->msg[0] ? s->msg : strerror(-ret));
	return ret == -ENOSPC || ret == -EFBIG || ret == -EDQUOT ? EXIT_DEST : EXIT_FAILED;
}

/* The device's grid and a scan of the COW against the parent's table. */
static int start_scan(struct device *d, int dst)
{
	int ret;

	ret = backup_device_grid(d);
	if (ret)
		return ret;
	ret = scan_init(&d->pipe.scan, &d->pipe.grid, &d->pipe.ptab, d->src, d->cow, dst, d->out.file);
	if (ret < 0)
		return scan_error(&d->pipe.scan, ret);
	d->pipe.scan.intr = &tool_interrupted;
	d->pipe.scanning = true;
	return 0;
}

int writer_precopy(struct backup *b)
{
	double t0 = tool_now();

	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];
		int st, ret;

		/* The scratch file holds only the differing chunks: sparse. */
		if (ftruncate(d->out.af.fd, d->st.st_size) < 0) {
			cli_error("%s: %s", quote_name(b->dest), strerror(errno));
			return EXIT_DEST;
		}
		st = start_scan(d, d->out.af.fd);
		if (st)
			return st;
		ret = scan_changes(&d->pipe.scan, changes_of(b, d));
		if (ret < 0)
			return scan_error(&d->pipe.scan, ret);
	}
	b->t_precopy = tool_now() - t0;
	return 0;
}

/* One device's stream and table, into unnamed files in the point. */
static int write_device(struct backup *b, struct device *d)
{
	const struct options *o = b->o;
	struct packer *pk = NULL;
	int rfd, ret, st;
	int sinkfd;
	char path[PATH_MAX + 80];

	if (!b->live || !d->pipe.scanning) {
		/* Offline (nothing writes), or the full point of a live chain. */
		ret = backup_device_grid(d);
		if (ret)
			return ret;
	}
	if (!b->live && b->chain.has_parent) {
		st = start_scan(d, -1);
		if (st)
			return st;
		ret = scan_changes(&d->pipe.scan, changes_of(b, d));
		if (ret < 0)
			return scan_error(&d->pipe.scan, ret);
	}
	rfd = b->live ? d->out.af.fd : d->src;
	snprintf(path, sizeof(path), "%s/%s", b->dest, d->out.file);
	ret = afile_open(&d->out.zf, b->dirfd, path, 0644, false);
	if (ret < 0) {
		cli_error("%s: cannot create: %s", quote_name(path), strerror(-ret));
		return EXIT_DEST;
	}
	sinkfd = d->out.zf.fd;
	if (o->compress) {
		ret = packer_open(&pk, o->compress, o->level, d->out.zf.fd, LZ4S_NO_SIZE);
		if (ret < 0) {
			cli_error("%s: %s", quote_name(path), strerror(-ret));
			return EXIT_FAILED;
		}
	}
	ret = point_emit(rfd, b->live ? d->out.file : d->cow, &d->pipe.grid, b->point,
			 b->chain.has_parent ? &d->pipe.ptab : NULL, b->chain.has_parent ? &d->pipe.scan : NULL,
			 pk ? packer_unit : xs_fd_sink, pk ? (void *)pk : (void *)&sinkfd, &d->pipe.er);
	d->pipe.stored_bytes = d->pipe.er.stream_bytes;
	if (ret == 0 && pk)
		ret = packer_finish(pk, &d->pipe.stored_bytes);
	packer_free(pk);
	if (ret == 0 && fsync(d->out.zf.fd) < 0)
		ret = -errno;
	if (ret < 0) {
		if (ret == -EINTR)
			return EXIT_INTERRUPTED;
		cli_error("%s: %s", quote_name(path), d->pipe.er.msg[0] && !pk ? d->pipe.er.msg :
			  strerror(-ret));
		return ret == -ENOSPC || ret == -EDQUOT || ret == -EFBIG ? EXIT_DEST : EXIT_FAILED;
	}
	return write_table(b, d);
}

/* The point's streams and tables, published (the manifest follows). */
static int write_points(struct backup *b)
{
	double t0 = tool_now();

	for (int i = 0; i < b->ndev; i++) {
		int st = write_device(b, &b->dev[i]);

		if (st)
			return st;
		/* The scratch copy is not part of the point. */
		afile_discard(&b->dev[i].out.af);
	}
	b->t_compress = tool_now() - t0;
	/*
	 * The record's checkpoint follows the point (kernel_cbt.h): a chain's only
	 * (a plain compressed backup is written here too, and is nobody's parent).
	 */
	if (!b->live && b->o->incremental)
		kernel_cbt_advance(b);
	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];
		char path[PATH_MAX + 80];
		int ret;

		snprintf(path, sizeof(path), "%s/%s", b->dest, d->out.file);
		/* -f replaces a plain backup's files; a chain point's directory is new. */
		ret = afile_publish(&d->out.zf, path, b->o->force);
		if (ret == 0)
			d->out.published = true;
		snprintf(path, sizeof(path), "%s/%s", b->dest, d->out.chunks_file);
		if (ret == 0)
			ret = afile_publish(&d->out.tf, path, b->o->force);
		if (ret == 0)
			d->out.tpublished = true;
		if (ret < 0) {
			cli_error("%s: %s", quote_name(path), strerror(-ret));
			return ret == -ENOSPC ? EXIT_DEST : EXIT_FAILED;
		}
	}
	return 0;
}

/*
 * An uncompressed backup: the sparse copy stays a COW file, bootable as
 * it is; its chunk table is what restore and verify check it with.  The
 * table's pass reads only the chunks that hold data (SEEK_DATA), so its
 * time follows the data, not the device.
 */
static int finish_device(struct backup *b, struct device *d)
{
	struct ubdk_err err = { 0 };
	struct ubdk_cow *cow;
	char proc[64];
	double t0;
	int ret;

	/* The copy is a COW in its own right: count its sectors. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", d->out.af.fd);
	if (ubdk_cow_open(d->out.af.tmp ? d->out.af.tmp : proc, NULL,
			  UBDK_OPEN_NO_BACKING | UBDK_OPEN_NO_CHECK, &cow, &err) == 0) {
		ret = ubdk_cow_count(cow, 0, ubdk_cow_geometry(cow)->sectors,
				     &d->pipe.cow_sectors, &err);
		ubdk_cow_close(cow);
		if (ret < 0) {
			cli_error("%s: the copy's bitmap cannot be read: %s",
				  d->out.file, err.msg);
			return EXIT_FAILED;
		}
	} else {
		cli_error("%s: the copy is not a valid COW file: %s", quote_name(d->out.file),
			  tool_lib_msg(&err, d->out.af.tmp ? d->out.af.tmp : proc));
		return EXIT_FAILED;
	}
	d->data_bytes = extent_data_bytes(d->out.af.fd, (uint64_t)d->st.st_size);
	ret = backup_device_grid(d);
	if (ret)
		return ret;
	t0 = tool_now();
	ret = table_of_fd(d->out.af.fd, &d->pipe.grid, b->point, &d->pipe.er.tab, &d->pipe.er.read_bytes);
	b->t_compress += tool_now() - t0;
	if (tool_interrupted)
		return EXIT_INTERRUPTED;
	if (ret < 0)
		return fsync_error(d->out.file, -ret);
	/* writer_finish() syncs the copy, in a thread started before the table. */
	d->pipe.stored_bytes = d->data_bytes;
	return write_table(b, d);
}

/* An uncompressed backup's COW file and table. */
static int publish_device(struct backup *b, struct device *d)
{
	char path[PATH_MAX + 80];
	int ret;

	snprintf(path, sizeof(path), "%s/%s", b->dest, d->out.file);
	ret = afile_publish(&d->out.af, path, b->o->force);
	if (ret == 0) {
		d->out.published = true;
		snprintf(path, sizeof(path), "%s/%s", b->dest, d->out.chunks_file);
		ret = afile_publish(&d->out.tf, path, b->o->force);
		d->out.tpublished = ret == 0;
	}
	if (ret < 0) {
		cli_error("%s: %s", quote_name(path), ret == -EEXIST ? "already exists; use -f to "
			  "replace it" : strerror(-ret));
		return ret == -EEXIST || ret == -ENOSPC || ret == -EROFS ? EXIT_DEST : EXIT_FAILED;
	}
	return 0;
}

static char *manifest_of(const struct backup *b, size_t *len)
{
	struct manifest_device md[MAX_DEV];
	struct manifest m;
	char tool[64];

	manifest_init(&m);
	snprintf(tool, sizeof(tool), "uml_backup (ubdkit) %s", ubdk_version());
	m.tool = tool;
	if (b->live) {
		m.guest = b->gs.g.umid;
		m.mconsole = b->gs.g.sock;
		m.kernel = b->gs.kernel;
	}
	m.live = b->live;
	m.created = b->created;
	m.point = b->point_hex;
	m.kind = "full";
	m.method = method_names[b->method];
	m.method_note = b->method_note[0] ? b->method_note : NULL;
	m.synced = b->gs.synced;
	m.drained = b->gs.drained;
	m.dirty_kb = b->gs.dirty_kb;
	m.io_idle = b->gs.io_idle;
	m.pause_ms = m.t_pause = b->pause_ms;
	m.t_precopy = b->t_precopy * 1000;
	m.t_sync = b->t_sync * 1000;
	m.t_checksum_compress = b->t_compress * 1000;
	m.t_fsync = b->t_fsync * 1000;
	m.t_total = (b->t_post - b->t_start) * 1000;
	if (b->method == M_TRACK)
		m.tracked_writes = b->cs.tracked_writes;
	char parent_hex[XXH_HEX], sxx[MAX_DEV][XXH_HEX], cxx[MAX_DEV][XXH_HEX];
	bool stream = b->o->compress || b->o->incremental;

	if (b->o->incremental) {
		/* parent_prepare made the id: b->point_hex is it. */
		m.kind = b->chain.has_parent ? "incremental" : "full";
		if (b->chain.has_parent) {
			digest_hex(b->chain.parent.id, parent_hex);
			m.parent_point = parent_hex;
			m.parent_dir = b->chain.parent.name;
			m.changes = changes_names[b->cs.changes.kind];
			m.changes_note = b->cs.changes.note[0] ? b->cs.changes.note : NULL;
		}
	}
	for (int i = 0; i < b->ndev; i++) {
		const struct device *d = &b->dev[i];

		md[i] = (struct manifest_device){
			.device = d->name, .cow = d->cow, .backing = d->hdr.backing,
			.size = d->hdr.size, .mtime = d->hdr.mtime,
			.layout = ubdk_layout_name(d->hdr.layout), .sectorsize = d->hdr.sectorsize,
			.file = d->out.file, .compression = pack_name(b->o->compress),
			.format = stream ? "ubdx" : "cow",
			.stored_bytes = d->pipe.stored_bytes, .cow_bytes = (uint64_t)d->st.st_size,
			.data_bytes = d->data_bytes,
			.cow_sectors = stream ? MANIFEST_ABSENT : d->pipe.cow_sectors,
			.paused_copy_bytes = d->pipe.paused_bytes,
			/*
			 * The chunk table checks the content (crc32 and sha256_tree,
			 * of every MiB, were the checksums of 0.2.0: still read).
			 */
			.chunks = d->out.chunks_file, .chunks_xxh128 = cxx[i],
		};
		digest_hex(d->pipe.er.tab.end, cxx[i]);
		if (stream) {
			digest_hex(d->pipe.er.digest, sxx[i]);
			md[i].stream_xxh128 = sxx[i];
		}
	}
	m.dev = md;
	m.ndev = (size_t)b->ndev;
	return manifest_text(&m, len);
}

static int write_manifest(struct backup *b, const char *text, size_t len)
{
	struct afile af;
	char path[PATH_MAX + 32];
	int ret;

	snprintf(path, sizeof(path), "%s/%s", b->dest, MANIFEST);
	ret = afile_open(&af, b->dirfd, path, 0644, false);
	if (ret == 0 && write(af.fd, text, len) != (ssize_t)len)
		ret = errno ? -errno : -ENOSPC;
	if (ret == 0 && fsync(af.fd) < 0)
		ret = -errno;
	if (ret == 0)
		ret = afile_publish(&af, path, b->o->force);
	afile_discard(&af);
	if (ret == 0 && fsync(b->dirfd) < 0)
		ret = -errno;
	if (ret < 0) {
		cli_error("%s: %s", quote_name(path), strerror(-ret));
		return ret == -ENOSPC || ret == -EDQUOT || ret == -EROFS ? EXIT_DEST : EXIT_FAILED;
	}
	return 0;
}

struct syncer {
	pthread_t thread;
	int fd, err;
	bool running;
};

static void *sync_thread(void *arg)
{
	struct syncer *s = arg;

	s->err = fsync(s->fd) < 0 ? errno : 0;
	return NULL;
}

int writer_finish(struct backup *b)
{
	struct syncer sync[MAX_DEV];
	char *text;
	size_t len;
	double t0;
	int st = 0;

	/*
	 * The copies go to disk (fsync, in threads) while they are read back
	 * from the page cache for their checksums: one costs I/O, the other
	 * CPU.
	 */
	memset(sync, 0, sizeof(sync));
	/* A stream and its table in one pass over the data (point.c). */
	if (b->o->incremental || b->o->compress) {
		st = write_points(b);
		if (st)
			return st;
		goto manifest;
	}
	for (int i = 0; i < b->ndev; i++) {
		sync[i].fd = b->dev[i].out.af.fd;
		sync[i].running = pthread_create(&sync[i].thread, NULL, sync_thread,
						 &sync[i]) == 0;
		if (!sync[i].running)
			sync[i].err = fsync(sync[i].fd) < 0 ? errno : 0;
	}
	for (int i = 0; i < b->ndev && st == 0; i++)
		st = finish_device(b, &b->dev[i]);
	t0 = tool_now();
	for (int i = 0; i < b->ndev; i++) {
		if (sync[i].running)
			pthread_join(sync[i].thread, NULL);
		if (st == 0 && sync[i].err)
			st = fsync_error(b->dev[i].out.file, sync[i].err);
	}
	b->t_fsync += tool_now() - t0;
	if (st)
		return st;
	for (int i = 0; i < b->ndev; i++) {
		st = publish_device(b, &b->dev[i]);
		if (st)
			return st;
	}
manifest:
	b->t_post = tool_now();
	text = manifest_of(b, &len);
	if (!text) {
		cli_error("out of memory");
		return EXIT_FAILED;
	}
	st = write_manifest(b, text, len);
	if (st == 0 && b->o->json)
		fwrite(text, 1, len, stdout);
	free(text);
	return st;
}
