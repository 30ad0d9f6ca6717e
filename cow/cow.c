/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An open COW file: the merged view and writes through, over bmap.c's bitmap. */
#include "internal.h"
#include "ubdk_os.h"

#include <errno.h>
#include <string.h>

struct ubdk_cow {
	struct ubdk_header hdr;
	struct ubdk_geometry geo;
	int flags;
	int fd;
	int backing_fd;
	uint64_t cow_file_size;
	uint64_t backing_size;
	struct ubdk_bmap *bmap;
	struct ubdk_iov *scratch;  /* IOV_BATCH pieces of a read, mapped once:
	                              not on the stack, which is a kernel
	                              stack inside UML */
	char *path;
	char *backing_path;
};

/* Pieces of an iovec array handed to one system call at a time: Linux's
 * IOV_MAX, so that a request's whole array goes in one call. */
#define IOV_BATCH 1024

static char *dup_string(const char *s)
{
	size_t len = strlen(s) + 1;
	char *d = ubdk_os_alloc(len);

	if (d)
		memcpy(d, s, len);
	return d;
}

static int sys_fail(struct ubdk_err *err, int ret, const char *what,
		    const char *path)
{
	/* No strerror() for nobody: the UML I/O thread passes no err. */
	if (!err)
		return ret;
	return ubdk_fail(err, ret == -ENOMEM ? UBDK_E_NOMEM : UBDK_E_SYS,
			 -ret, "%s: %s: %s", path, what, strerror(-ret));
}

/* The same, about the COW (file = UBDK_FILE_COW). */
static int cow_fail(const struct ubdk_cow *cow, struct ubdk_err *err, int ret,
		    const char *what)
{
	ret = sys_fail(err, ret, what, cow->path);
	if (err)
		err->file = UBDK_FILE_COW;
	return ret;
}

static int backing_read_fail(const struct ubdk_cow *cow, struct ubdk_err *err,
			     int ret)
{
	ret = sys_fail(err, ret, "reading backing file", cow->backing_path);
	if (err)
		err->file = UBDK_FILE_BACKING;
	return ret;
}

static int bitmap_fail(struct ubdk_cow *cow, struct ubdk_err *err, int ret)
{
	if (ret == -ERANGE)
		return ubdk_fail(err, UBDK_E_RANGE, ERANGE,
				 "%s: write beyond the sectors its bitmap "
				 "covers", cow->path);
	return cow_fail(cow, err, ret, "reading bitmap");
}

int ubdk_header_read_fd(int fd, const char *name, struct ubdk_header *hdr,
			struct ubdk_geometry *geo, struct ubdk_err *err)
{
	uint8_t *buf = ubdk_os_alloc(UBDK_HDR_MAX_SIZE);
	size_t got;
	int ret;

	if (!buf)
		return sys_fail(err, -ENOMEM, "reading header", ubdk_name(name));
	ret = ubdk_os_pread(fd, buf, UBDK_HDR_MAX_SIZE, 0, &got);
	if (ret < 0)
		ret = sys_fail(err, ret, "reading header", ubdk_name(name));
	else
		ret = ubdk_header_decode(buf, got, name, hdr, err);
	ubdk_os_free(buf);
	if (ret < 0)
		return ret;
	return ubdk_header_geometry(hdr, name, geo, err);
}

static int check_bitmap_length(struct ubdk_cow *cow, struct ubdk_err *err)
{
	const struct ubdk_geometry *g = &cow->geo;

	/* The kernel needs bitmap_len bytes; slack after them may be missing. */
	if (cow->cow_file_size < g->bitmap_offset + g->bitmap_len)
		return ubdk_fail(err, UBDK_E_SHORT_BITMAP, EINVAL,
				 "%s: file is %llu bytes but its bitmap ends at "
				 "%llu: the COW file was cut short", cow->path,
				 (unsigned long long)cow->cow_file_size,
				 (unsigned long long)(g->bitmap_offset +
						      g->bitmap_len));
	return 0;
}

static int lock_file(int fd, bool write, const char *path,
		     struct ubdk_err *err)
{
	int ret = ubdk_os_lock(fd, write);

