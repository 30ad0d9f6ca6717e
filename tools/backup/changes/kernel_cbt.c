/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kernel_cbt.c - the tracking source of a chain's incrementals (kernel_cbt.h).
 *
 * Granularity 64 KiB, the chunk size, makes device block k data chunk k of
 * the grid (data chunks start at the COW's data offset).  A changed block
 * also changed the COW bitmap bytes holding its sectors' bits, and the
 * header chunk is cheap: those metadata chunks are read with it.  Every
 * chunk read is still hashed and stored only if it differs from the
 * parent, as with the comparison source.
 */
#define _GNU_SOURCE
#include "changes/kernel_cbt.h"
#include "run/run.h"
#include "cli.h"
#include "quote.h"
#include "cbt_reply.h"
#include "ubdk_static.h"
#include "format/xstream.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tries of a command answered `busy` (a driver lock held by a task the
 * guest was running): a few, each a short wait apart. */
#define BUSY_TRIES 5

__attribute__((format(printf, 2, 3)))
static void note(struct backup *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b->cs.changes.note, sizeof(b->cs.changes.note), fmt, ap);
	va_end(ap);
}

/* What an inconsistent state means, for the note. */
static const char *reason_text(uint32_t reason)
{
	switch (reason) {
	case UBDK_CBT_MISSING: return "no tracking record (missing)";
	case UBDK_CBT_UNCLEAN: return "unclean shutdown";
	case UBDK_CBT_COW_CHANGED: return "cow-changed (the COW was written without tracking)";
	case UBDK_CBT_HEADER_CHANGED: return "header-changed (the COW header or device size changed)";
	case UBDK_CBT_CORRUPT: return "corrupt tracking record";
	case UBDK_CBT_LOST: return "lost (a change could not be recorded)";
	case UBDK_CBT_IO_ERROR: return "io-error (the tracking record could not be written)";
	default: return ubdk_cbt_reason_name((int)reason);
	}
}

/*
 * Send a `cbt` command, again while it answers busy.  0 with the reply
 * decoded in cr (-EINVAL in *parsed when it is not a `cbt` reply: a
 * kernel without the command), r holding its text until mc_reply_free;
 * or an exit status after a one-line error.
 */
static int cbt_command(struct backup *b, const char *cmd, bool stopped, struct mc_reply *r,
		       struct ubdk_cbt_reply *cr, int *parsed)
{
	int ret;

	for (int t = 0;; t++) {
		ret = mc_command(&b->gs.mc, cmd, r);
		if (ret < 0)
			break;
		*parsed = ubdk_cbt_reply_parse(r->text, cr);
		if (*parsed < 0 || cr->error != UBDK_CBT_REPLY_BUSY || t + 1 == BUSY_TRIES)
			return 0;
		mc_reply_free(r);
		/* Stopped, the lock's holder cannot run: only a short wait. */
		usleep(stopped ? 1000 : 20000);
	}
	if (ret == -EINTR)
		return EXIT_INTERRUPTED;
	cli_error("%s: '%s': %s", quote_name(b->gs.g.umid), quote_name(cmd), mc_strerror(ret));
	return EXIT_GUEST;
}

/*
 * Why a reply gives no tracking, in the words of the note; false when it
 * is the kind of reply expected.
 */
static bool refused(char *why, size_t len, const struct device *d, const struct mc_reply *r,
		    const struct ubdk_cbt_reply *cr, int parsed, int kind)
{
	if (parsed < 0 && r->err)
		snprintf(why, len, "the kernel has no changed-block tracking");
	else if (parsed < 0)
		snprintf(why, len, "%s: not a cbt reply: %.160s", d->name, r->text);
	else if (cr->kind == kind)
		return false;
	else if (cr->error == UBDK_CBT_REPLY_NOT_OPEN)
		snprintf(why, len, "%s is not open in the guest", d->name);
	else if (cr->error == UBDK_CBT_REPLY_BUSY)
		snprintf(why, len, "%s: tracking busy (%.*s)", d->name, (int)cr->msg_len, cr->msg);
	else
		snprintf(why, len, "%s: %.*s", d->name, (int)cr->msg_len, cr->msg);
	return true;
}

