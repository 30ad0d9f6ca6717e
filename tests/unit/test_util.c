/* SPDX-License-Identifier: GPL-2.0-or-later */
/* realpath() is XSI in glibc's eyes. */
#define _XOPEN_SOURCE 700
#include "test_util.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char tu_root[PATH_MAX];
char tu_dir[PATH_MAX];
static char saved_cwd[PATH_MAX];

int tu_make_root(void)
{
	strcpy(tu_root, "/tmp/ubdk-unit-XXXXXX");
	return mkdtemp(tu_root) ? 0 : -1;
}

void tu_rmtree(const char *path)
{
	struct stat sb;
	DIR *d;
	struct dirent *e;
	char sub[PATH_MAX];

	if (lstat(path, &sb) < 0)
		return;
	if (!S_ISDIR(sb.st_mode)) {
		unlink(path);
		return;
	}
	d = opendir(path);
	if (d) {
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			/* No ck_assert here: main() calls this outside tests. */
			if (snprintf(sub, sizeof(sub), "%s/%s", path,
				     e->d_name) < (int)sizeof(sub))
				tu_rmtree(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

void tu_remove_root(void)
{
	if (tu_root[0])
		tu_rmtree(tu_root);
}

void tu_setup(void)
{
	ck_assert_ptr_nonnull(getcwd(saved_cwd, sizeof(saved_cwd)));
	tu_fmt(tu_dir, sizeof(tu_dir), "%s/t-XXXXXX", tu_root);
	ck_assert_ptr_nonnull(mkdtemp(tu_dir));
}

void tu_teardown(void)
{
	/* Tests that chdir must not leave later (no-fork) tests elsewhere. */
	if (chdir(saved_cwd) < 0)
		perror(saved_cwd);
	tu_rmtree(tu_dir);
}

void tu_fmt(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outlen, fmt, ap);
	va_end(ap);
	TU_CHECK(n >= 0 && (size_t)n < outlen, "path too long for buffer");
}

const char *tu_path(const char *name)
{
	static char ring[16][PATH_MAX];
	static unsigned next;
	char *p = ring[next++ % 16];

	tu_fmt(p, PATH_MAX, "%s/%s", tu_dir, name);
	return p;
}

void tu_pwrite_file(const char *path, const void *buf, size_t len,
		    uint64_t off)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	size_t done = 0;

	TU_CHECK(fd >= 0, "%s: %s", path, strerror(errno));
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
				   (off_t)(off + done));

		TU_CHECK(n > 0, "%s: %s", path, strerror(errno));
		done += (size_t)n;
	}
	ck_assert_int_eq(close(fd), 0);
}

void tu_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	TU_CHECK(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(close(fd), 0);
	tu_pwrite_file(path, buf, len, 0);
}