	if (ret == -EAGAIN)
		return ubdk_fail(err, UBDK_E_LOCKED, EAGAIN,
				 "%s: in use: another process (a running UML "
				 "guest?) holds a lock on it", path);
	if (ret < 0)
		return sys_fail(err, ret, "locking", path);
	return 0;
}

static int open_backing(struct ubdk_cow *cow, const char *override,
			struct ubdk_err *err)
{
	bool rdwr = cow->flags & UBDK_OPEN_BACKING_RDWR;
	struct ubdk_backing_check chk;
	struct ubdk_os_stat st;
	int ret;

	cow->backing_path = dup_string(override ? override : cow->hdr.backing);
	if (!cow->backing_path)
		return sys_fail(err, -ENOMEM, "opening backing", cow->path);
	ret = ubdk_os_open(cow->backing_path,
			   rdwr ? UBDK_OS_RDWR : UBDK_OS_RDONLY, 0,
			   &cow->backing_fd);
	if (ret < 0)
		return ubdk_fail(err, UBDK_E_SYS, -ret,
				 "%s: cannot open backing file %s: %s",
				 cow->path, cow->backing_path, strerror(-ret));
	ret = ubdk_os_fstat(cow->backing_fd, &st);
	if (ret < 0)
		return sys_fail(err, ret, "stat of backing file",
				cow->backing_path);
	/* Checked before locking or reading: a FIFO or a directory is never
	 * a backing file, whatever the flags. */
	if (st.type != UBDK_OS_REG && st.type != UBDK_OS_BLK)
		return ubdk_fail(err, UBDK_E_NOT_REGULAR, EINVAL,
				 "%s: backing file %s: not a regular file or "
				 "block device", cow->path, cow->backing_path);
	cow->backing_size = st.size;
	if (cow->flags & UBDK_OPEN_LOCK) {
		ret = lock_file(cow->backing_fd, rdwr, cow->backing_path, err);
		if (ret < 0)
			return ret;
	}
	if (cow->flags & UBDK_OPEN_NO_CHECK)
		return 0;
	ret = ubdk__backing_compare(&cow->hdr, cow->backing_path, &st, &chk,
				    err);
	if (ret < 0 && err && err->code != UBDK_E_SYS) {
		/* Prefix the COW's name: the message names only the backing. */
		char msg[UBDK_ERR_MSG_MAX];

		memcpy(msg, err->msg, sizeof(msg));
		ubdk_fail(err, err->code, err->errnum, "%s: %s", cow->path,
			  msg);
	}
	return ret;
}

static int open_cow_file(struct ubdk_cow *cow, const char *path,
			 struct ubdk_err *err)
{
	bool rdwr = cow->flags & UBDK_OPEN_RDWR;
	struct ubdk_os_stat st;
	int ret;

	ret = ubdk_os_open(path, rdwr ? UBDK_OS_RDWR : UBDK_OS_RDONLY, 0,
			   &cow->fd);
	if (ret < 0)
		return sys_fail(err, ret, "cannot open COW file", path);
	ret = ubdk_os_fstat(cow->fd, &st);
	if (ret < 0)
		return sys_fail(err, ret, "stat", path);
	if (st.type == UBDK_OS_DIR)
		return ubdk_fail(err, UBDK_E_NOT_REGULAR, EISDIR,
				 "%s: is a directory, not a COW file", path);
	if (st.type != UBDK_OS_REG && st.type != UBDK_OS_BLK)
		return ubdk_fail(err, UBDK_E_NOT_REGULAR, EINVAL,
				 "%s: not a regular file or block device", path);
	cow->cow_file_size = st.size;
	ret = ubdk_header_read_fd(cow->fd, path, &cow->hdr, &cow->geo, err);
	if (ret < 0)
		return ret;
	if (cow->flags & UBDK_OPEN_LOCK) {
		ret = lock_file(cow->fd, rdwr, path, err);
		if (ret < 0)
			return ret;
	}
	return check_bitmap_length(cow, err);
}

