/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "cmd/backup.h"
#include "cli.h"
#include "extent.h"
#include "input.h"
#include "changes/io_tracer.h"
#include "format/manifest.h"
#include "codec/pack.h"
#include "quote.h"
#include "format/stream.h"
#include "codec/lz4_splice.h"
#include "format/xstream.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
	b->mc.fd = -1;
	b->wd.fd = -1;
	b->io_idle = "none";
	b->t_start = tool_now();
	/* The point's id: unique without coordination (docs/backup-format.md). */
	if (getrandom(b->point, sizeof(b->point), 0) != (ssize_t)sizeof(b->point)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		for (size_t i = 0; i < sizeof(b->point); i++)
			b->point[i] ^= (uint8_t)((uint64_t)ts.tv_nsec >> (i % 4 * 8)) ^
				       (uint8_t)(getpid() >> (i % 2 * 8)) ^ (uint8_t)(ts.tv_sec >> i);
	}
	xs_hex128(b->point, b->point_hex);
	/* A plain backup is a point too (its stream and table carry the id). */
	memcpy(b->point_id, b->point, sizeof(b->point_id));
}

struct device *backup_device_new(struct backup *b, int unit)
{
	struct device *d = &b->dev[b->ndev];

	memset(d, 0, sizeof(*d));
	d->src = -1;
	d->af.fd = d->zf.fd = -1;
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
	d->data_offset = d->geo.data_offset;
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
		int cst = chain_prepare(b);

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

		char file[sizeof(d->file)];

		/*
		 * Through a local: gcc's -Wrestrict cannot tell that the suffix
		 * (a string constant) is not inside *b, which holds d->file.
		 */
		/* Compressed or a chain point: an extent stream, whose size follows the data. */
		snprintf(file, sizeof(file), "%s.%s%s", d->name, o->compress || o->incremental ?
			 "ubdx" : "cow",
			 pack_suffix(o->compress));
		memcpy(d->file, file, sizeof(file));
		if (!o->force && fstatat(b->dirfd, d->file, &st, 0) == 0) {
			cli_error("%s/%s: already exists; use -f to replace it",
				  quote_name(o->dest), quote_name(d->file));
			return EXIT_DEST;
		}
		snprintf(path, sizeof(path), "%s/%s.cow", b->dest, d->name);
		ret = afile_open(&d->af, b->dirfd, path, 0644, true);
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
	if (b->method == M_REFLINK || b->has_parent || fstatvfs(b->dirfd, &vfs) < 0)
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
	f->dst = d->af.fd;
	f->src_name = d->cow;
	f->dst_name = d->file;
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
	struct timespec ts;
	struct tm tm;