/* The grid chunks of device block k (granularity gran): data and bitmap. */
static void mark_block(const struct device *d, uint64_t *bits, uint64_t k, uint32_t gran)
{
	const struct chunk_grid *g = &d->pipe.grid;
	uint64_t dev0 = k * gran, len = gran, off, bits_off, bits_len, i;

	if (dev0 >= d->hdr.size)
		return;
	if (len > d->hdr.size - dev0)
		len = d->hdr.size - dev0;
	ubdk_geometry_locate(&d->hdr, &d->geo, dev0, len, &off, &bits_off, &bits_len);
	if (off < g->file_size) {
		i = grid_index(g, off);
		bits[i / 64] |= 1ULL << (i % 64);
	}
	/* The chunks of the bitmap bytes holding the bits of its sectors. */
	for (off = bits_off; off < bits_off + bits_len;
	     off = (off / g->chunk_size + 1) * g->chunk_size) {
		if (off >= g->data_offset || off >= g->file_size)
			break;
		i = grid_index(g, off);
		bits[i / 64] |= 1ULL << (i % 64);
	}
}

/*
 * Read a map or record file into grid chunk bits (OR'ed into *bits, made
 * if NULL), after checking it fits the device: granularity the chunk size,
 * the COW's device size.  false with the reason in why.
 */
static bool read_runs(struct device *d, const char *path, int kind, struct ubdk_cbt_info *info,
		      uint64_t **bits, char *why, size_t len)
{
	struct ubdk_cbt_file *f;
	struct ubdk_err err = { 0 };
	uint64_t start, count;
	int ret;

	if (ubdk_cbt_file_open(path, kind, d->hdr.size, &f, info, &err) < 0) {
		snprintf(why, len, "%.250s", err.msg);
		return false;
	}
	if (info->granularity != CHUNK_SIZE) {
		snprintf(why, len, "%s: tracking granularity %u is not the chunk size %u", d->name,
			 info->granularity, CHUNK_SIZE);
		ubdk_cbt_file_close(f);
		return false;
	}
	if (info->device_size != d->hdr.size) {
		snprintf(why, len, "%s: tracking device size %llu is not the COW's %llu", d->name,
			 (unsigned long long)info->device_size, (unsigned long long)d->hdr.size);
		ubdk_cbt_file_close(f);
		return false;
	}
	if (!*bits) {
		*bits = calloc((size_t)(d->pipe.grid.count + 63) / 64 + 1, 8);
		if (!*bits) {
			snprintf(why, len, "out of memory");
			ubdk_cbt_file_close(f);
			return false;
		}
	}
	/* The header chunk: one read, and nothing can be said about it. */
	(*bits)[0] |= 1;
	while ((ret = ubdk_cbt_file_next(f, &start, &count, &err)) == 1)
		for (uint64_t k = start; k < start + count; k++)
			mark_block(d, *bits, k, info->granularity);
	ubdk_cbt_file_close(f);
	if (ret < 0) {
		snprintf(why, len, "%.250s", err.msg);
		return false;
	}
	d->cbt.blocks += info->blocks;
	return true;
}

/*
 * Checkpoint device d under name (while stopped or not) and read the map
 * it wrote into *bits (NULL: only check it).  strict: the map must be the
 * consistent one from our last checkpoint (a tracking source); otherwise
 * it only tells which blocks this session wrote (all of them are in it,
 * consistent or not: the bitmap chunks the checkpoint wrote back).  1 with *bits, 0 when the
 * map cannot be used (why says why), or an exit status (negative:
 * -status) when the guest does not answer.
 */