static void free_cow(struct ubdk_cow *cow)
{
	if (cow->backing_fd >= 0)
		ubdk_os_close(cow->backing_fd);
	if (cow->fd >= 0)
		ubdk_os_close(cow->fd);
	ubdk__bmap_free(cow->bmap);
	if (cow->scratch)
		ubdk_os_unmap(cow->scratch, IOV_BATCH * sizeof(*cow->scratch));
	ubdk_os_free(cow->path);
	ubdk_os_free(cow->backing_path);
	ubdk_os_free(cow);
}

int ubdk_cow_open(const char *path, const char *backing_override, int flags,
		  struct ubdk_cow **out, struct ubdk_err *err)
{
	struct ubdk_cow *cow;
	int ret;

	*out = NULL;
	cow = ubdk_os_zalloc(sizeof(*cow));
	if (!cow)
		return sys_fail(err, -ENOMEM, "opening", path);
	cow->fd = -1;
	cow->backing_fd = -1;
	cow->flags = flags;
	cow->path = dup_string(path);
	if (!cow->path) {
		ubdk_os_free(cow);
		return sys_fail(err, -ENOMEM, "opening", path);
	}
	ret = open_cow_file(cow, path, err);
	if (ret < 0)
		goto fail_cow;
	if (!(flags & UBDK_OPEN_NO_BACKING)) {
		ret = open_backing(cow, backing_override, err);
		if (ret < 0) {
			if (err)
				err->file = UBDK_FILE_BACKING;
			free_cow(cow);
			return ret;
		}
	}
	ret = ubdk__bmap_open(cow->fd, cow->geo.bitmap_offset,
			      cow->geo.bitmap_used, cow->geo.covered,
			      &cow->bmap);
	if (ret < 0) {
		sys_fail(err, ret, "reading bitmap", path);
		goto fail_cow;
	}
	*out = cow;
	return 0;
fail_cow:
	if (err)
		err->file = UBDK_FILE_COW;
	free_cow(cow);
	return ret;
}

int ubdk_cow_close(struct ubdk_cow *cow)
{
	int ret = 0, r;

	if (!cow)
		return 0;
	if (cow->bmap)
		ret = ubdk__bmap_writeback(cow->bmap);
	if (cow->backing_fd >= 0) {
		r = ubdk_os_close(cow->backing_fd);
		cow->backing_fd = -1;
		if (!ret)
			ret = r;
	}
	if (cow->fd >= 0) {
		r = ubdk_os_close(cow->fd);
		cow->fd = -1;
		if (!ret)
			ret = r;
	}
	free_cow(cow);
	return ret;
}

const struct ubdk_header *ubdk_cow_header(const struct ubdk_cow *cow)
{
	return &cow->hdr;
}

const struct ubdk_geometry *ubdk_cow_geometry(const struct ubdk_cow *cow)
{
	return &cow->geo;
}

const char *ubdk_cow_path(const struct ubdk_cow *cow)
{
	return cow->path;
}

const char *ubdk_cow_backing_path(const struct ubdk_cow *cow)
{
	return cow->backing_path;
}

int ubdk_cow_fd(const struct ubdk_cow *cow)
{
	return cow->fd;
}

int ubdk_cow_backing_fd(const struct ubdk_cow *cow)
{
	return cow->backing_fd;
}

uint64_t ubdk_cow_backing_size(const struct ubdk_cow *cow)
{
	return cow->backing_size;
}

uint64_t ubdk_cow_mem(const struct ubdk_cow *cow)
{
	return ubdk__bmap_mem(cow->bmap);
}

int ubdk_cow_backing_check(const struct ubdk_cow *cow,
			   struct ubdk_backing_check *res,
			   struct ubdk_err *err)
{
	struct ubdk_os_stat st;
	int ret;

	if (cow->backing_fd < 0)
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EBADF,
				 "%s: opened without its backing file",
				 cow->path);
	ret = ubdk_os_fstat(cow->backing_fd, &st);
	if (ret < 0)
		return sys_fail(err, ret, "stat of backing file",
				cow->backing_path);
	return ubdk__backing_compare(&cow->hdr, cow->backing_path, &st, res,
				     err);
}

int ubdk_cow_test(struct ubdk_cow *cow, uint64_t n, struct ubdk_err *err)
{
	int ret = ubdk__bmap_test(cow->bmap, n);

	return ret < 0 ? bitmap_fail(cow, err, ret) : ret;
}

