/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the engine of `uml_imgstat --files` (fsd_files in
 * tools/imgstat/files.c, with fsdiff.c, extfs.c and pairio.c) on damaged
 * ext4 filesystems, called in-process as the tool calls it.
 *
 * The images are made at test time by tests/fuzz/seed-files.sh: pairs
 * NAME.before (the backing file) and NAME.after (what a guest made of it:
 * files written, a directory and a file renamed, a hard link, a directory
 * made, a file deleted).  The sectors where they differ are what a guest
 * wrote through the COW.  An input is
 *
 *   byte 0      image (low 7 bits, modulo the number of pairs); bit 7:
 *               FSD_IGNORE_CSUM, as --ignore-checksums
 *   then 5-byte patches, at most MAX_PATCHES:
 *               flags (bit 0: through the COW, else in the backing file),
 *               offset (3 bytes, little-endian, modulo the image size),
 *               the byte to write there
 *
 * A backing patch changes the backing file (seen through the merged view
 * where the COW holds nothing); a COW patch changes a sector of the after
 * image and writes that sector through the COW.  The COW is written to a
 * memfd in the on-disk format, header by the library, the rest by hand.
 *
 * Checked, per input: no sanitizer report; nothing printed (a com_err hook
 * aborts: the engine reports through its return value only); the result
 * is FSD_OK, FSD_FAILED or FSD_DAMAGED, a stop has a non-empty one-line
 * message, and every change has a path starting with '/'.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <et/com_err.h>

#include "fsdiff.h"
#include "img.h"
#include "ubdk_static.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PAIRS 8
#define MAX_PATCHES 64
#define SECTOR 512

static void fail(int line, const char *what)
{
	fprintf(stderr, "fuzz_files.c:%d: invariant violated: %s\n", line, what);
	abort();
}

#define CHECK(c) do { if (!(c)) fail(__LINE__, #c); } while (0)

struct pair {
	uint8_t *before, *after;
	size_t size;
	uint64_t *written;         /* sectors where after differs */
	size_t nwritten;
	int bfd;                   /* memfd holding before (patched per input) */
	struct ubdk_header hdr;    /* a COW on bfd */
	struct ubdk_geometry geo;
};

static struct pair pairs[MAX_PAIRS];
static size_t npairs;
static int cowfd = -1;
static char cowpath[64];

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fuzz-files: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static uint8_t *slurp(const char *path, size_t *size)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	uint8_t *p = NULL;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !(p = malloc((size_t)st.st_size + 1)) ||
	    pread(fd, p, (size_t)st.st_size, 0) != st.st_size)
		die("%s: cannot read", path);
	close(fd);
	*size = (size_t)st.st_size;
	return p;
}

static void load_pair(const char *dir, int n)
{
	struct pair *p = &pairs[npairs];
	struct ubdk_create_opts o = { 0 };
	struct ubdk_err err = { 0 };
	char path[4096], name[64];
	size_t asize = 0;

	snprintf(path, sizeof(path), "%s/%d.before", dir, n);
	p->before = slurp(path, &p->size);
	if (!p->before)
		return;
	snprintf(path, sizeof(path), "%s/%d.after", dir, n);
	p->after = slurp(path, &asize);
	if (!p->after || asize != p->size || p->size % SECTOR)
		die("%s: missing or not the size of %d.before", path, n);
	p->written = calloc(p->size / SECTOR + 1, sizeof(*p->written));
	if (!p->written)
		die("out of memory");
	for (size_t s = 0; s < p->size / SECTOR; s++)
		if (memcmp(p->before + s * SECTOR, p->after + s * SECTOR, SECTOR))
			p->written[p->nwritten++] = s;
	p->bfd = memfd_create("fuzz-files-backing", 0);
	if (p->bfd < 0 || pwrite(p->bfd, p->before, p->size, 0) != (ssize_t)p->size)
		die("memfd: %s", strerror(errno));
	snprintf(name, sizeof(name), "/proc/self/fd/%d", p->bfd);
	if (ubdk_create_header(name, &o, &p->hdr, &err) < 0 ||
	    ubdk_header_geometry(&p->hdr, name, &p->geo, &err) < 0)
		die("%s", err.msg);
	npairs++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("UBDK_FUZZ_FILES_IMAGES");

	(void)argc, (void)argv;
	if (!dir)
		die("set UBDK_FUZZ_FILES_IMAGES to the images of tests/fuzz/seed-files.sh");
	for (int n = 0; n < MAX_PAIRS; n++)
		load_pair(dir, n);
	if (!npairs)
		die("%s: no images (0.before, 0.after...)", dir);
	cowfd = memfd_create("fuzz-files-cow", 0);
	if (cowfd < 0)
		die("memfd: %s", strerror(errno));
	snprintf(cowpath, sizeof(cowpath), "/proc/self/fd/%d", cowfd);
	initialize_ext2_error_table();
	return 0;
}

