/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tools/common/extent.c: extents of sparse files, and copies between them. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "extent.h"

static int ticks;
static uint64_t ticked;

static int tick(void *arg, uint64_t bytes)
{
	(void)arg;
	ticks++;
	ticked += bytes;
	return ticks > 1000 ? -EINTR : 0;
}

static int scratch(const char *dir, const char *name)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(path);
		exit(2);
	}
	return fd;
}

/* Data at 1 MiB and 5 MiB (64 KiB each) in an 8 MiB sparse file. */
static void test_extents(const char *dir)
{
	int fd = scratch(dir, "sparse");
	char buf[65536];
	struct extent_iter it;
	uint64_t off, len, seen = 0;
	int n = 0, ret;

	memset(buf, 0xab, sizeof(buf));
	CHECK(ftruncate(fd, 8 << 20) == 0, "ftruncate");
	CHECK(pwrite(fd, buf, sizeof(buf), 1 << 20) == sizeof(buf), "write");
	CHECK(pwrite(fd, buf, sizeof(buf), 5 << 20) == sizeof(buf), "write");
	fsync(fd);
	extent_iter_init(&it, fd, 0, 8 << 20);
	while ((ret = extent_next(&it, &off, &len)) > 0) {
		CHECK(off == (n ? 5u << 20 : 1u << 20) && len == sizeof(buf),
		      "extent %d at %llu+%llu", n, (unsigned long long)off,
		      (unsigned long long)len);
		seen += len;
		n++;
	}
	CHECK(ret == 0 && n == 2, "%d extents, ret %d", n, ret);
	CHECK(extent_data_bytes(fd, 8 << 20) == 2 * sizeof(buf), "data bytes");
	/* A window that starts inside the first extent and ends inside the
	 * second clips both. */
	extent_iter_init(&it, fd, (1 << 20) + 4096, (5 << 20) + 4096);
	CHECK(extent_next(&it, &off, &len) == 1 && off == (1 << 20) + 4096 &&
	      len == sizeof(buf) - 4096, "clipped first");
	CHECK(extent_next(&it, &off, &len) == 1 && off == 5 << 20 &&
	      len == 4096, "clipped second");
	CHECK(extent_next(&it, &off, &len) == 0, "end");
	/* Only holes: nothing. */
	extent_iter_init(&it, fd, 6 << 20, 8 << 20);
	CHECK(extent_next(&it, &off, &len) == 0, "holes only");
	close(fd);
	/* A failing lseek: the error, the rest as data, then the end. */
	extent_iter_init(&it, -1, 4096, 8192);
	ret = extent_next(&it, &off, &len);
	CHECK(ret == -EBADF && off == 4096 && len == 4096, "error: ret %d", ret);
	CHECK(extent_next(&it, &off, &len) == 0, "end after an error");
	CHECK(extent_data_bytes(-1, 8192) == 8192, "data bytes after an error");
}

/* A copy past the source's end writes zeros; both paths give the same. */
static void test_copy(const char *dir, bool no_cfr)
{
	int src = scratch(dir, "src"), dst = scratch(dir, "dst");
	struct copy_ctx c = { .no_cfr = no_cfr, .tick = tick };
	enum copy_side side;
	char *a = malloc(3 << 20), *b = malloc(3 << 20);

	for (int i = 0; i < (3 << 20); i++)
		a[i] = (char)(i * 7 + 1);
	CHECK(pwrite(src, a, 2 << 20, 0) == (2 << 20), "write src");
	memset(a + (2 << 20), 0, 1 << 20);
	memset(b, 0x5c, 3 << 20);
	CHECK(pwrite(dst, b, 3 << 20, 0) == (3 << 20), "write dst");
	ticks = 0;
	ticked = 0;
	CHECK(copy_range(&c, src, 0, dst, 0, 3 << 20, &side) == 0, "copy");
	CHECK(ticked == (3 << 20), "ticked %llu", (unsigned long long)ticked);
	CHECK(pread(dst, b, 3 << 20, 0) == (3 << 20), "read dst");
	CHECK(memcmp(a, b, 3 << 20) == 0, "copy differs (no_cfr %d)", no_cfr);
	/* A bad destination is named as such. */
	CHECK(copy_range(&c, src, 0, -1, 0, 4096, &side) < 0 &&
	      side == COPY_DST, "bad dst");
	copy_ctx_free(&c);
	close(src);
	close(dst);
	free(a);
	free(b);
}

int main(void)
{
	char dir[] = "/tmp/extent_test.XXXXXX";

	if (!mkdtemp(dir))
		return 2;
	test_extents(dir);
	test_copy(dir, false);
	test_copy(dir, true);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			failures++;
	}
	if (failures) {
		printf("extent: 0 passed, %d failed\n", failures);
		return 1;
	}
	printf("extent: all passed\n");
	return 0;
}
