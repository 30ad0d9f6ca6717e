/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cowutil - drive the format library from shell tests and benchmarks.
 * Not installed.  Every subcommand goes through the public API only.
 *
 *   cowutil info COW                 header and geometry as key=value
 *   cowutil merged [-b B] COW OUT    write the merged view to OUT (sparse)
 *   cowutil create [-V v] [-s ss] [-a al] COW BACKING
 *   cowutil write COW OFFSET FILE    write FILE's bytes through the pair
 *   cowutil check COW                compare the backing with the header
 *   cowutil runs COW                 the runs of COW sectors, one per line
 *   cowutil grep COW STRING          sectors of the merged view holding STRING
 *   cowutil rebase COW NEWBACKING
 *   cowutil same REF FILE...         name each FILE whose bytes differ from
 *                                    REF's; reads only where either has data
 *   cowutil cbt-map MAP              a CBT map (<cow>.cbt-map): its header
 *   cowutil cbt-record REC           as key=value, then "run START COUNT"
 *                                    lines (blocks), read through
 *                                    ubdk_cbt_file_open/_next
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ubdk_cbt.h"
#include "ubdk_cow.h"

#define CHUNK (1U << 20)

static int fail(const struct ubdk_err *err)
{
	fprintf(stderr, "cowutil: %s [%s]\n", err->msg,
		ubdk_errcode_name(err->code));
	return 1;
}

static int open_cow(const char *path, const char *backing, int flags,
		    struct ubdk_cow **cow)
{
	struct ubdk_err err = { 0 };

	if (ubdk_cow_open(path, backing, flags, cow, &err) < 0)
		return fail(&err);
	return 0;
}

static int cmd_info(const char *path)
{
	struct ubdk_err err = { 0 };
	struct ubdk_cow *cow;
	uint64_t present;
	const struct ubdk_header *h;
	const struct ubdk_geometry *g;

	if (open_cow(path, NULL, UBDK_OPEN_NO_BACKING, &cow))
		return 1;
	h = ubdk_cow_header(cow);
	g = ubdk_cow_geometry(cow);
	if (ubdk_cow_count(cow, 0, g->sectors, &present, &err) < 0) {
		fprintf(stderr, "cowutil: %s\n", err.msg);
		ubdk_cow_close(cow);
		return 1;
	}
	printf("layout=%s\nversion=%u\nbacking=%s\nmtime=%u\nsize=%llu\n"
	       "sectorsize=%u\nalignment=%u\ncow_format=%u\nheader_len=%llu\n"
	       "sectors=%llu\nbitmap_offset=%llu\nbitmap_len=%llu\n"
	       "data_offset=%llu\ncow_sectors=%llu\n",
	       ubdk_layout_name(h->layout), h->version, h->backing, h->mtime,
	       (unsigned long long)h->size, h->sectorsize, h->alignment,
	       h->cow_format, (unsigned long long)g->header_len,
	       (unsigned long long)g->sectors,
	       (unsigned long long)g->bitmap_offset,
	       (unsigned long long)g->bitmap_len,
	       (unsigned long long)g->data_offset,
	       (unsigned long long)present);
	ubdk_cow_close(cow);
	return 0;
}

static bool all_zero(const char *buf, size_t len)
{
	return len == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, len - 1) == 0);
}

static int cmd_merged(const char *path, const char *backing, const char *out)
{
	struct ubdk_err err = { 0 };
	struct ubdk_cow *cow;
	uint64_t size, off;
	char *buf;
	int fd, rc = 1;

	if (open_cow(path, backing, 0, &cow))
		return 1;
	size = ubdk_cow_header(cow)->size;
	buf = malloc(CHUNK);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (!buf || fd < 0) {
		perror(out);
		goto done;
	}
	for (off = 0; off < size; off += CHUNK) {
		size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;

		if (ubdk_cow_pread(cow, buf, n, off, &err) < 0) {
			fail(&err);
			goto done;
		}
		if (all_zero(buf, n))
			continue;
		if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) {
			perror(out);
			goto done;
		}
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		perror(out);
		goto done;
	}
	rc = 0;
done:
	if (fd >= 0)
		close(fd);
	free(buf);
	ubdk_cow_close(cow);
	return rc;
}

