/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nbdkit-ubd-plugin - serve the merged view of a UML COW file and its
 * backing file over NBD:  nbdkit ubd guest.cow [backing=PATH] [readonly=true]
 *
 * Everything about the format goes through libubdk (cow/ubdk_cow.h): the
 * merged view, writes in the kernel's order, discard, flush, extents, the
 * backing checks and the kernel's host locks.  This file only maps NBD
 * requests onto it.  One library handle serves every connection; the
 * handle is not thread-safe, so each request takes `lock` around its
 * library calls.
 */
#define NBDKIT_API_VERSION 2

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-plugin.h>

#include "ubdk_cow.h"

/* The NBD protocol's limit on the minimum block size. */
#define NBD_MAX_MINIMUM 65536U
/*
 * Sector sizes served: those uml_mkcow makes.  The library takes any power
 * of two, but no UML kernel or tool makes the others, and they cannot be
 * served well: with 1 every byte is a sector (a 64 MiB copy took 40 s),
 * and past 64 KiB no NBD block size fits (with 2^31 every connection
 * died).
 */
#define SECTOR_MIN 512U
#define SECTOR_MAX 65536U
/* What we tell clients to send at most per request (nbdkit's own limit
 * is 64 MiB). */
#define MAX_REQUEST (32U << 20)

static char *cow_path;            /* file= (absolute) */
static char *backing_override;    /* backing= (absolute), or NULL */
static bool readonly;             /* readonly=true */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct ubdk_cow *cow;      /* guarded by lock */
static uint32_t ss;               /* sector size, fixed once open */
static uint64_t size;             /* device size in bytes */
/* The backing path .get_ready used, made absolute, for .after_fork. */
static char *reopen_backing;

/* Report a library error: its one-line message, and its errno for the
 * client. */
static int fail(const struct ubdk_err *err)
{
	nbdkit_set_error(err->errnum ? err->errnum : EIO);
	nbdkit_error("%s", err->msg[0] ? err->msg : "unknown error");
	return -1;
}

static void ubd_unload(void)
{
	free(cow_path);
	free(backing_override);
	free(reopen_backing);
}

static int ubd_config(const char *key, const char *value)
{
	char **slot;
	int r;

	if (strcmp(key, "readonly") == 0) {
		r = nbdkit_parse_bool(value);
		if (r < 0)
			return -1;
		readonly = r;
		return 0;
	}
	if (strcmp(key, "file") == 0)
		slot = &cow_path;
	else if (strcmp(key, "backing") == 0)
		slot = &backing_override;
	else {
		nbdkit_error("unknown parameter '%s'", key);
		return -1;
	}
	if (*slot) {
		nbdkit_error("%s given twice", key);
		return -1;
	}
	/* Absolute now: the server may change directory before opening. */
	*slot = nbdkit_absolute_path(value);
	return *slot ? 0 : -1;
}

static int ubd_config_complete(void)
{
	if (!cow_path) {
		nbdkit_error("no COW file given: nbdkit ubd FILE.cow");
		return -1;
	}
	return 0;
}

#define ubd_config_help \
	"[file=]<COW>          The COW file (required).\n" \
	"backing=<PATH>        Backing file instead of the one in the header.\n" \
	"readonly=true         Open the COW read-only (read lock)."

static void ubd_dump_plugin(void)
{
	printf("ubdk_version=%s\n", ubdk_version());
}

/*
 * Open the pair as the kernel opens a ubd device: the same size and mtime
 * checks on the backing file, and the same fcntl locks (a write lock on
 * the COW unless read-only, a read lock on the backing file), so that a
 * COW a running guest holds is refused and a guest cannot open one we
 * hold.  A COW whose present sectors lie past its end is refused too, so
 * that no request fails half-way later.
 */
static int open_pair(const char *backing)
{
	struct ubdk_err err = { 0 };
	int flags = UBDK_OPEN_LOCK | (readonly ? 0 : UBDK_OPEN_RDWR);

	if (ubdk_cow_open(cow_path, backing, flags, &cow, &err) < 0)
		return fail(&err);
	ss = ubdk_cow_header(cow)->sectorsize;
	if (ss < SECTOR_MIN || ss > SECTOR_MAX) {
		nbdkit_error("%s: sector size %u is not served (%u to %u bytes, as "
			     "uml_mkcow makes them and a UML kernel reads them); "
			     "uml_moo can merge it", cow_path, ss, SECTOR_MIN,
			     SECTOR_MAX);
		ubdk_cow_close(cow);
		cow = NULL;
		return -1;
	}
	if (ubdk_cow_check_data(cow, &err) < 0) {
		fail(&err);
		ubdk_cow_close(cow);
		cow = NULL;
		return -1;
	}
	size = ubdk_cow_header(cow)->size;
	return 0;
}

