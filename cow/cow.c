/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An open COW file: its bitmap in memory, the merged view, writes through. */
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
	uint8_t *bitmap;           /* geo.bitmap_used bytes, zero-padded to 8 */
	char *path;
	char *backing_path;
};

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
	return ubdk_fail(err, ret == -ENOMEM ? UBDK_E_NOMEM : UBDK_E_SYS,
			 -ret, "%s: %s: %s", path, what, strerror(-ret));
}

static int read_header(struct ubdk_cow *cow, struct ubdk_err *err)
{
	uint8_t *buf;
	size_t want, got;
	int ret;

	want = cow->cow_file_size < UBDK_HDR_MAX_SIZE ?
	       (size_t)cow->cow_file_size : UBDK_HDR_MAX_SIZE;
	buf = ubdk_os_alloc(UBDK_HDR_MAX_SIZE);
	if (!buf)
		return sys_fail(err, -ENOMEM, "reading header", cow->path);
	ret = ubdk_os_pread(cow->fd, buf, want, 0, &got);
	if (ret < 0)
		ret = sys_fail(err, ret, "reading header", cow->path);
	else
		ret = ubdk_header_decode(buf, got, cow->path, &cow->hdr, err);
	ubdk_os_free(buf);
	if (ret < 0)
		return ret;
	return ubdk_header_geometry(&cow->hdr, cow->path, &cow->geo, err);
}