int ubdk_cow_count(struct ubdk_cow *cow, uint64_t start, uint64_t end,
		   uint64_t *count, struct ubdk_err *err)
{
	int ret = ubdk__bmap_count(cow->bmap, start, end, count);

	return ret < 0 ? bitmap_fail(cow, err, ret) : 0;
}

/* The first sector that lies wholly past the backing file's end. */
static uint64_t backing_end_sector(const struct ubdk_cow *cow)
{
	uint64_t ss = cow->hdr.sectorsize;

	if (cow->backing_fd < 0)
		return 0;
	return cow->backing_size / ss + (cow->backing_size % ss != 0);
}

int ubdk_cow_next_run(struct ubdk_cow *cow, uint64_t *pos, uint64_t end,
		      struct ubdk_run *run, struct ubdk_err *err)
{
	uint64_t start = *pos, stop, bend;
	int ret;

	if (end > cow->geo.sectors)
		end = cow->geo.sectors;
	if (start >= end)
		return 0;
	ret = ubdk__bmap_test(cow->bmap, start);
	if (ret < 0)
		return bitmap_fail(cow, err, ret);
	if (ret) {
		run->src = UBDK_RUN_COW;
		ret = ubdk__bmap_find(cow->bmap, start, end, false, &stop);
	} else {
		ret = ubdk__bmap_find(cow->bmap, start, end, true, &stop);
		bend = backing_end_sector(cow);
		if (start >= bend) {
			run->src = UBDK_RUN_ZERO;
		} else {
			run->src = UBDK_RUN_BACKING;
			if (stop > bend)
				stop = bend;
		}
	}
	if (ret < 0)
		return bitmap_fail(cow, err, ret);
	run->start = start;
	run->count = stop - start;
	*pos = stop;
	return 1;
}

int ubdk_cow_next_extent(struct ubdk_cow *cow, uint64_t *pos, uint64_t end,
			 struct ubdk_run *run, struct ubdk_err *err)
{
	uint64_t ss = cow->hdr.sectorsize, from = *pos, data, hole, first, stop;
	int ret = ubdk_cow_next_run(cow, pos, end, run, err);

	if (ret <= 0 || run->src != UBDK_RUN_BACKING)
		return ret;
	ret = ubdk_os_next_data(cow->backing_fd, from * ss, &data, &hole);
	if (ret == -EINVAL || ret == -EOPNOTSUPP)
		return 1;              /* no hole information: all data */
	if (ret < 0 && ret != -ENXIO) {
		ret = sys_fail(err, ret, "finding holes", cow->backing_path);
		if (err)
			err->file = UBDK_FILE_BACKING;
		return ret;
	}
	stop = run->start + run->count;
	if (ret == -ENXIO || data > from * ss) {
		/* A hole first: the sectors wholly inside it. */
		first = ret == -ENXIO ? stop : data / ss;
		if (first > from) {
			run->src = UBDK_RUN_ZERO;
			stop = first < stop ? first : stop;
		}
	} else {
		/* Data first: up to the sector where the hole starts. */
		first = hole / ss + (hole % ss != 0);
		if (first < stop)
			stop = first;
	}
	run->count = stop - run->start;
	*pos = stop;
	return 1;
}

static int check_range(const struct ubdk_cow *cow, uint64_t len, uint64_t off,
		       struct ubdk_err *err)
{
	if (off > cow->hdr.size || len > cow->hdr.size - off)
		return ubdk_fail(err, UBDK_E_RANGE, ERANGE,
				 "%s: I/O of %llu bytes at %llu is past the end "
				 "of the %llu-byte device", cow->path,
				 (unsigned long long)len,
				 (unsigned long long)off,
				 (unsigned long long)cow->hdr.size);
	return 0;
}

static int short_data(const struct ubdk_cow *cow, uint64_t sector,
		      struct ubdk_err *err)
{
	int ret = ubdk_fail(err, UBDK_E_SHORT_DATA, EIO,
			    "%s: sector %llu is marked present but its data "
			    "lies past the end of the file (%llu bytes): the "
			    "COW file was cut short", cow->path,
			    (unsigned long long)sector,
			    (unsigned long long)cow->cow_file_size);