static int checkpoint(struct backup *b, struct device *d, const char *name, bool stopped,
		      bool strict, uint64_t **bits, char *why, size_t len)
{
	struct ubdk_cbt_info info;
	struct ubdk_cbt_reply cr;
	struct mc_reply r;
	char cmd[160], map[PATH_MAX + 16], from[UBDK_CBT_NAME_MAX];
	int st, parsed;

	snprintf(cmd, sizeof(cmd), "cbt %s checkpoint %s", d->name, name);
	snprintf(from, sizeof(from), "%s", d->cbt.checkpoint);
	st = cbt_command(b, cmd, stopped, &r, &cr, &parsed);
	if (st)
		return -st;
	if (refused(why, len, d, &r, &cr, parsed, UBDK_CBT_REPLY_CHECKPOINT)) {
		mc_reply_free(&r);
		/* Nothing changed in the kernel: tracking goes on as it was. */
		return 0;
	}
	snprintf(d->cbt.checkpoint, sizeof(d->cbt.checkpoint), "%s", name);
	snprintf(map, sizeof(map), "%.*s", (int)cr.map_len, cr.map);
	mc_reply_free(&r);
	if (!bits)
		return 1;
	if (!map[0]) {
		snprintf(why, len, "%s: the checkpoint named no map", d->name);
		return 0;
	}
	if (!read_runs(d, map, UBDK_CBT_KIND_MAP, &info, bits, why, len))
		return 0;
	if (!strict)
		return 1;
	/* The map is of the changes since the checkpoint we set last. */
	if (strcmp(info.from, from) || strcmp(info.name, name)) {
		snprintf(why, len, "%s: tracking map from %s to %s, expected from %s to %s",
			 d->name, info.from[0] ? info.from : "(none)", info.name, from, name);
		return 0;
	}
	if (info.reason) {
		snprintf(why, len, "tracking inconsistent: %s", reason_text(info.reason));
		return 0;
	}
	return 1;
}

/* `cbt ubdN`: the device's state; 1 tracked since the parent, 0 not (why). */
static int status(struct backup *b, struct device *d, char *why, size_t len)
{
	struct ubdk_cbt_reply cr;
	struct mc_reply r;
	char cmd[64];
	int st, parsed;

	snprintf(cmd, sizeof(cmd), "cbt %s", d->name);
	st = cbt_command(b, cmd, false, &r, &cr, &parsed);
	if (st)
		return -st;
	if (refused(why, len, d, &r, &cr, parsed, UBDK_CBT_REPLY_STATUS)) {
		mc_reply_free(&r);
		return 0;
	}
	mc_reply_free(&r);
	d->cbt.tracked = true;
	snprintf(d->cbt.checkpoint, sizeof(d->cbt.checkpoint), "%s", cr.name);
	if (cr.reason) {
		snprintf(why, len, "tracking inconsistent: %s", reason_text(cr.reason));
		return 0;
	}
	if (cr.granularity != CHUNK_SIZE) {
		snprintf(why, len, "%s: tracking granularity %u is not the chunk size %u",
			 d->name, cr.granularity, CHUNK_SIZE);
		return 0;
	}
	if (cr.size != d->hdr.size) {
		snprintf(why, len, "%s: tracking device size %llu is not the COW's %llu",
			 d->name, (unsigned long long)cr.size, (unsigned long long)d->hdr.size);
		return 0;
	}
	if (b->chain.has_parent && strcmp(d->cbt.checkpoint, b->chain.parent.m.point)) {
		snprintf(why, len, "tracking checkpoint %s is not the parent %s",
			 d->cbt.checkpoint[0] ? d->cbt.checkpoint : "(none)", b->chain.parent.m.point);
		return 0;
	}
	return 1;
}

static bool grid_of(struct device *d, char *why, size_t len)
{
	if (!grid_init(&d->pipe.grid, (uint64_t)d->st.st_size, d->geo.data_offset, CHUNK_SIZE)) {
		snprintf(why, len, "%s: data offset past the COW's end", d->name);
		return false;
	}
	return true;
}