static int cmd_create(int argc, char **argv)
{
	struct ubdk_create_opts o = { 0 };
	struct ubdk_err err = { 0 };
	int c;

	while ((c = getopt(argc, argv, "V:s:a:")) != -1) {
		switch (c) {
		case 'V': o.version = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 's': o.sectorsize = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'a': o.alignment = (uint32_t)strtoul(optarg, NULL, 0); break;
		default: return 2;
		}
	}
	if (argc - optind != 2)
		return 2;
	if (ubdk_create(argv[optind], argv[optind + 1], &o, false, &err) < 0)
		return fail(&err);
	return 0;
}

/*
 * N sectors of random bytes at random sector offsets (seeded: the same
 * run twice writes the same), through the library: dirty data scattered
 * over a large device, for the backup benchmarks.
 */
static int cmd_scatter(const char *path, const char *nstr, const char *seedstr)
{
	struct ubdk_err err = { 0 };
	struct ubdk_cow *cow;
	uint64_t n = strtoull(nstr, NULL, 0), x = strtoull(seedstr, NULL, 0) | 1, sectors;
	uint32_t ss;
	char buf[4096];
	int rc = 0;

	if (open_cow(path, NULL, UBDK_OPEN_RDWR | UBDK_OPEN_LOCK, &cow))
		return 1;
	ss = ubdk_cow_header(cow)->sectorsize;
	sectors = ubdk_cow_geometry(cow)->sectors;
	for (uint64_t i = 0; i < n && rc == 0 && ss <= sizeof(buf); i++) {
		for (uint32_t j = 0; j < ss; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[j] = (char)(x >> 24);
		}
		if (ubdk_cow_pwrite(cow, buf, ss, x % sectors * ss, &err) < 0)
			rc = 1;
	}
	if (rc == 0 && ubdk_cow_flush(cow, &err) < 0)
		rc = 1;
	if (rc)
		fail(&err);
	ubdk_cow_close(cow);
	return rc;
}

static int cmd_write(const char *path, const char *offstr, const char *file)
{
	struct ubdk_err err = { 0 };
	struct ubdk_cow *cow;
	struct stat st;
	char *buf;
	int fd, rc = 1;

	fd = open(file, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(file);
		return 1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf || read(fd, buf, (size_t)st.st_size) != st.st_size) {
		perror(file);
		close(fd);
		free(buf);
		return 1;
	}
	close(fd);
	if (open_cow(path, NULL, UBDK_OPEN_RDWR | UBDK_OPEN_LOCK, &cow)) {
		free(buf);
		return 1;
	}
	if (ubdk_cow_pwrite(cow, buf, (size_t)st.st_size,
			    strtoull(offstr, NULL, 0), &err) < 0 ||
	    ubdk_cow_flush(cow, &err) < 0)
		fail(&err);
	else
		rc = 0;
	free(buf);
	ubdk_cow_close(cow);
	return rc;
}

static int cmd_check(const char *path)
{
	struct ubdk_err err = { 0 };
	struct ubdk_backing_check chk;
	struct ubdk_cow *cow;
	int ret;

	if (open_cow(path, NULL, UBDK_OPEN_NO_BACKING, &cow))
		return 1;
	ret = ubdk_backing_check(ubdk_cow_header(cow),
				 ubdk_cow_header(cow)->backing, &chk, &err);
	ubdk_cow_close(cow);
	printf("size_ok=%d\nmtime_ok=%d\nsize_delta=%lld\nmtime_delta=%lld\n",
	       chk.size_ok, chk.mtime_ok, (long long)chk.size_delta,
	       (long long)chk.mtime_delta);
	return ret < 0 ? fail(&err) : 0;
}

static int cmd_runs(const char *path)
{
	struct ubdk_err err = { 0 };
	struct ubdk_cow *cow;
	struct ubdk_run run;
	uint64_t pos = 0;
	int ret;

	if (open_cow(path, NULL, UBDK_OPEN_NO_BACKING, &cow))
		return 1;
	while ((ret = ubdk_cow_next_run(cow, &pos, UINT64_MAX, &run, &err)) > 0)
		if (run.src == UBDK_RUN_COW)
			printf("%llu %llu\n", (unsigned long long)run.start,
			       (unsigned long long)run.count);
	ubdk_cow_close(cow);
	if (ret < 0)
		fprintf(stderr, "cowutil: %s\n", err.msg);
	return ret < 0;
}