	if (err)
		err->file = UBDK_FILE_COW;
	return ret;
}

int ubdk_cow_check_data(struct ubdk_cow *cow, struct ubdk_err *err)
{
	uint64_t first = ubdk__first_short_sector(&cow->hdr, &cow->geo,
						   cow->cow_file_size), found;
	int ret;

	if (first >= cow->geo.sectors)
		return 0;
	ret = ubdk__bmap_find(cow->bmap, first, cow->geo.sectors, true, &found);
	if (ret < 0)
		return bitmap_fail(cow, err, ret);
	return found < cow->geo.sectors ? short_data(cow, found, err) : 0;
}

/*
 * Walks an iovec array: the next at most max pieces covering up to `want`
 * bytes from the cursor, into out.  Returns their count; *bytes says how
 * many bytes they cover.
 */
struct iov_cursor {
	const struct ubdk_iov *iov;
	int cnt;
	int i;                     /* current piece */
	size_t skip;               /* bytes of it already used */
};

static int iov_take(struct iov_cursor *c, uint64_t want,
		    struct ubdk_iov *out, int max, uint64_t *bytes)
{
	int n = 0;

	*bytes = 0;
	while (n < max && want && c->i < c->cnt) {
		size_t left = c->iov[c->i].len - c->skip;
		size_t take = left < want ? left : (size_t)want;

		if (take) {
			out[n].base = (uint8_t *)c->iov[c->i].base + c->skip;
			out[n].len = take;
			n++;
		}
		*bytes += take;
		want -= take;
		c->skip += take;
		if (c->skip == c->iov[c->i].len) {
			c->i++;
			c->skip = 0;
		}
	}
	return n;
}

static void zero_iov(const struct ubdk_iov *iov, int n, size_t from)
{
	for (int i = 0; i < n; i++) {
		if (from >= iov[i].len) {
			from -= iov[i].len;
			continue;
		}
		memset((uint8_t *)iov[i].base + from, 0, iov[i].len - from);
		from = 0;
	}
}

/*
 * Read the runs' bytes in [off, end) into the cursor, handing the files at
 * most max pieces (of part) at a time.  Touches nothing in the handle but
 * its descriptors.
 */
static int read_runs(const struct ubdk_cow *cow, const struct ubdk_run *runs,
		     size_t nruns, uint64_t off, uint64_t end,
		     struct iov_cursor *c, struct ubdk_iov *part, int max,
		     struct ubdk_err *err)
{
	uint64_t ss = cow->hdr.sectorsize;

	for (size_t r = 0; r < nruns; r++) {
		uint64_t from = runs[r].start * ss;
		uint64_t to = (runs[r].start + runs[r].count) * ss;

		if (from < off)
			from = off;
		if (to > end)
			to = end;
		while (from < to) {
			uint64_t bytes;
			int n = iov_take(c, to - from, part, max, &bytes), ret;
			size_t got = 0;

			if (!n)
				return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
						 "%s: buffers shorter than the "
						 "read", cow->path);
			if (runs[r].src == UBDK_RUN_COW) {
				ret = ubdk_os_preadv(cow->fd, part, n,
						     cow->geo.data_offset + from,
						     &got);
				if (ret < 0)
					return cow_fail(cow, err, ret,
							"reading data");
				if (got < bytes)
					return short_data(cow, (from + got) / ss,
							  err);
			} else if (runs[r].src == UBDK_RUN_BACKING) {
				ret = ubdk_os_preadv(cow->backing_fd, part, n,
						     from, &got);
				if (ret < 0)
					return backing_read_fail(cow, err, ret);
			}
			/* Past the backing's end, or no backing: zeros. */
			if (got < bytes)
				zero_iov(part, n, got);
			from += bytes;
		}
	}
	return 0;
}

static uint64_t iov_len(const struct ubdk_iov *iov, int cnt)
{
	uint64_t len = 0;

	for (int i = 0; i < cnt; i++)
		len += iov[i].len;
	return len;
}

/* Runs planned at once by ubdk_cow_preadv: a few, on a (kernel) stack. */
#define PLAN_RUNS 8