static int track_start(struct backup *b)
{
	char why[sizeof(b->cs.changes.note)] = "", name[64];
	bool all = true;
	int ret;

	/* A backup that is not an incremental has no source: never tracking. */
	if (!b->chain.has_parent) {
		b->cs.changes.kind = CHANGES_COMPARISON;
		b->cs.changes.all = true;
	}
	for (int i = 0; i < b->ndev; i++) {
		char w[sizeof(why)] = "";

		ret = status(b, &b->dev[i], w, sizeof(w));
		if (ret < 0)
			return -ret;
		if (ret == 0 && all) {
			snprintf(why, sizeof(why), "%s", w);
			all = false;
		}
	}
	if (!b->chain.has_parent)
		return 0;
	if (!all) {
		note(b, "%s", why);
		return 0;
	}
	/* Every device tracked since the parent: cut at "<id>.pre". */
	snprintf(name, sizeof(name), "%s.pre", b->point_hex);
	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];

		if (!grid_of(d, why, sizeof(why))) {
			note(b, "%s", why);
			changes_compare_all(b);
			return 0;
		}
		ret = checkpoint(b, d, name, false, true, &d->cbt.bits, why, sizeof(why));
		if (ret < 0)
			return -ret;
		if (ret == 0) {
			note(b, "%s", why);
			changes_compare_all(b);
			return 0;
		}
	}
	b->cs.changes.kind = CHANGES_TRACKING;
	b->cs.changes.all = false;
	note(b, "changed-block tracking since checkpoint %s", b->chain.parent.m.point);
	return 0;
}

/* Rescan device d's chunks in bits (a tracking map's), into the scratch copy. */
static int rescan(struct device *d, const uint64_t *bits, char *msg, size_t len)
{
	struct changes c = { .kind = CHANGES_TRACKING, .all = false };
	uint64_t before = d->pipe.scan.written;
	int ret;

	c.bits = (uint64_t *)bits;
	ret = scan_changes(&d->pipe.scan, &c);
	d->pipe.paused_bytes += d->pipe.scan.written - before;
	if (ret < 0)
		snprintf(msg, len, "%s", d->pipe.scan.msg);
	return ret;
}

static int kernel_cbt_next(struct backup *b)
{
	char name[64], why[300];
	int ret;

	if (!b->chain.has_parent || b->cs.changes.kind != CHANGES_TRACKING)
		return 0;
	b->cs.track_round++;
	snprintf(name, sizeof(name), "%s.r%d", b->point_hex, b->cs.track_round);
	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];
		uint64_t *bits = NULL;

		ret = checkpoint(b, d, name, false, true, &bits, why, sizeof(why));
		if (ret < 0) {
			free(bits);
			return -ret;
		}
		if (ret == 0) {
			/*
			 * The chunks before are in the scratch copy; what this
			 * round would have told, the stopped comparison will.
			 */
			free(bits);
			note(b, "tracking lost during the backup: %s", why);
			changes_compare_all(b);
			return 0;
		}
		ret = rescan(d, bits, why, sizeof(why));
		free(bits);
		d->pipe.paused_bytes = 0;
		if (ret < 0) {
			if (ret == -EINTR)
				return EXIT_INTERRUPTED;
			cli_error("%s", why);
			return EXIT_FAILED;
		}
	}
	return 0;
}