/*
 * fcntl locks belong to a process and are not inherited: when nbdkit
 * forks after .get_ready (into the background, or for --run, where the
 * parent runs the command and lives on), the process that serves must
 * take them itself, and the parent must not keep them.  So .get_ready
 * opens the pair to check it, where every refusal (not a COW, a short
 * bitmap, a missing or changed backing file, a lock held by a guest) is
 * seen by the user and makes nbdkit exit non-zero before it serves
 * anything, and closes it again; .after_fork, in the serving process,
 * opens it for good.  A guest that starts in between wins the lock and
 * .after_fork refuses: the locks still keep the two apart.
 */
static int ubd_get_ready(void)
{
	if (open_pair(backing_override) < 0)
		return -1;
	/* nbdkit may change directory to / before .after_fork, and a
	 * header may hold a relative backing path. */
	reopen_backing = nbdkit_absolute_path(ubdk_cow_backing_path(cow));
	/* Nothing was written: closing writes nothing. */
	ubdk_cow_close(cow);
	cow = NULL;
	return reopen_backing ? 0 : -1;
}

static int ubd_after_fork(void)
{
	return open_pair(reopen_backing);
}

/* A clean shutdown leaves everything acknowledged durable, as a flush. */
static void ubd_cleanup(void)
{
	struct ubdk_err err = { 0 };

	if (!cow)
		return;
	if (!readonly && ubdk_cow_flush(cow, &err) < 0)
		fail(&err);
	ubdk_cow_close(cow);
	cow = NULL;
}

/* Every connection shares the one handle; the handle is only a token. */
static void *ubd_open(int ro)
{
	(void)ro;
	return &cow;
}

/*
 * When a client goes, the bitmap chunks it changed are written to the
 * file (no fsync: durability is what flush and FUA are for), so that
 * the COW file is consistent on disk while the server keeps running.
 */
static void ubd_close(void *handle)
{
	struct ubdk_err err = { 0 };

	(void)handle;
	pthread_mutex_lock(&lock);
	if (cow && ubdk_cow_dirty(cow) && ubdk_cow_writeback(cow, &err) < 0)
		fail(&err);
	pthread_mutex_unlock(&lock);
}

static int64_t ubd_get_size(void *handle)
{
	(void)handle;
	return (int64_t)size;
}

static int ubd_block_size(void *handle, uint32_t *minimum,
			  uint32_t *preferred, uint32_t *maximum)
{
	(void)handle;
	/* Smaller or unaligned requests still work (read-modify-write), but
	 * cost a read: tell clients the COW's sector size. */
	*minimum = ss < NBD_MAX_MINIMUM ? ss : NBD_MAX_MINIMUM;
	*preferred = ss > 4096 ? ss : 4096;
	if (*preferred < *minimum)
		*preferred = *minimum;
	*maximum = MAX_REQUEST > *preferred ? MAX_REQUEST : *preferred;
	return 0;
}

static int ubd_can_write(void *handle)
{
	(void)handle;
	return !readonly;
}

/*
 * What the plugin always can: flush, trim, zero, extents, and also:
 *
 * Multi-conn: all connections share one handle; writes, trims, zeroes
 * and flushes run under one mutex, a write's bits are in the handle
 * before its reply (so any later read, planned under the same mutex,
 * sees it), and a flush writes back the whole bitmap and fsyncs the COW
 * file, covering every write acknowledged on any connection before it.
 * That is what the NBD spec asks of a multi-conn server.
 *
 * Fast zero: zeroing whole sectors is an fallocate of the COW's data
 * area and bits set in memory, never a write of zero bytes; only partial
 * edge sectors (at most two, below the advertised minimum block size) are
 * written.  Where the file system cannot fallocate, .zero fails with
 * ENOTSUP and nbdkit falls back to writes only when the client did not
 * ask for a fast zero.
 */
static int ubd_yes(void *handle)
{
	(void)handle;
	return 1;
}

static int ubd_can_fua(void *handle)
{
	(void)handle;
	return NBDKIT_FUA_NATIVE;
}

static int ubd_pread(void *handle, void *buf, uint32_t count, uint64_t off,
		     uint32_t flags)
{
	struct ubdk_err err = { 0 };
	int r;

	(void)handle;
	(void)flags;
	/*
	 * Only the planning looks at the bitmap (and may load it) under the
	 * lock; the file reads run unlocked, so that a client's parallel
	 * requests (nbdcopy keeps many in flight) read in parallel, as they
	 * do from the file plugin.
	 */
	while (count > 0) {
		struct ubdk_run runs[64];
		uint64_t end;
		size_t n;

		pthread_mutex_lock(&lock);
		r = ubdk_cow_plan_read(cow, off, count, runs, 64, &n, &end, &err);
		pthread_mutex_unlock(&lock);
		if (r == 0)
			r = ubdk_cow_read_planned(cow, runs, n, buf, off, end,
						  &err);
		if (r < 0)
			return fail(&err);
		buf = (char *)buf + (end - off);
		count -= (uint32_t)(end - off);
		off = end;
	}
	return 0;
}