/* The engine never prints: libext2fs's warnings come through here. */
static void no_print(const char *who, long code, const char *fmt, va_list ap)
{
	(void)ap;
	fprintf(stderr, "%s: %s: %s\n", who ? who : "?", error_message(code),
		fmt ? fmt : "");
	fail(__LINE__, "libext2fs printed a message");
}

struct patch {
	bool cow;
	size_t off;
	uint8_t val, old;
};

static bool has(const uint64_t *v, size_t n, uint64_t s)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == s)
			return true;
	return false;
}

/* Write the COW: header, bitmap, and every sector the guest or a patch wrote. */
static void write_cow(const struct pair *p, const struct patch *pt, size_t npt)
{
	struct ubdk_err err = { 0 };
	uint64_t extra[MAX_PATCHES];
	size_t nextra = 0;
	uint8_t *bitmap, sec[SECTOR];

	CHECK(ftruncate(cowfd, 0) == 0);
	CHECK(ubdk_create_fd(cowfd, cowpath, &p->hdr, 0, &err) == 0);
	for (size_t i = 0; i < npt; i++)
		if (pt[i].cow && !has(p->written, p->nwritten, pt[i].off / SECTOR) &&
		    !has(extra, nextra, pt[i].off / SECTOR))
			extra[nextra++] = pt[i].off / SECTOR;
	bitmap = calloc(p->geo.bitmap_used + 1, 1);
	CHECK(bitmap);
	for (size_t i = 0; i < p->nwritten + nextra; i++) {
		uint64_t s = i < p->nwritten ? p->written[i] : extra[i - p->nwritten];

		memcpy(sec, p->after + s * SECTOR, SECTOR);
		for (size_t k = 0; k < npt; k++)
			if (pt[k].cow && pt[k].off / SECTOR == s)
				sec[pt[k].off % SECTOR] = pt[k].val;
		CHECK(pwrite(cowfd, sec, SECTOR, (off_t)(p->geo.data_offset +
							s * SECTOR)) == SECTOR);
		bitmap[s / 8] |= (uint8_t)(1U << (s % 8));
	}
	CHECK(pwrite(cowfd, bitmap, p->geo.bitmap_used,
		     (off_t)p->geo.bitmap_offset) == (ssize_t)p->geo.bitmap_used);
	free(bitmap);
}

static void check_result(const struct ctx *c, int r)
{
	CHECK(r == FSD_OK || r == FSD_FAILED || r == FSD_DAMAGED);
	CHECK(r == c->stop);
	if (r != FSD_OK) {
		CHECK(c->stopmsg[0] && !strchr(c->stopmsg, '\n'));
		CHECK(r != FSD_DAMAGED ||
		      !strncmp(c->stopmsg, "filesystem damaged: ", 20));
		return;
	}
	for (size_t i = 0; i < c->nch; i++)
		CHECK(c->ch[i].path && c->ch[i].path[0] == '/');
	CHECK(!c->err || (c->errwhere[0] && !strchr(c->errwhere, '\n')));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct patch pt[MAX_PATCHES];
	size_t npt = 0;
	struct pair *p;
	struct img im;
	struct ctx c;
	char msg[512];
	int r;

	if (size < 1)
		return -1;
	set_com_err_hook(no_print);
	p = &pairs[(data[0] & 0x7f) % npairs];
	for (size_t i = 1; i + 5 <= size && npt < MAX_PATCHES; i += 5) {
		struct patch *x = &pt[npt++];

		x->cow = data[i] & 1;
		x->off = ((size_t)data[i + 1] | (size_t)data[i + 2] << 8 |
			  (size_t)data[i + 3] << 16) % p->size;
		x->val = data[i + 4];
	}
	for (size_t i = 0; i < npt; i++) {
		if (pt[i].cow)
			continue;
		CHECK(pread(p->bfd, &pt[i].old, 1, (off_t)pt[i].off) == 1);
		CHECK(pwrite(p->bfd, &pt[i].val, 1, (off_t)pt[i].off) == 1);
	}
	write_cow(p, pt, npt);

	CHECK(img_open(&im, cowpath, NULL, msg, sizeof(msg)) == 0);
	CHECK(img_view_ok(&im));
	r = fsd_files(&c, &im, 0, data[0] & 0x80 ? FSD_IGNORE_CSUM : 0);
	check_result(&c, r);
	fsd_ctx_free(&c);
	img_close(&im);

	/* Undo the backing patches, last first (one offset may repeat). */
	for (size_t i = npt; i-- > 0;)
		if (!pt[i].cow)
			CHECK(pwrite(p->bfd, &pt[i].old, 1, (off_t)pt[i].off) == 1);
	reset_com_err_hook();
	return 0;
}
