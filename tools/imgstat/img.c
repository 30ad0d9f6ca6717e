/* SPDX-License-Identifier: GPL-2.0-or-later */
/* img.c - open an image or a COW pair, sparse-aware bitmap, merged reads. */
#define _GNU_SOURCE
#include "img.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "escape.h"

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[1] << 8 | p[0];
}

/* pread until len bytes or EOF; returns bytes read or -errno. */
static int64_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (int64_t)done;
}

static uint64_t file_size(int fd, const struct stat *st)
{
	off_t end;

	if (S_ISBLK(st->st_mode)) {
		end = lseek(fd, 0, SEEK_END);
		return end < 0 ? 0 : (uint64_t)end;
	}
	return (uint64_t)st->st_size;
}

static int add_extent(struct img *im, size_t *cap, uint64_t start,
		      uint64_t len)
{
	if (im->nax && im->ax[im->nax - 1].start + im->ax[im->nax - 1].len ==
	    start) {
		im->ax[im->nax - 1].len += len;
		return 0;
	}
	if (im->nax == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct extent *n = realloc(im->ax, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		im->ax = n;
		*cap = ncap;
	}
	im->ax[im->nax].start = start;
	im->ax[im->nax].len = len;
	im->nax++;
	return 0;
}

/*
 * Find the stored parts of [bitmap_offset, bitmap_offset + area_present)
 * (SEEK_DATA/SEEK_HOLE), recording them in im->ax, and read them into
 * buf unless it is NULL (the area is mapped).
 */
static int load_area(struct img *im, uint8_t *buf)
{
	uint64_t base = im->geo.bitmap_offset, end = base + im->area_present;
	uint64_t pos = base;
	size_t cap = 0;
	bool sparse = true;
	int ret;

	while (pos < end) {
		off_t d, h;
		int64_t got;

		if (sparse) {
			d = lseek(im->fd, (off_t)pos, SEEK_DATA);
			if (d < 0 && errno == ENXIO)
				break;
			if (d < 0) {
				/* No SEEK_DATA here: all of it is data. */
				sparse = false;
				continue;
			}
			if ((uint64_t)d >= end)
				break;
			h = lseek(im->fd, d, SEEK_HOLE);
			if (h < 0 || (uint64_t)h > end)
				h = (off_t)end;
		} else {
			d = (off_t)pos;
			h = (off_t)end;
		}
		got = (int64_t)((uint64_t)h - (uint64_t)d);
		if (buf) {
			got = pread_full(im->fd, buf + ((uint64_t)d - base),
					 (size_t)got, (uint64_t)d);
			if (got < 0)
				return (int)got;
			if (got == 0)
				break;
		}
		ret = add_extent(im, &cap, (uint64_t)d - base, (uint64_t)got);
		if (ret < 0)
			return ret;
		pos = (uint64_t)d + (uint64_t)got;
	}
	return 0;
}

/*
 * The bitmap area, mapped read-only from a regular file (no copy, no
 * zeroed memory: a scattered bitmap costs only its stored pages), or read
 * into a buffer.
 */
static int open_area(struct img *im)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t map_off, len;

	if (pg <= 0)
		pg = 4096;
	map_off = im->geo.bitmap_offset & ~((uint64_t)pg - 1);
	len = im->geo.bitmap_offset - map_off + im->area_present;
	if (S_ISREG(im->st.st_mode) && im->area_present && len <= SIZE_MAX) {
		void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, im->fd,
			       (off_t)map_off);

		if (p != MAP_FAILED) {
			im->map = p;
			im->map_len = (size_t)len;
			im->area = (const uint8_t *)p + (im->geo.bitmap_offset - map_off);
			return load_area(im, NULL);
		}
	}
	if (im->area_present > SIZE_MAX - 16)
		return -ENOMEM;
	im->buf = calloc(1, (size_t)((im->area_present + 7) & ~(uint64_t)7) + 8);
	if (!im->buf)
		return -ENOMEM;
	im->area = im->buf;
	return load_area(im, im->buf);
}