static int cmd_cbt_file(const char *path, int kind)
{
	struct ubdk_err err = { 0 };
	struct ubdk_cbt_file *f;
	struct ubdk_cbt_info in;
	uint64_t s, n;
	int ret;

	/* Any device: this shows what a file says. */
	if (ubdk_cbt_file_open(path, kind, 0, &f, &in, &err) < 0)
		return fail(&err);
	printf("kind=%s\n", in.kind == UBDK_CBT_KIND_MAP ? "map" : "record");
	if (kind == UBDK_CBT_KIND_MAP)
		printf("from=%s\nto=%s\n", in.from, in.name);
	else
		printf("checkpoint=%s\nstate=%s\n", in.name,
		       in.state == UBDK_CBT_STATE_CLEAN ? "clean" : "open");
	printf("consistent=%s\nreason=%s\ngranularity=%u\nsize=%llu\n"
	       "generation=%llu\nblocks=%llu\nruns=%llu\ncow_size=%llu\n"
	       "cow_mtime_ns=%lld\n", in.reason ? "no" : "yes",
	       ubdk_cbt_reason_name((int)in.reason), in.granularity,
	       (unsigned long long)in.device_size,
	       (unsigned long long)in.generation,
	       (unsigned long long)in.blocks, (unsigned long long)in.runs,
	       (unsigned long long)in.id.cow_size,
	       (long long)in.id.cow_mtime_ns);
	while ((ret = ubdk_cbt_file_next(f, &s, &n, &err)) > 0)
		printf("run %llu %llu\n", (unsigned long long)s,
		       (unsigned long long)n);
	ubdk_cbt_file_close(f);
	return ret < 0 ? fail(&err) : 0;
}

static int cmd_grep(const char *path, const char *needle)
{
	struct ubdk_err err = { 0 };
	struct ubdk_cow *cow;
	uint64_t size, off;
	size_t nlen = strlen(needle);
	char *buf;
	int rc = 0;

	if (open_cow(path, NULL, 0, &cow))
		return 1;
	size = ubdk_cow_header(cow)->size;
	buf = malloc(CHUNK);
	for (off = 0; buf && off < size; off += CHUNK) {
		size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;

		if (ubdk_cow_pread(cow, buf, n, off, &err) < 0) {
			rc = fail(&err);
			break;
		}
		for (char *p = buf; (p = memmem(p, n - (size_t)(p - buf),
						needle, nlen)); p++)
			printf("%llu\n", (unsigned long long)(off + (uint64_t)(p - buf)));
	}
	free(buf);
	ubdk_cow_close(cow);
	return rc;
}

static int cmd_rebase(const char *path, const char *newb)
{
	struct ubdk_err err = { 0 };
	struct ubdk_cow *cow;
	int ret;

	if (open_cow(path, NULL, UBDK_OPEN_RDWR | UBDK_OPEN_NO_BACKING, &cow))
		return 1;
	ret = ubdk_cow_rebase(cow, newb, &err);
	ubdk_cow_close(cow);
	return ret < 0 ? fail(&err) : 0;
}

static off_t next_data(int fd, off_t from, off_t size)
{
	off_t d = lseek(fd, from, SEEK_DATA);

	return d < 0 || d > size ? size : d;
}

static off_t next_hole(int fd, off_t from, off_t size)
{
	off_t h = lseek(fd, from, SEEK_HOLE);

	return h < 0 || h > size ? size : h;
}

/* 1 if the two files hold the same bytes; holes read as zeros. */
static int same_bytes(int a, int b, off_t size, char *ba, char *bb)
{
	off_t off = 0;

	while (off < size) {
		off_t da = next_data(a, off, size), db = next_data(b, off, size);
		off_t start = da < db ? da : db, end, hb;

		if (start >= size)
			break;
		end = next_hole(a, start, size);
		hb = next_hole(b, start, size);
		if (hb > end)
			end = hb;
		for (off = start; off < end;) {
			size_t n = end - off < CHUNK ? (size_t)(end - off) : CHUNK;

			if (pread(a, ba, n, off) != (ssize_t)n ||
			    pread(b, bb, n, off) != (ssize_t)n || memcmp(ba, bb, n))
				return 0;
			off += (off_t)n;
		}
	}
	return 1;
}

static int cmd_same(int nfiles, char **files)
{
	char *ba = malloc(CHUNK), *bb = malloc(CHUNK);
	int ref = open(files[0], O_RDONLY), rc = 0;
	struct stat rst, st;

	if (!ba || !bb || ref < 0 || fstat(ref, &rst) < 0) {
		fprintf(stderr, "cowutil: %s: %s\n", files[0], strerror(errno));
		return 2;
	}
	for (int i = 1; i < nfiles; i++) {
		int fd = open(files[i], O_RDONLY);

		if (fd < 0 || fstat(fd, &st) < 0 || st.st_size != rst.st_size ||
		    !same_bytes(ref, fd, rst.st_size, ba, bb)) {
			printf("%s\n", files[i]);
			rc = 1;
		}
		if (fd >= 0)
			close(fd);
	}
	close(ref);
	free(ba);
	free(bb);
	return rc;
}