int kernel_cbt_pause(struct backup *b, char *msg, size_t msglen)
{
	bool tracking = b->chain.has_parent && b->cs.changes.kind == CHANGES_TRACKING;
	char why[300];
	int ret;

	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];
		uint64_t *bits = NULL;

		if (!d->cbt.tracked)
			continue;
		if (!grid_of(d, why, sizeof(why))) {
			snprintf(msg, msglen, "%s", why);
			return -EINVAL;
		}
		ret = checkpoint(b, d, b->point_hex, true, tracking, &bits, why, sizeof(why));
		if (ret < 0) {
			free(bits);
			snprintf(msg, msglen, "%s: 'cbt %s checkpoint': the guest does not answer",
				 b->gs.g.umid, d->name);
			return ret == -EXIT_INTERRUPTED ? -EINTR : -EIO;
		}
		if (ret == 0 && tracking) {
			free(bits);
			/* The comparison source's finish reads every chunk, while stopped. */
			note(b, "tracking lost at the pause: %s", why);
			changes_compare_all(b);
			tracking = false;
			continue;
		}
		if (ret == 0) {
			/* Not a tracking point: the next incremental compares. */
			if (!b->o->quiet)
				cli_error("%s: warning: %s: no checkpoint for the next incremental: %s",
					  quote_name(b->gs.g.umid), d->name, why);
			free(bits);
			continue;
		}
		if (!bits)
			continue;
		if (!tracking) {
			/*
			 * The checkpoint wrote the COW bitmap back, from a thread
			 * the tracer does not watch: the metadata chunks again.
			 * Without the tracer the copy is made after this anyway.
			 */
			if (b->method != M_TRACK) {
				free(bits);
				continue;
			}
			for (uint64_t w = 0; w <= d->pipe.grid.nmeta / 64; w++)
				if (w * 64 + 64 > d->pipe.grid.nmeta)
					bits[w] &= d->pipe.grid.nmeta % 64 ?
						   (1ULL << (d->pipe.grid.nmeta % 64)) - 1 : ~0ULL;
			for (uint64_t w = d->pipe.grid.nmeta / 64 + 1; w <= d->pipe.grid.count / 64; w++)
				bits[w] = 0;
		}
		if (b->chain.has_parent) {
			ret = rescan(d, bits, msg, msglen);
		} else {
			/* A full point: copy those chunks' bytes again. */
			ret = 0;
			for (uint64_t k = 0; k < d->pipe.grid.count && ret == 0; k++) {
				uint64_t off, len;
				uint8_t buf[4096];

				if (!(bits[k / 64] >> (k % 64) & 1))
					continue;
				grid_chunk(&d->pipe.grid, k, &off, &len);
				for (uint64_t o = off; o < off + len && ret == 0; o += sizeof(buf)) {
					size_t n = off + len - o < sizeof(buf) ? (size_t)(off + len - o)
						   : sizeof(buf);
					ssize_t got = pread(d->src, buf, n, (off_t)o);

					if (got < 0) {
						ret = -errno;
						snprintf(msg, msglen, "%s: reading: %s", d->cow,
							 strerror(errno));
					} else if (got > 0) {
						ret = stream_write_all(d->out.af.fd, buf, (size_t)got, (off_t)o);
						if (ret < 0)
							snprintf(msg, msglen, "%s: writing: %s",
								 d->out.file, strerror(-ret));
						d->pipe.paused_bytes += (uint64_t)got;
					}
				}
			}
		}
		free(bits);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* --- offline ---------------------------------------------------------------- */

/* Does the record (CLEAN) describe this COW as it is now? */
static bool same_cow(const struct device *d, const struct ubdk_cbt_info *in)
{
	int64_t mt = (int64_t)d->st.st_mtim.tv_sec * 1000000000 + d->st.st_mtim.tv_nsec;

	return in->id.cow_size == (uint64_t)d->st.st_size && in->id.cow_mtime_ns == mt &&
	       in->id.backing_size == d->hdr.size && in->id.backing_mtime == d->hdr.mtime;
}