uint8_t *tu_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat sb;
	uint8_t *buf;
	size_t done = 0;

	TU_CHECK(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(fstat(fd, &sb), 0);
	buf = malloc((size_t)sb.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	while (done < (size_t)sb.st_size) {
		ssize_t n = pread(fd, buf + done, (size_t)sb.st_size - done,
				  (off_t)done);

		TU_CHECK(n > 0, "%s: %s", path, strerror(errno));
		done += (size_t)n;
	}
	close(fd);
	*len = done;
	return buf;
}

uint64_t tu_file_size(const char *path)
{
	struct stat sb;

	TU_CHECK(stat(path, &sb) == 0, "%s: %s", path, strerror(errno));
	return (uint64_t)sb.st_size;
}

void tu_truncate(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	TU_CHECK(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	ck_assert_int_eq(close(fd), 0);
}

void tu_set_mtime(const char *path, int64_t sec)
{
	struct timespec ts[2] = {
		{ .tv_sec = (time_t)sec, .tv_nsec = 0 },
		{ .tv_sec = (time_t)sec, .tv_nsec = 0 },
	};

	TU_CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0, "%s: %s", path,
		      strerror(errno));
}

int64_t tu_get_mtime(const char *path)
{
	struct stat sb;

	ck_assert_int_eq(stat(path, &sb), 0);
	return (int64_t)sb.st_mtime;
}

void tu_realpath(const char *path, char *out, size_t outlen)
{
	char *r = realpath(path, NULL);

	TU_CHECK(r != NULL, "%s: %s", path, strerror(errno));
	ck_assert_uint_lt(strlen(r), outlen);
	strcpy(out, r);
	free(r);
}

/* xorshift64*: tiny, deterministic, good enough to pick bits and ranges. */
void tu_rng_seed(struct tu_rng *r, uint64_t seed)
{
	r->s = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

uint64_t tu_rand(struct tu_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

uint64_t tu_below(struct tu_rng *r, uint64_t n)
{
	return tu_rand(r) % n;
}

void tu_fill(struct tu_rng *r, void *buf, size_t len)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(tu_rand(r) >> 56);
}

void tu_put32(uint8_t *p, uint32_t v, bool big)
{
	for (int i = 0; i < 4; i++)
		p[big ? 3 - i : i] = (uint8_t)(v >> (8 * i));
}

void tu_put64(uint8_t *p, uint64_t v, bool big)
{
	for (int i = 0; i < 8; i++)
		p[big ? 7 - i : i] = (uint8_t)(v >> (8 * i));
}

uint32_t tu_get32(const uint8_t *p, bool big)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[big ? 3 - i : i] << (8 * i);
	return v;
}

uint64_t tu_get64(const uint8_t *p, bool big)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[big ? 7 - i : i] << (8 * i);
	return v;
}

bool tu_host_le(void)
{
	const uint32_t one = 1;
	uint8_t first;

	memcpy(&first, &one, 1);
	return first == 1;
}

uint64_t tu_header_len(int layout)
{
	switch (layout) {
	case UBDK_LAYOUT_V1: return 280;
	case UBDK_LAYOUT_V2: return 4120;
	case UBDK_LAYOUT_V3: return 4128;
	case UBDK_LAYOUT_V3_BROKEN: return 4136;
	default: return 0;
	}
}

typedef unsigned __int128 u128;

static u128 round_up128(u128 x, u128 a)
{
	return (x + a - 1) / a * a;
}

static u128 min128(u128 a, u128 b)
{
	return a < b ? a : b;
}

void tu_geometry(int layout, uint64_t size, uint32_t ss, uint32_t align,
		 struct tu_geo *g)
{
	u128 hl = tu_header_len(layout), sectors, bo, bl, dof, used, cov, fs;

	sectors = ((u128)size + ss - 1) / ss;
	if (layout == UBDK_LAYOUT_V1 || layout == UBDK_LAYOUT_V2) {
		/* The kernel's under-counting formula, verbatim. */
		bo = hl;
		bl = ((u128)size + ss - 1) / ((u128)8 * ss);
		dof = round_up128(bo + bl, ss);
		used = min128((sectors + 7) / 8, dof - bo);
		cov = min128(used * 8, sectors);
	} else {
		bo = round_up128(hl, align);
		bl = (sectors + 7) / 8;
		dof = round_up128(bo + bl, align);
		used = bl;
		cov = sectors;
	}
	fs = dof + size;
	g->header_len = (uint64_t)hl;
	g->sectors = (uint64_t)sectors;
	g->bitmap_offset = (uint64_t)bo;
	g->bitmap_len = (uint64_t)bl;
	g->bitmap_used = (uint64_t)used;
	g->covered = (uint64_t)cov;
	g->data_offset = (uint64_t)dof;
	g->file_size = (uint64_t)fs;
	g->overflow = fs > (u128)INT64_MAX;
}

