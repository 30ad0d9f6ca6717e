/* SPDX-License-Identifier: GPL-2.0-or-later */
/* img.c - open an image, or a COW pair through the library. */
#define _GNU_SOURCE
#include "img.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quote.h"
#include "ubdk_static.h"

ssize_t img_read_fd(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	memset((char *)buf + done, 0, len - done);
	return (ssize_t)done;
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

/* The backing file held open on fd: its stat, its check, its magic. */
static void describe_backing(struct img *im, int fd)
{
	struct ubdk_err err;
	uint8_t magic[4];
	int ret;

	if (fstat(fd, &im->bst) < 0) {
		im->berrno = errno;
		return;
	}
	im->bfd = fd;
	im->backing_ok = true;
	memset(&err, 0, sizeof(err));
	/* On the descriptor held when there is one: the file the pair reads. */
	ret = im->cow ? ubdk_cow_backing_check(im->cow, &im->chk, &err) :
	      ubdk_backing_check(&im->hdr, im->backing, &im->chk, &err);
	im->chk_done = ret == 0 || err.code == UBDK_E_SIZE_MISMATCH ||
		       err.code == UBDK_E_MTIME_MISMATCH;
	/* The magic as v2 and v3 store it (big-endian): the kernel would
	 * read such a backing file as a raw disk, header included. */
	im->backing_is_cow = img_read_fd(fd, magic, 4, 0) == 4 &&
			     !memcmp(magic, "\x4f\x4f\x4f\x4d", 4);
}

/* Why the backing file cannot be used, from the library's error. */
static void backing_failed(struct img *im, const struct ubdk_err *err)
{
	struct stat st;

	im->berrno = err->errnum ? err->errnum : EIO;
	if (err->code != UBDK_E_NOT_REGULAR)
		return;
	/* The library calls a directory "not regular" too; say which. */
	if (stat(im->backing, &st) == 0 && S_ISDIR(st.st_mode))
		im->berrno = EISDIR;
	else
		im->backing_notreg = true;
}

/*
 * No pair (header, geometry or bitmap damaged): the backing file is still
 * described for --check, checked by its path and opened here.
 */
static void backing_by_path(struct img *im)
{
	struct ubdk_err err;
	int fd;

	memset(&err, 0, sizeof(err));
	if (ubdk_backing_check(&im->hdr, im->backing, &im->chk, &err) < 0 &&
	    err.code != UBDK_E_SIZE_MISMATCH &&
	    err.code != UBDK_E_MTIME_MISMATCH) {
		backing_failed(im, &err);
		return;
	}
	/* O_NONBLOCK: it may have become a FIFO since. */
	fd = open(im->backing, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		im->berrno = errno;
		return;
	}
	im->own_bfd = fd;
	describe_backing(im, fd);
}

/*
 * Open the pair through the library.  NO_CHECK: a size or mtime mismatch
 * is reported, not refused; NO_BACKING when the backing cannot be opened,
 * so that the COW alone is still described.
 */
static void open_pair(struct img *im, const char *override)
{
	struct ubdk_err err;
	int flags = UBDK_OPEN_NO_CHECK, ret;

	memset(&err, 0, sizeof(err));
	ret = ubdk_cow_open(im->path, override, flags, &im->cow, &err);
	if (ret < 0 && err.file == UBDK_FILE_BACKING) {
		backing_failed(im, &err);
		memset(&err, 0, sizeof(err));
		ret = ubdk_cow_open(im->path, NULL, flags | UBDK_OPEN_NO_BACKING,
				    &im->cow, &err);
	}
	if (ret == 0) {
		if (!im->berrno)
			describe_backing(im, ubdk_cow_backing_fd(im->cow));
		return;
	}
	/* The library's message names the file unescaped: ours is said
	 * again in words, for one-line errors. */
	if (err.code == UBDK_E_SHORT_BITMAP) {
		im->short_bitmap = true;
		snprintf(im->why, sizeof(im->why), "the file ends inside its "
			 "bitmap (%" PRIu64 " of %" PRIu64 " bytes): sectors "
			 "from %" PRIu64 " on have no bit, and the kernel "
			 "refuses it", im->scan.bitmap_present,
			 im->geo.bitmap_len, im->scan.bits);
	} else {
		im->bitmap_errno = err.errnum ? err.errnum : EIO;
		snprintf(im->why, sizeof(im->why), "cannot read the bitmap: %s",
			 strerror(im->bitmap_errno));
	}
	if (!im->berrno)
		backing_by_path(im);
}

int img_open(struct img *im, const char *path, const char *backing_override,
	     char *msg, size_t msglen)
{
	/* Messages name the file short and escaped: the reason must fit. */
	char name[QUOTE_NAME_MAX + 1];
	uint8_t raw[UBDK_HDR_MAX_SIZE];
	ssize_t got;

	memset(im, 0, sizeof(*im));
	im->path = path;
	im->bfd = im->own_bfd = -1;
	quote_msg(name, sizeof(name), path);
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
	got = img_read_fd(im->fd, raw, sizeof(raw), 0);
	if (got < 0) {
		snprintf(msg, msglen, "%s: cannot read: %s", name,
			 strerror((int)-got));
		close(im->fd);
		im->fd = -1;
		return (int)got;
	}
	im->size = file_size(im->fd, &im->st);
	im->hdr_ok = ubdk_header_decode(raw, (size_t)got, name, &im->hdr,
					&im->hdr_err) == 0;
	/* Too short to hold a magic, or another magic: a raw image. */
	if (got < 8 || im->hdr_err.code == UBDK_E_BAD_MAGIC) {
		im->hdr_ok = false;
		memset(&im->hdr_err, 0, sizeof(im->hdr_err));
		im->kind = IMG_RAW;
		return 0;
	}
	im->kind = IMG_COW;
	if (!im->hdr_ok)
		return 0;
	im->size = im->hdr.size;
	im->backing = backing_override ? backing_override : im->hdr.backing;
	im->backing_override = backing_override != NULL;
	im->geo_ok = ubdk_header_geometry(&im->hdr, name, &im->geo,
					  &im->geo_err) == 0;
	if (!im->geo_ok) {
		backing_by_path(im);
		return 0;
	}
	im->scan_ok = ubdk_scan_fd(im->fd, name, &im->hdr, &im->geo, &im->scan,
				   &im->scan_err) == 0;
	open_pair(im, backing_override);
	return 0;
}

void img_close(struct img *im)
{
	if (im->fd >= 0)
		close(im->fd);
	if (im->own_bfd >= 0)
		close(im->own_bfd);
	/* Read-only: nothing to write back, so nothing to report. */
	ubdk_cow_close(im->cow);
	im->cow = NULL;
	im->fd = im->bfd = im->own_bfd = -1;
}

int img_next_cow_run(struct img *im, uint64_t *pos, struct extent *run)
{
	struct ubdk_run r;
	int ret;

	while ((ret = ubdk_cow_next_run(im->cow, pos, im->geo.sectors, &r,
					NULL)) > 0) {
		if (r.src == UBDK_RUN_COW) {
			run->start = r.start;
			run->len = r.count;
			return 1;
		}
	}
	return ret;
}

bool img_view_ok(const struct img *im)
{
	if (im->kind == IMG_RAW)
		return true;
	return im->cow && im->bfd >= 0;
}

int img_pread(struct img *im, void *buf, size_t len, uint64_t off)
{
	ssize_t got;

	if (off > im->size || len > im->size - off)
		return -ERANGE;
	if (im->kind == IMG_COW)
		return img_view_ok(im) ?
		       ubdk_cow_pread(im->cow, buf, len, off, NULL) : -EINVAL;
	got = img_read_fd(im->fd, buf, len, off);
	return got < 0 ? (int)got : 0;
}