/* End of the sector holding byte off - 1, clipped to the device (the last
 * sector may be short). */
static uint64_t round_up(uint64_t off)
{
	uint64_t up = (off + ss - 1) / ss * ss;

	return up < size ? up : size;
}

/* Does [off, off + len) cover whole sectors only, as the library wants? */
static bool whole_sectors(uint64_t off, uint64_t len)
{
	return off % ss == 0 && (len % ss == 0 || off + len == size);
}

/*
 * Write through the library; requests that start or end inside a sector
 * (clients that ignore the minimum block size) read the edge sectors
 * through the merged view first.  Called with lock held, which makes the
 * read-modify-write atomic against other requests.
 */
static int write_locked(const void *buf, uint64_t len, uint64_t off,
			struct ubdk_err *err)
{
	uint64_t lo, hi, last;
	char *bounce;
	int r;

	if (whole_sectors(off, len))
		return ubdk_cow_pwrite(cow, buf, len, off, err);
	lo = off / ss * ss;
	hi = round_up(off + len);
	last = (hi - 1) / ss * ss;
	bounce = malloc(hi - lo);
	if (!bounce) {
		err->errnum = ENOMEM;
		snprintf(err->msg, sizeof(err->msg), "%s: out of memory",
			 cow_path);
		return -ENOMEM;
	}
	r = 0;
	if (off != lo)
		r = ubdk_cow_pread(cow, bounce, hi - lo < ss ? hi - lo : ss,
				   lo, err);
	if (r >= 0 && off + len != hi && (last != lo || off == lo))
		r = ubdk_cow_pread(cow, bounce + (last - lo), hi - last, last,
				   err);
	if (r >= 0) {
		memcpy(bounce + (off - lo), buf, len);
		r = ubdk_cow_pwrite(cow, bounce, hi - lo, lo, err);
	}
	free(bounce);
	return r;
}

/* Zero bytes that do not fill a sector: written, as zeros. */
static int zero_edge_locked(uint64_t len, uint64_t off, struct ubdk_err *err)
{
	static const char zeros[NBD_MAX_MINIMUM];
	char *buf;
	int r;

	if (len == 0)
		return 0;
	if (len <= sizeof(zeros))
		return write_locked(zeros, len, off, err);
	buf = calloc(1, len);
	if (!buf) {
		err->errnum = ENOMEM;
		snprintf(err->msg, sizeof(err->msg), "%s: out of memory",
			 cow_path);
		return -ENOMEM;
	}
	r = write_locked(buf, len, off, err);
	free(buf);
	return r;
}

/* FUA: the request is durable, bitmap included, before we reply. */
static int finish_locked(int r, uint32_t flags, struct ubdk_err *err)
{
	if (r >= 0 && (flags & NBDKIT_FLAG_FUA))
		r = ubdk_cow_flush(cow, err);
	return r;
}

static int ubd_pwrite(void *handle, const void *buf, uint32_t count,
		      uint64_t off, uint32_t flags)
{
	struct ubdk_err err = { 0 };
	int r;

	(void)handle;
	pthread_mutex_lock(&lock);
	r = finish_locked(write_locked(buf, count, off, &err), flags, &err);
	pthread_mutex_unlock(&lock);
	return r < 0 ? fail(&err) : 0;
}

static int ubd_flush(void *handle, uint32_t flags)
{
	struct ubdk_err err = { 0 };
	int r;

	(void)handle;
	(void)flags;
	pthread_mutex_lock(&lock);
	r = ubdk_cow_flush(cow, &err);
	pthread_mutex_unlock(&lock);
	return r < 0 ? fail(&err) : 0;
}

/* The whole sectors inside [off, off + len): [*lo, *hi), maybe empty. */
static void inner_sectors(uint64_t off, uint64_t len, uint64_t *lo,
			  uint64_t *hi)
{
	*lo = round_up(off);
	*hi = off + len == size ? size : (off + len) / ss * ss;
	if (*hi < *lo)
		*hi = *lo;
}

/*
 * Discard or zero whole sectors as the ubd driver does on a COW device:
 * the data area is punched (trim) or zeroed in place, and the sectors are
 * marked present, so that they read as zeros and no longer from the
 * backing file.  Where one fallocate mode is missing the other gives the
 * same merged view.
 */
static int discard_locked(uint64_t lo, uint64_t hi, bool zero,
			  struct ubdk_err *err)
{
	int r;