static int read_bitmap(struct ubdk_cow *cow, struct ubdk_err *err)
{
	const struct ubdk_geometry *g = &cow->geo;
	uint64_t avail, want, alloc;
	size_t got;
	int ret;

	/* The kernel needs bitmap_len bytes; slack after them may be missing. */
	if (cow->cow_file_size < g->bitmap_offset + g->bitmap_len)
		return ubdk_fail(err, UBDK_E_SHORT_BITMAP, EINVAL,
				 "%s: file is %llu bytes but its bitmap ends at "
				 "%llu", cow->path,
				 (unsigned long long)cow->cow_file_size,
				 (unsigned long long)(g->bitmap_offset +
						      g->bitmap_len));
	alloc = (g->bitmap_used + 7) & ~(uint64_t)7;
	if (alloc != (size_t)alloc)
		return sys_fail(err, -ENOMEM, "allocating bitmap", cow->path);
	cow->bitmap = ubdk_os_zalloc((size_t)alloc);
	if (!cow->bitmap)
		return sys_fail(err, -ENOMEM, "allocating bitmap", cow->path);
	avail = cow->cow_file_size - g->bitmap_offset;
	want = g->bitmap_used < avail ? g->bitmap_used : avail;
	ret = ubdk_os_pread(cow->fd, cow->bitmap, (size_t)want,
			    g->bitmap_offset, &got);
	if (ret < 0)
		return sys_fail(err, ret, "reading bitmap", cow->path);
	if (got < g->bitmap_len && got < want)
		return ubdk_fail(err, UBDK_E_SHORT_BITMAP, EINVAL,
				 "%s: bitmap ends early after %zu bytes",
				 cow->path, got);
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
	if (cow->flags & UBDK_OPEN_LOCK) {
		ret = lock_file(cow->backing_fd, rdwr, cow->backing_path, err);
		if (ret < 0)
			return ret;
	}
	if (cow->flags & UBDK_OPEN_NO_CHECK)
		return 0;
	ret = ubdk_os_fstat(cow->backing_fd, &st);
	if (ret < 0)
		return sys_fail(err, ret, "stat of backing file", cow->backing_path);
	if (st.type != UBDK_OS_REG && st.type != UBDK_OS_BLK)
		return ubdk_fail(err, UBDK_E_NOT_REGULAR, EINVAL,
				 "backing file %s: not a regular file or block "
				 "device", cow->backing_path);
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

int ubdk_cow_open(const char *path, const char *backing_override, int flags,
		  struct ubdk_cow **out, struct ubdk_err *err)
{
	struct ubdk_cow *cow;
	struct ubdk_os_stat st;
	bool rdwr = flags & UBDK_OPEN_RDWR;
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
	ret = ubdk_os_open(path, rdwr ? UBDK_OS_RDWR : UBDK_OS_RDONLY, 0,
			   &cow->fd);
	if (ret < 0) {
		sys_fail(err, ret, "cannot open COW file", path);
		goto fail;
	}
	ret = ubdk_os_fstat(cow->fd, &st);
	if (ret < 0) {
		sys_fail(err, ret, "stat", path);
		goto fail;
	}
	if (st.type == UBDK_OS_DIR) {
		ret = ubdk_fail(err, UBDK_E_NOT_REGULAR, EISDIR,
				"%s: is a directory, not a COW file", path);
		goto fail;
	}
	if (st.type != UBDK_OS_REG && st.type != UBDK_OS_BLK) {
		ret = ubdk_fail(err, UBDK_E_NOT_REGULAR, EINVAL,
				"%s: not a regular file or block device", path);
		goto fail;
	}
	cow->cow_file_size = st.size;
	ret = read_header(cow, err);
	if (ret < 0)
		goto fail;
	if (flags & UBDK_OPEN_LOCK) {
		ret = lock_file(cow->fd, rdwr, path, err);
		if (ret < 0)
			goto fail;
	}
	if (!(flags & UBDK_OPEN_NO_BACKING)) {
		ret = open_backing(cow, backing_override, err);
		if (ret < 0) {
			if (err)
				err->file = UBDK_FILE_BACKING;
			ubdk_cow_close(cow);
			return ret;
		}
	}
	ret = read_bitmap(cow, err);
	if (ret < 0)
		goto fail;
	*out = cow;
	return 0;
fail:
	if (err)
		err->file = UBDK_FILE_COW;
	ubdk_cow_close(cow);
	return ret;
}

int ubdk_cow_close(struct ubdk_cow *cow)
{
	int ret = 0, r;

	if (!cow)
		return 0;
	if (cow->backing_fd >= 0)
		ret = ubdk_os_close(cow->backing_fd);
	if (cow->fd >= 0) {
		r = ubdk_os_close(cow->fd);
		if (!ret)
			ret = r;
	}
	ubdk_os_free(cow->bitmap);
	ubdk_os_free(cow->path);
	ubdk_os_free(cow->backing_path);
	ubdk_os_free(cow);
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

const uint8_t *ubdk_cow_bitmap(const struct ubdk_cow *cow)
{
	return cow->bitmap;
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

bool ubdk_cow_test(const struct ubdk_cow *cow, uint64_t n)
{
	return n < cow->geo.covered && ubdk_bitmap_test(cow->bitmap, n);
}

uint64_t ubdk_cow_count(const struct ubdk_cow *cow, uint64_t start,
			uint64_t end)
{
	if (end > cow->geo.covered)
		end = cow->geo.covered;
	return ubdk_bitmap_count(cow->bitmap, start, end);
}

int ubdk_cow_next_run(const struct ubdk_cow *cow, uint64_t *pos, uint64_t end,
		      struct ubdk_run *run)
{
	uint64_t start = *pos, stop, covered = cow->geo.covered;
	bool in_cow;

	if (end > cow->geo.sectors)
		end = cow->geo.sectors;
	if (start >= end)
		return 0;
	if (start >= covered) {
		in_cow = false;
		stop = end;
	} else {
		in_cow = ubdk_bitmap_test(cow->bitmap, start);
		stop = ubdk_bitmap_find(cow->bitmap, start,
					end < covered ? end : covered, !in_cow);
		/* Sectors past the bitmap's reach always come from backing. */
		if (!in_cow && stop == covered)
			stop = end;
	}
	run->start = start;
	run->count = stop - start;
	run->in_cow = in_cow;
	*pos = stop;
	return 1;
}

static int check_range(const struct ubdk_cow *cow, size_t len, uint64_t off,
		       struct ubdk_err *err)
{
	if (off > cow->hdr.size || len > cow->hdr.size - off)
		return ubdk_fail(err, UBDK_E_RANGE, ERANGE,
				 "%s: I/O of %zu bytes at %llu is past the end "
				 "of the %llu-byte device", cow->path, len,
				 (unsigned long long)off,
				 (unsigned long long)cow->hdr.size);
	return 0;
}

/* Read from the backing file, zeros past its end (or with no backing). */
static int read_backing(struct ubdk_cow *cow, uint8_t *buf, size_t len,
			uint64_t off, struct ubdk_err *err)
{
	size_t got = 0;
	int ret;

	if (cow->backing_fd >= 0) {
		ret = ubdk_os_pread(cow->backing_fd, buf, len, off, &got);
		if (ret < 0) {
			ret = sys_fail(err, ret, "reading backing file",
				       cow->backing_path);
			if (err)
				err->file = UBDK_FILE_BACKING;
			return ret;
		}
	}
	memset(buf + got, 0, len - got);
	return 0;
}

static int short_data(const struct ubdk_cow *cow, uint64_t sector,
		      struct ubdk_err *err)
{
	return ubdk_fail(err, UBDK_E_SHORT_DATA, EIO,
			 "%s: sector %llu is marked present but its data lies "
			 "past the end of the file (%llu bytes): the COW file "
			 "was cut short", cow->path, (unsigned long long)sector,
			 (unsigned long long)cow->cow_file_size);
}

/* Byte just past the data of sector n in the COW file. */
static uint64_t data_end(const struct ubdk_cow *cow, uint64_t n)
{
	uint64_t end = (n + 1) * cow->hdr.sectorsize;

	/* A short last sector needs only the device's bytes. */
	if (end > cow->hdr.size)
		end = cow->hdr.size;
	return cow->geo.data_offset + end;
}

int ubdk_cow_check_data(struct ubdk_cow *cow, struct ubdk_err *err)
{
	uint64_t ss = cow->hdr.sectorsize, first;
	int ret;

	if (cow->cow_file_size >= data_end(cow, cow->geo.sectors - 1))
		return 0;
	/* The first sector whose data the file cannot hold. */
	first = cow->cow_file_size > cow->geo.data_offset ?
		(cow->cow_file_size - cow->geo.data_offset) / ss : 0;
	if (first < cow->geo.covered &&
	    data_end(cow, first) > cow->cow_file_size &&
	    ubdk_bitmap_test(cow->bitmap, first))
		goto short_file;
	if (first + 1 < cow->geo.covered)
		first = ubdk_bitmap_find(cow->bitmap, first + 1,
					 cow->geo.covered, true);
	else
		first = cow->geo.covered;
	if (first >= cow->geo.covered)
		return 0;
short_file:
	ret = short_data(cow, first, err);
	if (err)
		err->file = UBDK_FILE_COW;
	return ret;
}

static int read_cow_data(struct ubdk_cow *cow, uint8_t *buf, size_t len,
			 uint64_t off, struct ubdk_err *err)
{
	size_t got;
	int ret;

	ret = ubdk_os_pread(cow->fd, buf, len, cow->geo.data_offset + off,
			    &got);
	if (ret < 0)
		ret = sys_fail(err, ret, "reading data", cow->path);
	else if (got < len)
		ret = short_data(cow, (off + got) / cow->hdr.sectorsize, err);
	if (ret < 0 && err)
		err->file = UBDK_FILE_COW;
	return ret;
}

int ubdk_cow_pread(struct ubdk_cow *cow, void *buf, size_t len, uint64_t off,
		   struct ubdk_err *err)
{
	uint64_t ss = cow->hdr.sectorsize, pos, end = off + len;
	struct ubdk_run run;
	int ret;

	ret = check_range(cow, len, off, err);
	if (ret < 0 || len == 0)
		return ret;
	pos = off / ss;
	while (ubdk_cow_next_run(cow, &pos, (end + ss - 1) / ss, &run)) {
		uint64_t from = run.start * ss, to = (run.start + run.count) * ss;

		if (from < off)
			from = off;
		if (to > end)
			to = end;
		if (run.in_cow)
			ret = read_cow_data(cow, (uint8_t *)buf + (from - off),
					    (size_t)(to - from), from, err);
		else
			ret = read_backing(cow, (uint8_t *)buf + (from - off),
					   (size_t)(to - from), from, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int ubdk_cow_pwrite(struct ubdk_cow *cow, const void *buf, size_t len,
		    uint64_t off, struct ubdk_err *err)
{
	uint64_t ss = cow->hdr.sectorsize, first, last, byte0, byte1, n;
	bool changed = false;
	int ret;

	if (!(cow->flags & UBDK_OPEN_RDWR))
		return ubdk_fail(err, UBDK_E_READ_ONLY, EBADF,
				 "%s: opened read-only", cow->path);
	ret = check_range(cow, len, off, err);
	if (ret < 0 || len == 0)
		return ret;
	if (off % ss || (len % ss && off + len != cow->hdr.size))
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "%s: write of %zu bytes at %llu is not "
				 "sector-aligned", cow->path, len,
				 (unsigned long long)off);
	first = off / ss;
	last = (off + len + ss - 1) / ss - 1;
	if (last >= cow->geo.covered)
		return ubdk_fail(err, UBDK_E_RANGE, ERANGE,
				 "%s: sector %llu has no bit in this %s "
				 "bitmap (the old rounding bug)", cow->path,
				 (unsigned long long)last,
				 ubdk_layout_name(cow->hdr.layout));

	/* Data first: a crash before the bitmap write loses only this write. */
	ret = ubdk_os_pwrite(cow->fd, buf, len, cow->geo.data_offset + off);
	if (ret < 0)
		return sys_fail(err, ret, "writing data", cow->path);

	for (n = first; n <= last; n++) {
		if (!ubdk_bitmap_test(cow->bitmap, n)) {
			changed = true;
			break;
		}
	}
	if (!changed)
		return 0;
	ubdk_bitmap_set_range(cow->bitmap, first, last + 1);
	byte0 = first / 8;
	byte1 = last / 8;
	ret = ubdk_os_pwrite(cow->fd, cow->bitmap + byte0,
			     (size_t)(byte1 - byte0 + 1),
			     cow->geo.bitmap_offset + byte0);
	if (ret < 0)
		return sys_fail(err, ret, "writing bitmap", cow->path);
	return 0;
}

int ubdk_cow_flush(struct ubdk_cow *cow, struct ubdk_err *err)
{
	int ret = ubdk_os_fsync(cow->fd);

	return ret < 0 ? sys_fail(err, ret, "fsync", cow->path) : 0;
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