static void open_backing(struct img *im, const char *override)
{
	struct ubdk_err err;

	im->backing = override ? override : im->hdr.backing;
	im->backing_override = override != NULL;
	/* O_NONBLOCK: a FIFO named by a header must not hang us. */
	im->bfd = open(im->backing, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (im->bfd < 0) {
		im->berrno = errno;
		return;
	}
	if (fstat(im->bfd, &im->bst) < 0) {
		im->berrno = errno;
		close(im->bfd);
		im->bfd = -1;
		return;
	}
	if (!S_ISREG(im->bst.st_mode) && !S_ISBLK(im->bst.st_mode)) {
		im->berrno = S_ISDIR(im->bst.st_mode) ? EISDIR : EINVAL;
		im->backing_notreg = !S_ISDIR(im->bst.st_mode);
		close(im->bfd);
		im->bfd = -1;
		return;
	}
	memset(&err, 0, sizeof(err));
	if (ubdk_backing_check(&im->hdr, im->backing, &im->chk, &err) == 0 ||
	    err.code == UBDK_E_SIZE_MISMATCH || err.code == UBDK_E_MTIME_MISMATCH)
		im->chk_done = true;
}

int img_open(struct img *im, const char *path, const char *backing_override,
	     char *msg, size_t msglen)
{
	/* Messages name the file short and escaped: the reason must fit. */
	char name[ESC_NAME_BUF];
	int64_t got;

	memset(im, 0, sizeof(*im));
	im->path = path;
	im->bfd = -1;
	esc_name(path, name);
	/* O_NONBLOCK: a FIFO must be refused, not wait for a writer. */
	im->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (im->fd < 0) {
		int e = errno;

		snprintf(msg, msglen, "%s: cannot open: %s", name, strerror(e));
		return -e;
	}
	if (fstat(im->fd, &im->st) < 0 || (!S_ISREG(im->st.st_mode) &&
					   !S_ISBLK(im->st.st_mode))) {
		int e = S_ISDIR(im->st.st_mode) ? EISDIR :
			S_ISREG(im->st.st_mode) ? errno : EINVAL;

		snprintf(msg, msglen, "%s: %s", name,
			 e == EISDIR ? "is a directory, not an image" :
			 e == EINVAL ? "not a regular file or block device" :
			 strerror(e));
		close(im->fd);
		im->fd = -1;
		return -e;
	}
	got = pread_full(im->fd, im->raw, sizeof(im->raw), 0);
	if (got < 0) {
		snprintf(msg, msglen, "%s: cannot read: %s", name,
			 strerror((int)-got));
		close(im->fd);
		im->fd = -1;
		return (int)got;
	}
	im->raw_len = (size_t)got;
	im->size = file_size(im->fd, &im->st);
	if (im->raw_len < 8 || (be32(im->raw) != UBDK_COW_MAGIC &&
				le32(im->raw) != UBDK_COW_MAGIC)) {
		im->kind = IMG_RAW;
		return 0;
	}
	im->kind = IMG_COW;
	im->magic_le = be32(im->raw) != UBDK_COW_MAGIC;
	im->hdr_ok = ubdk_header_decode(im->raw, im->raw_len, name, &im->hdr,
					&im->hdr_err) == 0;
	if (!im->hdr_ok)
		return 0;
	im->size = im->hdr.size;
	im->geo_ok = ubdk_header_geometry(&im->hdr, name, &im->geo,
					  &im->geo_err) == 0;
	open_backing(im, backing_override);
	if (!im->geo_ok)
		return 0;
	im->area_len = im->geo.data_offset - im->geo.bitmap_offset;
	{
		uint64_t fsz = file_size(im->fd, &im->st);
		uint64_t avail = fsz > im->geo.bitmap_offset ?
				 fsz - im->geo.bitmap_offset : 0;

		im->area_present = avail < im->area_len ? avail : im->area_len;
	}
	{
		int r = open_area(im);

		if (r < 0) {
			im->bitmap_errno = -r;
			if (im->map)
				munmap(im->map, im->map_len);
			free(im->buf);
			im->map = NULL;
			im->buf = NULL;
			im->area = NULL;
			return 0;
		}
	}
	im->bits = im->area_present * 8 < im->geo.covered ?
		   im->area_present * 8 : im->geo.covered;
	return 0;
}

void img_close(struct img *im)
{
	if (im->fd >= 0)
		close(im->fd);
	if (im->bfd >= 0)
		close(im->bfd);
	if (im->map)
		munmap(im->map, im->map_len);
	free(im->buf);
	free(im->ax);
	im->fd = im->bfd = -1;
	im->map = NULL;
	im->buf = NULL;
	im->area = NULL;
	im->ax = NULL;
}

bool img_test(const struct img *im, uint64_t n)
{
	return im->area && n < im->bits && ubdk_bitmap_test(im->area, n);
}

uint64_t img_count(const struct img *im)
{
	uint64_t total = 0;

	if (!im->area)
		return 0;
	for (size_t i = 0; i < im->nax; i++) {
		uint64_t s = im->ax[i].start * 8, e = (im->ax[i].start +
						      im->ax[i].len) * 8;

		if (s >= im->bits)
			break;
		total += ubdk_bitmap_count(im->area, s, e < im->bits ? e : im->bits);
	}
	return total;
}

/* Index of the first stored extent that ends after bit n. */
static size_t extent_at(const struct img *im, uint64_t n)
{
	size_t lo = 0, hi = im->nax;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((im->ax[mid].start + im->ax[mid].len) * 8 <= n)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* First set bit at or after n, or im->bits. */
static uint64_t next_set(const struct img *im, uint64_t n)
{
	for (size_t i = extent_at(im, n); i < im->nax; i++) {
		uint64_t s = im->ax[i].start * 8;
		uint64_t e = (im->ax[i].start + im->ax[i].len) * 8;
		uint64_t f;

		if (s >= im->bits)
			break;
		if (e > im->bits)
			e = im->bits;
		if (s < n)
			s = n;
		f = ubdk_bitmap_find(im->area, s, e, true);
		if (f < e)
			return f;
	}
	return im->bits;
}

int img_next_cow_run(const struct img *im, uint64_t *pos, struct extent *run)
{
	uint64_t s, e;

	if (!im->area || *pos >= im->bits)
		return 0;
	s = next_set(im, *pos);
	if (s >= im->bits) {
		*pos = im->bits;
		return 0;
	}
	/* Set bits live in stored extents, so the run ends within them. */
	e = ubdk_bitmap_find(im->area, s, im->bits, false);
	run->start = s;
	run->len = e - s;
	*pos = e;
	return 1;
}

uint64_t img_find(const struct img *im, uint64_t n, bool value)
{
	uint64_t f;

	if (n >= im->geo.sectors)
		return im->geo.sectors;
	if (value) {
		if (!im->area || n >= im->bits)
			return im->geo.sectors;
		f = next_set(im, n);
		return f >= im->bits ? im->geo.sectors : f;
	}
	if (!im->area || n >= im->bits)
		return n;
	return ubdk_bitmap_find(im->area, n, im->bits, false);
}

uint64_t img_last_set(const struct img *im)
{
	for (size_t i = im->nax; im->area && i-- > 0;) {
		uint64_t s = im->ax[i].start * 8, e = (im->ax[i].start +
						      im->ax[i].len) * 8;
		uint64_t last = UINT64_MAX, p;

		if (e > im->bits)
			e = im->bits;
		if (s >= e)
			continue;
		/* Scan this stored part forward; parts are small or few. */
		p = s;
		while ((p = ubdk_bitmap_find(im->area, p, e, true)) < e) {
			uint64_t q = ubdk_bitmap_find(im->area, p, e, false);

			last = q - 1;
			p = q;
		}
		if (last != UINT64_MAX)
			return last;
	}
	return UINT64_MAX;
}

uint64_t img_short_data(const struct img *im, uint64_t *first)
{
	uint64_t fsz = (uint64_t)im->st.st_size, ss = im->hdr.sectorsize;
	uint64_t last = img_last_set(im), need, from, n = 0;

	*first = UINT64_MAX;
	if (last == UINT64_MAX || !S_ISREG(im->st.st_mode))
		return 0;
	need = im->geo.data_offset + (last + 1) * ss;
	/* The last sector of the device may be partial. */
	if (need > im->geo.data_offset + im->hdr.size)
		need = im->geo.data_offset + im->hdr.size;
	if (fsz >= need)
		return 0;
	from = fsz > im->geo.data_offset ? (fsz - im->geo.data_offset) / ss : 0;
	for (uint64_t p = img_find(im, from, true); p <= last;
	     p = img_find(im, p, true)) {
		uint64_t q = img_find(im, p, false);

		if (*first == UINT64_MAX)
			*first = p;
		n += q - p;
		p = q;
	}
	return n;
}

bool img_view_ok(const struct img *im)
{
	if (im->kind == IMG_RAW)
		return true;
	return im->geo_ok && im->area && im->bfd >= 0;
}

/* Backing bytes, zeros past its end. */
static int read_backing(const struct img *im, uint8_t *buf, size_t len,
			uint64_t off)
{
	int64_t got = pread_full(im->bfd, buf, len, off);

	if (got < 0)
		return (int)got;
	if ((size_t)got < len)
		memset(buf + got, 0, len - (size_t)got);
	return 0;
}

int img_pread(const struct img *im, void *vbuf, size_t len, uint64_t off)
{
	uint8_t *buf = vbuf;
	uint64_t ss, end;

	if (off > im->size || len > im->size - off)
		return -ERANGE;
	if (im->kind == IMG_RAW) {
		int64_t got = pread_full(im->fd, buf, len, off);

		if (got < 0)
			return (int)got;
		memset(buf + got, 0, len - (size_t)got);
		return 0;
	}
	if (!img_view_ok(im))
		return -EINVAL;
	ss = im->hdr.sectorsize;
	end = off + len;
	while (off < end) {
		uint64_t sec = off / ss, stop, chunk;
		bool in_cow = img_test(im, sec);
		int ret;

		if (in_cow)
			stop = ubdk_bitmap_find(im->area, sec, im->bits, false);
		else if ((stop = next_set(im, sec)) >= im->bits)
			stop = UINT64_MAX;  /* backing up to the end */
		/* stop is a sector number; convert to a byte bound. */
		chunk = stop >= (end + ss - 1) / ss ? end - off : stop * ss - off;
		if (in_cow) {
			int64_t got = pread_full(im->fd, buf, (size_t)chunk,
						 im->geo.data_offset + off);

			if (got < 0)
				return (int)got;
			if ((uint64_t)got < chunk)
				return -EIO;
		} else {
			ret = read_backing(im, buf, (size_t)chunk, off);
			if (ret < 0)
				return ret;
		}
		buf += chunk;
		off += chunk;
	}
	return 0;
}