	if (hi == lo)
		return 0;
	r = ubdk_cow_discard(cow, lo, hi - lo, zero, err);
	if (r == -EOPNOTSUPP)
		r = ubdk_cow_discard(cow, lo, hi - lo, !zero, err);
	return r;
}

/*
 * NBD trim is advisory: the partial sectors at its edges keep their data
 * (zeroing them would cost a write), and a file system that cannot punch
 * holes leaves everything as it was.
 */
static int ubd_trim(void *handle, uint32_t count, uint64_t off,
		    uint32_t flags)
{
	struct ubdk_err err = { 0 };
	uint64_t lo, hi;
	int r;

	(void)handle;
	inner_sectors(off, count, &lo, &hi);
	pthread_mutex_lock(&lock);
	r = discard_locked(lo, hi, false, &err);
	if (r == -EOPNOTSUPP)
		r = 0;
	r = finish_locked(r, flags, &err);
	pthread_mutex_unlock(&lock);
	return r < 0 ? fail(&err) : 0;
}

static int ubd_zero(void *handle, uint32_t count, uint64_t off,
		    uint32_t flags)
{
	struct ubdk_err err = { 0 };
	uint64_t lo, hi;
	int r;

	(void)handle;
	inner_sectors(off, count, &lo, &hi);
	pthread_mutex_lock(&lock);
	/* Whole sectors first: if fallocate is missing nothing has changed
	 * yet, and nbdkit may fall back to writing zeros. */
	r = discard_locked(lo, hi, !(flags & NBDKIT_FLAG_MAY_TRIM), &err);
	if (r == -EOPNOTSUPP) {
		pthread_mutex_unlock(&lock);
		nbdkit_set_error(ENOTSUP);
		return -1;
	}
	if (r >= 0 && hi == lo)
		r = zero_edge_locked(count, off, &err);
	else if (r >= 0) {
		r = zero_edge_locked(lo - off, off, &err);
		if (r >= 0)
			r = zero_edge_locked(off + count - hi, hi, &err);
	}
	r = finish_locked(r, flags, &err);
	pthread_mutex_unlock(&lock);
	return r < 0 ? fail(&err) : 0;
}

/*
 * Extents from the library's runs: sectors in the COW are data, sectors
 * read from the backing file are data, and zero runs (past the backing's
 * end, or wholly inside a hole of the backing file) are holes that read
 * as zeros.
 */
static int ubd_extents(void *handle, uint32_t count, uint64_t off,
		       uint32_t flags, struct nbdkit_extents *extents)
{
	struct ubdk_err err = { 0 };
	struct ubdk_run run;
	uint64_t pos = off / ss, end = (off + count + ss - 1) / ss;
	int r;

	(void)handle;
	pthread_mutex_lock(&lock);
	while ((r = ubdk_cow_next_extent(cow, &pos, end, &run, &err)) > 0) {
		uint64_t from = run.start * ss, to = (run.start + run.count) * ss;
		uint32_t type = run.src == UBDK_RUN_ZERO ?
			NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO : 0;

		if (to > size)
			to = size;
		if (nbdkit_add_extent(extents, from, to - from, type) < 0) {
			pthread_mutex_unlock(&lock);
			return -1;
		}
		if (flags & NBDKIT_FLAG_REQ_ONE)
			break;
	}
	pthread_mutex_unlock(&lock);
	return r < 0 ? fail(&err) : 0;
}

static struct nbdkit_plugin plugin = {
	.name = "ubd",
	.longname = "nbdkit UML COW (ubd) plugin",
	.version = UBDK_VERSION_STRING,
	.description = "Serve the merged view of a UML COW file and its "
		       "backing file",
	.unload = ubd_unload,
	.config = ubd_config,
	.config_complete = ubd_config_complete,
	.config_help = ubd_config_help,
	.magic_config_key = "file",
	.dump_plugin = ubd_dump_plugin,
	.get_ready = ubd_get_ready,
	.after_fork = ubd_after_fork,
	.cleanup = ubd_cleanup,
	.open = ubd_open,
	.close = ubd_close,
	.get_size = ubd_get_size,
	.block_size = ubd_block_size,
	.can_write = ubd_can_write,
	.can_flush = ubd_yes,
	.can_fua = ubd_can_fua,
	.can_multi_conn = ubd_yes,
	.can_trim = ubd_yes,
	.can_zero = ubd_yes,
	.can_fast_zero = ubd_yes,
	.can_extents = ubd_yes,
	.pread = ubd_pread,
	.pwrite = ubd_pwrite,
	.flush = ubd_flush,
	.trim = ubd_trim,
	.zero = ubd_zero,
	.extents = ubd_extents,
	.errno_is_preserved = 0,
};

/* Requests run in parallel up to the library, which takes them one at a
 * time (lock). */
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

NBDKIT_REGISTER_PLUGIN(plugin)