/* LENGTH bytes of the merged view at OFFSET, to stdout. */
static int cmd_read(const char *path, const char *offset, const char *length)
{
	struct ubdk_err err = { 0 };
	struct ubdk_cow *cow;
	uint64_t off = strtoull(offset, NULL, 0), len = strtoull(length, NULL, 0);
	char *buf = malloc(CHUNK);
	int rc = 1;

	if (!buf || open_cow(path, NULL, 0, &cow)) {
		free(buf);
		return 1;
	}
	while (len > 0) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;

		if (ubdk_cow_pread(cow, buf, n, off, &err) < 0) {
			fail(&err);
			goto done;
		}
		if (fwrite(buf, 1, n, stdout) != n) {
			perror("stdout");
			goto done;
		}
		off += n;
		len -= n;
	}
	rc = fflush(stdout) != 0;
done:
	free(buf);
	ubdk_cow_close(cow);
	return rc;
}

/*
 * Open with the kernel's locks, check the backing file (on the descriptor
 * held, or by path with --by-path), say "held", and keep the locks until
 * stdin ends: lets a test see whether the check dropped them.
 */
static int cmd_hold(const char *path, bool by_path)
{
	struct ubdk_backing_check chk;
	struct ubdk_err err = { 0 };
	struct ubdk_cow *cow;
	char buf[64];
	int ret;

	if (open_cow(path, NULL, UBDK_OPEN_LOCK, &cow))
		return 1;
	if (by_path)
		ret = ubdk_backing_check(ubdk_cow_header(cow),
					 ubdk_cow_backing_path(cow), &chk, &err);
	else
		ret = ubdk_cow_backing_check(cow, &chk, &err);
	if (ret < 0) {
		ubdk_cow_close(cow);
		return fail(&err);
	}
	printf("held\n");
	fflush(stdout);
	while (fread(buf, 1, sizeof(buf), stdin) > 0)
		;
	ubdk_cow_close(cow);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "info") && argc == 3)
		return cmd_info(argv[2]);
	if (!strcmp(cmd, "merged") && argc == 4)
		return cmd_merged(argv[2], NULL, argv[3]);
	if (!strcmp(cmd, "merged") && argc == 6 && !strcmp(argv[2], "-b"))
		return cmd_merged(argv[4], argv[3], argv[5]);
	if (!strcmp(cmd, "create"))
		return cmd_create(argc - 1, argv + 1);
	if (!strcmp(cmd, "scatter") && argc == 5)
		return cmd_scatter(argv[2], argv[3], argv[4]);
	if (!strcmp(cmd, "write") && argc == 5)
		return cmd_write(argv[2], argv[3], argv[4]);
	if (!strcmp(cmd, "check") && argc == 3)
		return cmd_check(argv[2]);
	if (!strcmp(cmd, "runs") && argc == 3)
		return cmd_runs(argv[2]);
	if (!strcmp(cmd, "grep") && argc == 4)
		return cmd_grep(argv[2], argv[3]);
	if (!strcmp(cmd, "rebase") && argc == 4)
		return cmd_rebase(argv[2], argv[3]);
	if (!strcmp(cmd, "read") && argc == 5)
		return cmd_read(argv[2], argv[3], argv[4]);
	if (!strcmp(cmd, "hold") && argc == 3)
		return cmd_hold(argv[2], false);
	if (!strcmp(cmd, "hold") && argc == 4 && !strcmp(argv[2], "--by-path"))
		return cmd_hold(argv[3], true);
	if (!strcmp(cmd, "cbt-map") && argc == 3)
		return cmd_cbt_file(argv[2], UBDK_CBT_KIND_MAP);
	if (!strcmp(cmd, "cbt-record") && argc == 3)
		return cmd_cbt_file(argv[2], UBDK_CBT_KIND_RECORD);
	if (!strcmp(cmd, "same") && argc >= 3)
		return cmd_same(argc - 2, argv + 2);
	fprintf(stderr, "usage: cowutil info|merged|read|create|write|scatter|check|runs|grep|rebase|hold|same|cbt-map|cbt-record ...\n");
	return 2;
}