size_t tu_build_header(uint8_t *buf, const struct tu_spec *s)
{
	size_t blen = strlen(s->backing);

	memset(buf, 0, UBDK_HDR_MAX_SIZE);
	switch (s->layout) {
	case UBDK_LAYOUT_V1:
		tu_put32(buf, UBDK_COW_MAGIC, s->big);
		tu_put32(buf + 4, 1, s->big);
		memcpy(buf + 8, s->backing, blen);
		tu_put32(buf + 264, s->mtime, s->big);
		tu_put64(buf + 268, s->size, s->big);
		tu_put32(buf + 276, s->ss, s->big);
		return 280;
	case UBDK_LAYOUT_V2:
		tu_put32(buf, UBDK_COW_MAGIC, true);
		tu_put32(buf + 4, 2, true);
		memcpy(buf + 8, s->backing, blen);
		tu_put32(buf + 4104, s->mtime, true);
		tu_put64(buf + 4108, s->size, true);
		tu_put32(buf + 4116, s->ss, true);
		return 4120;
	case UBDK_LAYOUT_V3:
		tu_put32(buf, UBDK_COW_MAGIC, true);
		tu_put32(buf + 4, 3, true);
		tu_put32(buf + 8, s->mtime, true);
		tu_put64(buf + 12, s->size, true);
		tu_put32(buf + 20, s->ss, true);
		tu_put32(buf + 24, s->align, true);
		tu_put32(buf + 28, s->cow_format, true);
		memcpy(buf + 32, s->backing, blen);
		return 4128;
	default:
		tu_put32(buf, UBDK_COW_MAGIC, true);
		tu_put32(buf + 4, 3, true);
		/* htonl(mtime) stored in a little-endian 8-byte time_t. */
		tu_put32(buf + 8, s->mtime, true);
		tu_put32(buf + 12, 0xdeadbeef, true);
		tu_put64(buf + 16, s->size, true);
		tu_put32(buf + 24, s->ss, true);
		tu_put32(buf + 28, s->align, true);
		tu_put32(buf + 32, s->cow_format, true);
		memcpy(buf + 36, s->backing, blen);
		return 4136;
	}
}

bool tu_bit(const uint8_t *bm, uint64_t n)
{
	return (bm[n / 8] & (1u << (n % 8))) != 0;
}

void tu_setbit(uint8_t *bm, uint64_t n)
{
	bm[n / 8] = (uint8_t)(bm[n / 8] | (1u << (n % 8)));
}

size_t tu_first_diff(const void *a, const void *b, size_t len)
{
	const uint8_t *x = a, *y = b;
	size_t i;

	for (i = 0; i < len && x[i] == y[i]; i++)
		;
	return i;
}

bool tu_cow_test(struct ubdk_cow *c, uint64_t n)
{
	struct ubdk_err e = { 0 };
	int ret = ubdk_cow_test(c, n, &e);

	ck_assert_msg(ret >= 0, "ubdk_cow_test: %s", e.msg);
	return ret == 1;
}

uint64_t tu_cow_count(struct ubdk_cow *c, uint64_t start, uint64_t end)
{
	struct ubdk_err e = { 0 };
	uint64_t n = 0;

	ck_assert_msg(ubdk_cow_count(c, start, end, &n, &e) == 0,
		      "ubdk_cow_count: %s", e.msg);
	return n;
}

int tu_cow_next_run(struct ubdk_cow *c, uint64_t *pos, uint64_t end,
		    struct ubdk_run *run)
{
	struct ubdk_err e = { 0 };
	int ret = ubdk_cow_next_run(c, pos, end, run, &e);

	ck_assert_msg(ret >= 0, "ubdk_cow_next_run: %s", e.msg);
	return ret;
}

bool tu_cow_bitmap_eq(struct ubdk_cow *c, const uint8_t *bm, uint64_t bits)
{
	for (uint64_t n = 0; n < bits; n++)
		if (tu_cow_test(c, n) != tu_bit(bm, n))
			return false;
	return true;
}