	char day[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%.20s.%03dZ", day, (int)(ts.tv_nsec / 1000000));
}

/* --- after the copy: chunk table, stream, manifest --------------------------- */

static int fsync_error(const char *name, int err)
{
	cli_error("%s: %s", quote_name(name), strerror(err));
	return err == ENOSPC || err == EDQUOT || err == EFBIG ? EXIT_DEST : EXIT_FAILED;
}

int backup_write_table(struct backup *b, struct device *d)
{
	char path[PATH_MAX + 80];
	uint8_t *bytes;
	size_t blen;
	int ret;

	char file[sizeof(d->chunks_file)];

	/* Through a local: gcc's -Wrestrict cannot tell d->name from d->chunks_file. */
	snprintf(file, sizeof(file), "%s.chunks", d->name);
	memcpy(d->chunks_file, file, sizeof(file));
	snprintf(path, sizeof(path), "%s/%s", b->dest, d->chunks_file);
	bytes = table_encode(&d->er.tab, &blen);
	if (!bytes) {
		cli_error("out of memory");
		return EXIT_FAILED;
	}
	ret = afile_open(&d->tf, b->dirfd, path, 0644, false);
	if (ret == 0)
		ret = stream_write_all(d->tf.fd, bytes, blen, -1);
	if (ret == 0 && fsync(d->tf.fd) < 0)
		ret = -errno;
	free(bytes);
	return ret < 0 ? fsync_error(path, -ret) : 0;
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
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", d->af.fd);
	if (ubdk_cow_open(d->af.tmp ? d->af.tmp : proc, NULL,
			  UBDK_OPEN_NO_BACKING | UBDK_OPEN_NO_CHECK, &cow, &err) == 0) {
		ret = ubdk_cow_count(cow, 0, ubdk_cow_geometry(cow)->sectors,
				     &d->cow_sectors, &err);
		ubdk_cow_close(cow);
		if (ret < 0) {
			cli_error("%s: the copy's bitmap cannot be read: %s",
				  d->file, err.msg);
			return EXIT_FAILED;
		}
	} else {
		cli_error("%s: the copy is not a valid COW file: %s", quote_name(d->file),
			  tool_lib_msg(&err, d->af.tmp ? d->af.tmp : proc));
		return EXIT_FAILED;
	}
	d->data_bytes = extent_data_bytes(d->af.fd, (uint64_t)d->st.st_size);
	if (!grid_init(&d->grid, (uint64_t)d->st.st_size, d->data_offset, CHUNK_SIZE)) {
		cli_error("%s: %s: data offset past the file's end", d->name, quote_name(d->cow));
		return EXIT_DEVICE;
	}
	t0 = tool_now();
	ret = table_of_fd(d->af.fd, &d->grid, b->point_id, &d->er.tab, &d->er.read_bytes);
	b->t_compress += tool_now() - t0;
	if (tool_interrupted)
		return EXIT_INTERRUPTED;
	if (ret < 0)
		return fsync_error(d->file, -ret);
	/* backup_finish() syncs the copy, in a thread started before the table. */
	d->stored_bytes = d->data_bytes;
	return backup_write_table(b, d);
}

/* An uncompressed backup's COW file and table. */
static int publish_device(struct backup *b, struct device *d)
{
	char path[PATH_MAX + 80];
	int ret;

	snprintf(path, sizeof(path), "%s/%s", b->dest, d->file);
	ret = afile_publish(&d->af, path, b->o->force);
	if (ret == 0) {
		d->published = true;
		snprintf(path, sizeof(path), "%s/%s", b->dest, d->chunks_file);
		ret = afile_publish(&d->tf, path, b->o->force);
		d->tpublished = ret == 0;
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
		m.guest = b->g.umid;
		m.mconsole = b->g.sock;
		m.kernel = b->kernel;
	}
	m.live = b->live;
	m.created = b->created;
	m.point = b->point_hex;
	m.kind = "full";
	m.method = method_names[b->method];
	m.method_note = b->method_note[0] ? b->method_note : NULL;
	m.synced = b->synced;
	m.drained = b->drained;
	m.dirty_kb = b->dirty_kb;
	m.io_idle = b->io_idle;
	m.pause_ms = m.t_pause = b->pause_ms;
	m.t_precopy = b->t_precopy * 1000;
	m.t_sync = b->t_sync * 1000;
	m.t_checksum_compress = b->t_compress * 1000;
	m.t_fsync = b->t_fsync * 1000;
	m.t_total = (b->t_post - b->t_start) * 1000;
	if (b->method == M_TRACK)
		m.tracked_writes = b->tracked_writes;
	char parent_hex[XXH_HEX], sxx[MAX_DEV][XXH_HEX], cxx[MAX_DEV][XXH_HEX];
	bool stream = b->o->compress || b->o->incremental;

	if (b->o->incremental) {
		/* chain_prepare made the id: b->point_hex is it. */
		m.kind = b->has_parent ? "incremental" : "full";
		if (b->has_parent) {
			digest_hex(b->parent.id, parent_hex);
			m.parent_point = parent_hex;
			m.parent_dir = b->parent.name;
			m.changes = changes_names[b->changes.kind];
			m.changes_note = b->changes.note[0] ? b->changes.note : NULL;
		}
	}
	for (int i = 0; i < b->ndev; i++) {
		const struct device *d = &b->dev[i];

		md[i] = (struct manifest_device){
			.device = d->name, .cow = d->cow, .backing = d->hdr.backing,
			.size = d->hdr.size, .mtime = d->hdr.mtime,
			.layout = ubdk_layout_name(d->hdr.layout), .sectorsize = d->hdr.sectorsize,
			.file = d->file, .compression = pack_name(b->o->compress),
			.format = stream ? "ubdx" : "cow",
			.stored_bytes = d->stored_bytes, .cow_bytes = (uint64_t)d->st.st_size,
			.data_bytes = d->data_bytes,
			.cow_sectors = stream ? MANIFEST_ABSENT : d->cow_sectors,
			.paused_copy_bytes = d->paused_bytes,
			/*
			 * The chunk table checks the content (crc32 and sha256_tree,
			 * of every MiB, were the checksums of 0.2.0: still read).
			 */
			.chunks = d->chunks_file, .chunks_xxh128 = cxx[i],
		};
		digest_hex(d->er.tab.end, cxx[i]);
		if (stream) {
			digest_hex(d->er.digest, sxx[i]);
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

int backup_finish(struct backup *b)
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
		st = finish_chain(b);
		if (st)
			return st;
		goto manifest;
	}
	for (int i = 0; i < b->ndev; i++) {
		sync[i].fd = b->dev[i].af.fd;
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
			st = fsync_error(b->dev[i].file, sync[i].err);
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

/* Remove what this run published: without a manifest it is no backup. */
static void cleanup(struct backup *b)
{
	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];

		if (d->published)
			unlinkat(b->dirfd, d->file, 0);
		if (d->tpublished)
			unlinkat(b->dirfd, d->chunks_file, 0);
		d->published = d->tpublished = false;
		afile_discard(&d->tf);
		afile_discard(&d->af);
		afile_discard(&d->zf);
	}
	/* A directory we made for nothing goes too (only if empty). */
	if (b->made_dest)
		rmdir(b->dest);
}

void backup_summary(const struct backup *b)
{
	uint64_t data = 0, stored = 0, paused = 0;

	if (b->o->quiet)
		return;
	for (int i = 0; i < b->ndev; i++) {
		data += b->dev[i].data_bytes;
		stored += b->dev[i].stored_bytes;
		paused += b->dev[i].paused_bytes;
	}
	if (b->o->incremental) {
		uint64_t chunks = 0, rd = 0;
		char pause[64] = "";

		for (int i = 0; i < b->ndev; i++) {
			chunks += b->dev[i].er.chunks_stored;
			rd += b->dev[i].scanning ? b->dev[i].scan.read : b->dev[i].er.read_bytes;
		}
		char source[sizeof(b->changes.note) + 40] = "";

		if (b->live)
			snprintf(pause, sizeof(pause), "; paused %.1f ms (%s)", b->pause_ms,
				 method_names[b->method]);
		/* The source, and why not tracking when it is not. */
		if (b->has_parent)
			snprintf(source, sizeof(source), ", changes: %s%s%s%s",
				 changes_names[b->changes.kind],
				 b->changes.kind == CHANGES_COMPARISON ? " (" : "",
				 b->changes.kind == CHANGES_COMPARISON ? b->changes.note : "",
				 b->changes.kind == CHANGES_COMPARISON ? ")" : "");
		fprintf(stderr, "%s: %s: %s point %s in %s (%s%s%s): %llu chunk%s stored, "
			"%s%s%.1f MiB; %.1f MiB of COW data read%s\n", cli_prog,
			b->live ? quote_name(b->g.umid) : "offline", b->has_parent ?
			"incremental" : "full (the chain had no point)", b->point_name,
			quote_name(b->o->dest), b->has_parent ? "parent " : "new chain",
			b->has_parent ? b->parent.name : "", source, (unsigned long long)chunks,
			chunks == 1 ? "" : "s", b->o->compress ? pack_name(b->o->compress) : "",
			b->o->compress ? " " : "", (double)stored / 1048576.0,
			(double)rd / 1048576.0, pause);
		return;
	}
	if (b->live)
		fprintf(stderr, "%s: %s: %d device%s, %.1f MiB of COW data backed up into "
			"%s (stored: %s%s%.1f MiB); paused %.1f ms (%s, %.1f MiB copied "
			"while stopped)\n", cli_prog, quote_name(b->g.umid), b->ndev,
			b->ndev == 1 ? "" : "s",
			(double)data / 1048576.0, quote_name(b->dest), b->o->compress ?
			pack_name(b->o->compress) : "", b->o->compress ? " " : "",
			(double)stored / 1048576.0, b->pause_ms, method_names[b->method],
			(double)paused / 1048576.0);
	else
		fprintf(stderr, "%s: %d COW file%s, %.1f MiB of data backed up into %s "
			"(stored: %s%s%.1f MiB)\n", cli_prog, b->ndev, b->ndev == 1 ? "" : "s",
			(double)data / 1048576.0, quote_name(b->dest), b->o->compress ?
			pack_name(b->o->compress) : "", b->o->compress ? " " : "",
			(double)stored / 1048576.0);
}

void backup_end(struct backup *b, int status)
{
	if (status != 0 && status != EXIT_USAGE)
		cleanup(b);
	mc_close(&b->mc);
	for (int i = 0; i < b->ndev; i++) {
		if (b->dev[i].src >= 0)
			close(b->dev[i].src);
		afile_discard(&b->dev[i].af);
		afile_discard(&b->dev[i].zf);
		afile_discard(&b->dev[i].tf);
		table_free(&b->dev[i].ptab);
		table_free(&b->dev[i].er.tab);
		if (b->dev[i].scanning)
			scan_free(&b->dev[i].scan);
		free(b->dev[i].cbt_bits);
	}
	if (b->has_parent)
		point_free(&b->parent);
	if (b->dirfd >= 0)
		close(b->dirfd);
}

/* --- offline ---------------------------------------------------------------- */

int backup_offline(struct backup *b)
{
	const struct options *o = b->o;
	struct snap_ctx c = { .intr = &tool_interrupted };
	struct ubdk_cow *locks[MAX_DEV] = { 0 };
	int st = 0, ret;

	for (int i = 0; i < o->nfiles && st == 0; i++) {
		struct device *d = backup_device_new(b, -1);
		struct ubdk_err err = { 0 };
		struct ubdk_backing_check chk;
		char abs[PATH_MAX];

		snprintf(d->name, sizeof(d->name), "ubd%d", i);
		if (!realpath(o->files[i], abs)) {
			cli_error("%s: cannot open: %s", quote_name(o->files[i]), strerror(errno));
			st = EXIT_DEVICE;
			break;
		}
		snprintf(d->cow, sizeof(d->cow), "%s", abs);
		st = backup_open_source(d);
		if (st == 0)
			st = backup_read_header(d, "not made by uml_mkcow or the kernel");
		if (st)
			break;
		/* The kernel write-locks the COW of an open device. */
		if (ubdk_cow_open(d->cow, NULL, UBDK_OPEN_LOCK | UBDK_OPEN_NO_CHECK,
				  &locks[i], &err) < 0) {
			if (err.code == UBDK_E_LOCKED) {
				char prog[256];

				/* A command to paste into a shell: quoted. */
				cli_error("%s: in use by a running guest (locked); back it "
					  "up live: %s UMID DESTDIR", quote_name(d->cow),
					  quote_shell(prog, sizeof(prog),
						      cli_prog) ? prog : "uml_backup");
				st = EXIT_LOCKED;
			} else {
				cli_error("%s", tool_lib_msg(&err, d->cow));
				st = EXIT_DEVICE;
			}
			break;
		}
		if (ubdk_backing_check(&d->hdr, d->hdr.backing, &chk, &err) < 0 && !o->quiet)
			cli_error("%s: warning: %s", quote_name(d->cow), tool_lib_msg(&err,
										 d->hdr.backing));
		b->ndev++;
	}
	if (st == 0)
		st = backup_prepare_dest(b);
	if (st == 0)
		st = backup_try_reflink(b);
	/* Nobody writes: a plain copy is a point in time. */
	if (st == 0 && b->method != M_REFLINK)
		b->method = M_COPY;
	if (st == 0)
		st = backup_check_space(b);
	backup_utc_now(b->created, sizeof(b->created));
	for (int i = 0; st == 0 && i < b->ndev; i++) {
		struct snap_file f;

		backup_snap_of(&b->dev[i], &f);
		/*
		 * A stream (chain point, compressed backup) is written from the
		 * COW itself: nothing writes it, a copy would only be read once.
		 */
		ret = b->method == M_REFLINK || o->incremental || o->compress ? 0 :
		      snap_copy(&f, &c);
		if (ret < 0)
			st = backup_dest_error(&c, ret);
	}
	if (st == 0)
		st = backup_finish(b);
	for (int i = 0; i < MAX_DEV; i++)
		if (locks[i])
			ubdk_cow_close(locks[i]);
	return st;
}