int ubdk_cow_preadv(struct ubdk_cow *cow, const struct ubdk_iov *iov,
		    int iovcnt, uint64_t off, struct ubdk_err *err)
{
	uint64_t len = iov_len(iov, iovcnt), end;
	struct iov_cursor c = { .iov = iov, .cnt = iovcnt };
	struct ubdk_run runs[PLAN_RUNS];
	size_t n;
	int ret;

	if (!cow->scratch) {
		cow->scratch = ubdk_os_map(IOV_BATCH * sizeof(*cow->scratch));
		if (!cow->scratch)
			return cow_fail(cow, err, -ENOMEM, "reading");
	}
	do {
		ret = ubdk_cow_plan_read(cow, off, len, runs, PLAN_RUNS, &n,
					 &end, err);
		if (ret == 0)
			ret = read_runs(cow, runs, n, off, end, &c,
					cow->scratch, IOV_BATCH, err);
		len -= end - off;
		off = end;
	} while (ret == 0 && len > 0);
	return ret;
}

int ubdk_cow_pread(struct ubdk_cow *cow, void *buf, size_t len, uint64_t off,
		   struct ubdk_err *err)
{
	struct ubdk_iov iov = { .base = buf, .len = len };

	return ubdk_cow_preadv(cow, &iov, 1, off, err);
}

int ubdk_cow_plan_read(struct ubdk_cow *cow, uint64_t off, uint64_t len,
		       struct ubdk_run *runs, size_t max, size_t *n,
		       uint64_t *end, struct ubdk_err *err)
{
	uint64_t ss = cow->hdr.sectorsize, pos;
	int ret;

	*n = 0;
	*end = off;
	ret = check_range(cow, len, off, err);
	if (ret < 0 || len == 0)
		return ret;
	pos = off / ss;
	while (*n < max &&
	       (ret = ubdk_cow_next_run(cow, &pos, (off + len + ss - 1) / ss,
					&runs[*n], err)) > 0)
		(*n)++;
	if (ret < 0)
		return ret;
	*end = pos * ss < off + len ? pos * ss : off + len;
	return 0;
}

int ubdk_cow_read_planned(const struct ubdk_cow *cow,
			  const struct ubdk_run *runs, size_t n, void *buf,
			  uint64_t off, uint64_t end, struct ubdk_err *err)
{
	struct ubdk_iov whole = { .base = buf, .len = end - off }, part;
	struct iov_cursor c = { .iov = &whole, .cnt = 1 };

	/* One piece of one buffer needs no scratch array: no shared state. */
	return read_runs(cow, runs, n, off, end, &c, &part, 1, err);
}

/* Checks shared by writes: writable, in range, aligned, has bits. */
static int check_write(struct ubdk_cow *cow, uint64_t len, uint64_t off,
		       struct ubdk_err *err)
{
	uint64_t ss = cow->hdr.sectorsize, last;
	int ret;

	if (!(cow->flags & UBDK_OPEN_RDWR))
		return ubdk_fail(err, UBDK_E_READ_ONLY, EBADF,
				 "%s: opened read-only", cow->path);
	ret = check_range(cow, len, off, err);
	if (ret < 0 || len == 0)
		return ret;
	if (off % ss || (len % ss && off + len != cow->hdr.size))
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "%s: write of %llu bytes at %llu is not "
				 "sector-aligned", cow->path,
				 (unsigned long long)len,
				 (unsigned long long)off);
	last = (off + len + ss - 1) / ss - 1;
	if (last >= cow->geo.covered)
		return ubdk_fail(err, UBDK_E_RANGE, ERANGE,
				 "%s: sector %llu has no bit in this %s "
				 "bitmap (the old rounding bug)", cow->path,
				 (unsigned long long)last,
				 ubdk_layout_name(cow->hdr.layout));
	return 0;
}

/* After the data landed: the sectors' bits, and the file's new size. */
static int mark_written(struct ubdk_cow *cow, uint64_t len, uint64_t off,
			struct ubdk_err *err)
{
	uint64_t ss = cow->hdr.sectorsize, end = cow->geo.data_offset + off + len;
	int ret;