static void track_offline(struct backup *b)
{
	char why[300], path[PATH_MAX + 8];

	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];
		struct ubdk_cbt_info info;

		snprintf(path, sizeof(path), "%s%s", d->cow, UBDK_CBT_RECORD_SUFFIX);
		if (access(path, F_OK) < 0) {
			snprintf(why, sizeof(why), "offline: %s has no tracking record", d->name);
			goto compare;
		}
		if (!grid_of(d, why, sizeof(why)) ||
		    !read_runs(d, path, UBDK_CBT_KIND_RECORD, &info, &d->cbt.bits, why, sizeof(why)))
			goto compare;
		if (info.state != UBDK_CBT_STATE_CLEAN) {
			snprintf(why, sizeof(why), "tracking inconsistent: unclean shutdown "
				 "(%s: the record is open)", d->name);
			goto compare;
		}
		if (!same_cow(d, &info)) {
			snprintf(why, sizeof(why), "tracking inconsistent: %s",
				 reason_text(UBDK_CBT_COW_CHANGED));
			goto compare;
		}
		if (info.reason) {
			snprintf(why, sizeof(why), "tracking inconsistent: %s",
				 reason_text(info.reason));
			goto compare;
		}
		if (strcmp(info.name, b->chain.parent.m.point)) {
			snprintf(why, sizeof(why), "tracking checkpoint %s is not the parent %s",
				 info.name[0] ? info.name : "(none)", b->chain.parent.m.point);
			goto compare;
		}
	}
	b->cs.changes.kind = CHANGES_TRACKING;
	b->cs.changes.all = false;
	note(b, "offline: the tracking record since checkpoint %s", b->chain.parent.m.point);
	return;
compare:
	note(b, "%s", why);
	changes_compare_all(b);
}

void kernel_cbt_advance(struct backup *b)
{
	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];
		struct ubdk_cbt_info info;
		struct ubdk_cbt_file *f;
		struct ubdk_cbt_identity id;
		struct ubdk_cbt *c = NULL;
		struct ubdk_err err = { 0 };
		char path[PATH_MAX + 8];
		struct stat st;
		int ret;

		snprintf(path, sizeof(path), "%s%s", d->cow, UBDK_CBT_RECORD_SUFFIX);
		if (ubdk_cbt_file_open(path, UBDK_CBT_KIND_RECORD, d->hdr.size, &f, &info,
				       NULL) < 0)
			continue;
		ubdk_cbt_file_close(f);
		/* An OPEN record may be a session's: left for the kernel to judge. */
		if (info.state != UBDK_CBT_STATE_CLEAN)
			continue;
		/* The point holds the COW as read: only if it is still that. */
		if (fstat(d->src, &st) < 0 || st.st_size != d->st.st_size ||
		    st.st_mtim.tv_sec != d->st.st_mtim.tv_sec ||
		    st.st_mtim.tv_nsec != d->st.st_mtim.tv_nsec)
			continue;
		id = (struct ubdk_cbt_identity){ (uint64_t)st.st_size,
			(int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
			d->hdr.size, d->hdr.mtime };
		ret = ubdk_cbt_new(d->hdr.size, info.granularity, b->point_hex, 0, &c, &err);
		if (ret == 0)
			ret = ubdk_cbt_save(c, path, UBDK_CBT_STATE_CLEAN, &id, &err);
		ubdk_cbt_free(c);
		if (ret < 0 && !b->o->quiet)
			cli_error("warning: %s: the tracking record stays at the parent: %s",
				  d->name, err.msg);
	}
}

static int kernel_cbt_begin(struct backup *b, bool *serves, char *why, size_t whylen)
{
	int st = 0;

	(void)why;
	(void)whylen;
	/* The reason it does not serve is the manifest's changes_note. */
	if (b->live)
		st = track_start(b);
	else if (b->chain.has_parent)
		track_offline(b);
	*serves = b->chain.has_parent && b->cs.changes.kind == CHANGES_TRACKING;
	return st;
}

/* The pause's checkpoint (kernel_cbt_pause) rescanned all it needs. */
static int kernel_cbt_finish(struct backup *b, struct snap_ctx *c)
{
	(void)b;
	(void)c;
	return 0;
}

const struct change_source changes_kernel_cbt = {
	.begin = kernel_cbt_begin,
	.next = kernel_cbt_next,
	.finish = kernel_cbt_finish,
};