	if (end > cow->cow_file_size)
		cow->cow_file_size = end;
	ret = ubdk__bmap_set(cow->bmap, off / ss, (off + len + ss - 1) / ss);
	if (ret < 0)
		return bitmap_fail(cow, err, ret);
	if (cow->flags & UBDK_OPEN_SYNC)
		return ubdk_cow_flush(cow, err);
	return 0;
}

int ubdk_cow_pwritev(struct ubdk_cow *cow, const struct ubdk_iov *iov,
		     int iovcnt, uint64_t off, struct ubdk_err *err)
{
	uint64_t len = iov_len(iov, iovcnt);
	int ret;

	ret = check_write(cow, len, off, err);
	if (ret < 0 || len == 0)
		return ret;
	/* Data first: a crash before its bits reach the file loses only
	 * this write, never shows garbage. */
	ret = ubdk_os_pwritev(cow->fd, iov, iovcnt, cow->geo.data_offset + off);
	if (ret < 0)
		return cow_fail(cow, err, ret, "writing data");
	return mark_written(cow, len, off, err);
}

int ubdk_cow_pwrite(struct ubdk_cow *cow, const void *buf, size_t len,
		    uint64_t off, struct ubdk_err *err)
{
	struct ubdk_iov iov = { .base = (void *)(uintptr_t)buf, .len = len };

	return ubdk_cow_pwritev(cow, &iov, 1, off, err);
}

int ubdk_cow_discard(struct ubdk_cow *cow, uint64_t off, uint64_t len,
		     bool zero, struct ubdk_err *err)
{
	int ret = check_write(cow, len, off, err);

	if (ret < 0 || len == 0)
		return ret;
	ret = ubdk_os_punch(cow->fd, cow->geo.data_offset + off, len, zero);
	if (ret < 0)
		return cow_fail(cow, err, ret,
				zero ? "zeroing data" : "discarding data");
	return mark_written(cow, len, off, err);
}

bool ubdk_cow_dirty(const struct ubdk_cow *cow)
{
	return ubdk__bmap_dirty(cow->bmap);
}

int ubdk_cow_writeback(struct ubdk_cow *cow, struct ubdk_err *err)
{
	int ret = ubdk__bmap_writeback(cow->bmap);

	return ret < 0 ? cow_fail(cow, err, ret, "writing bitmap") : 0;
}

int ubdk_cow_flush(struct ubdk_cow *cow, struct ubdk_err *err)
{
	int ret = ubdk_cow_writeback(cow, err);

	if (ret < 0)
		return ret;
	ret = ubdk_os_fsync(cow->fd);
	return ret < 0 ? cow_fail(cow, err, ret, "fsync") : 0;
}

int ubdk__cow_replace_header(struct ubdk_cow *cow,
			     const struct ubdk_header *hdr,
			     struct ubdk_err *err)
{
	struct ubdk_geometry geo;
	uint8_t *buf;
	int ret;

	if (!(cow->flags & UBDK_OPEN_RDWR))
		return ubdk_fail(err, UBDK_E_READ_ONLY, EBADF,
				 "%s: opened read-only", cow->path);
	ret = ubdk_header_geometry(hdr, cow->path, &geo, err);
	if (ret < 0)
		return ret;
	if (geo.bitmap_offset != cow->geo.bitmap_offset ||
	    geo.data_offset != cow->geo.data_offset)
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "%s: the new header would move the bitmap or "
				 "data area", cow->path);
	buf = ubdk_os_zalloc(UBDK_HDR_MAX_SIZE);
	if (!buf)
		return sys_fail(err, -ENOMEM, "rewriting header", cow->path);
	ret = ubdk_header_encode(hdr, buf, UBDK_HDR_MAX_SIZE, err);
	if (ret >= 0) {
		/* Cover the old header too, in case it was the longer one. */
		size_t len = (size_t)(geo.header_len > cow->geo.header_len ?
				      geo.header_len : cow->geo.header_len);

		ret = ubdk_os_pwrite(cow->fd, buf, len, 0);
		if (ret < 0)
			ret = sys_fail(err, ret, "rewriting header", cow->path);
	}
	ubdk_os_free(buf);
	if (ret < 0)
		return ret;
	ret = ubdk_cow_flush(cow, err);
	if (ret < 0)
		return ret;
	cow->hdr = *hdr;
	cow->geo = geo;
	return 0;
}
