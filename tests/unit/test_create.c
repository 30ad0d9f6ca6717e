/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Making new COW files: ubdk_create_header, ubdk_create_fd, ubdk_create.
 * Expected bytes come from tu_build_header with the backing file's own stat
 * values, so a wrong field, offset or byte order shows up as a byte diff.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "suites.h"
#include "test_util.h"

#define MTIME 1600000000

/* A backing file of size bytes (sparse), mtime MTIME; returns its path. */
static const char *make_backing(const char *name, uint64_t size)
{
	const char *p = tu_path(name);

	tu_truncate(p, size);
	tu_set_mtime(p, MTIME);
	return p;
}

/*
 * The whole file a new COW must be: the header as the format says, zeros
 * up to data_offset + size.  Checks file at path against it.
 */
static void expect_new_cow(const char *path, const struct tu_spec *s)
{
	static uint8_t hdr[UBDK_HDR_MAX_SIZE];
	struct tu_geo g;
	size_t len, hlen = tu_build_header(hdr, s), d;
	uint8_t *file;

	tu_geometry(s->layout, s->size, s->ss, s->align, &g);
	ck_assert_uint_eq(tu_file_size(path), g.file_size);
	file = tu_read_file(path, &len);
	d = tu_first_diff(file, hdr, hlen);
	TU_CHECK(d == hlen, "%s: header byte %zu is 0x%02x, want 0x%02x",
		      path, d, file[d], hdr[d]);
	for (size_t i = hlen; i < len; i++)
		TU_CHECK(file[i] == 0, "%s: byte %zu is 0x%02x", path, i,
			      file[i]);
	free(file);
}

static struct tu_spec spec_for(int layout, const char *abs_backing,
			       uint64_t size, uint32_t ss, uint32_t align)
{
	struct tu_spec s = {
		.layout = layout, .big = !tu_host_le(), .mtime = MTIME,
		.size = size, .ss = ss, .align = layout == 3 ? align : ss,
		.backing = abs_backing,
	};

	return s;
}

START_TEST(create_header_defaults)
{
	char want[4096];
	struct ubdk_header h;
	struct ubdk_err e = { 0 };
	struct ubdk_create_opts zero = { 0 };

	make_backing("back.img", 100000);
	tu_realpath(tu_dir, want, sizeof(want) - 16);
	strcat(want, "/back.img");
	/* A relative name is made absolute from the cwd. */
	ck_assert_int_eq(chdir(tu_dir), 0);
	for (int i = 0; i < 2; i++) {
		memset(&h, 0xee, sizeof(h));
		TU_OK(ubdk_create_header("back.img", i ? &zero : NULL, &h, &e), e);
		ck_assert_int_eq(h.layout, UBDK_LAYOUT_V3);
		ck_assert_uint_eq(h.version, 3);
		ck_assert(!h.v1_swapped);
		ck_assert_uint_eq(h.sectorsize, 512);
		ck_assert_uint_eq(h.alignment, 4096);
		ck_assert_uint_eq(h.cow_format, 0);
		ck_assert_uint_eq(h.size, 100000);
		ck_assert_uint_eq(h.mtime, MTIME);
		ck_assert_str_eq(h.backing, want);
	}
}
END_TEST

/* v1 and v2 have no alignment: it follows the sector size. */
START_TEST(create_header_versions)
{
	const char *b = make_backing("b", 3 << 20);
	struct ubdk_create_opts o = { .sectorsize = 1024, .alignment = 8192 };
	struct ubdk_header h;
	struct ubdk_err e = { 0 };

	for (uint32_t v = 1; v <= 3; v++) {
		o.version = v;
		TU_OK(ubdk_create_header(b, &o, &h, &e), e);
		ck_assert_int_eq(h.layout, (int)v);
		ck_assert_uint_eq(h.version, v);
		ck_assert_uint_eq(h.sectorsize, 1024);
		ck_assert_uint_eq(h.alignment, v == 3 ? 8192 : 1024);
		ck_assert_uint_eq(h.size, 3 << 20);
		ck_assert(!h.v1_swapped);
	}
}
END_TEST

/* The header keeps the low 32 bits of a post-2106 mtime. */
START_TEST(create_header_mtime_low_bits)
{
	const char *b = make_backing("b", 4096);
	struct ubdk_header h;
	struct ubdk_err e = { 0 };

	tu_set_mtime(b, (int64_t)(1ULL << 32) + 12345);
	TU_OK(ubdk_create_header(b, NULL, &h, &e), e);
	ck_assert_uint_eq(h.mtime, 12345);
}
END_TEST

START_TEST(create_header_rejects)
{
	const char *b = make_backing("b", 4096);
	const char *empty = tu_path("empty");
	struct ubdk_create_opts o = { 0 };
	struct ubdk_header h;
	struct ubdk_err e = { 0 };

	o.version = 4;
	TU_EXPECT_ERR(ubdk_create_header(b, &o, &h, &e), e, UBDK_E_BAD_VERSION);
	o.version = 3;
	o.sectorsize = 1000;
	TU_EXPECT_ERR(ubdk_create_header(b, &o, &h, &e), e, UBDK_E_SECTORSIZE);
	TU_MSG_HAS(e, "sectorsize");

	tu_write_file(empty, "", 0);
	TU_EXPECT_ERR(ubdk_create_header(empty, NULL, &h, &e), e,
		      UBDK_E_EMPTY_BACKING);
	TU_MSG_HAS(e, "empty");
	TU_EXPECT_ERR(ubdk_create_header(tu_dir, NULL, &h, &e), e,
		      UBDK_E_NOT_REGULAR);
	TU_MSG_HAS(e, tu_dir);
	TU_EXPECT_ERR(ubdk_create_header(tu_path("missing"), NULL, &h, &e), e,
		      UBDK_E_SYS);
	ck_assert_int_eq(e.errnum, ENOENT);
	TU_MSG_HAS(e, "missing");
	TU_EXPECT_ERR(ubdk_create_header("", NULL, &h, &e), e,
		      UBDK_E_BACKING_EMPTY);
}
END_TEST

/* An absolute path of 256+ bytes fits v2 and v3 but not v1's 256 bytes. */
START_TEST(create_header_v1_path_too_long)
{
	char dir[4096], name[4096];
	struct ubdk_create_opts o = { .version = 1 };
	struct ubdk_header h;
	struct ubdk_err e = { 0 };
	char seg[101];

	memset(seg, 'd', 100);
	seg[100] = '\0';
	tu_fmt(dir, sizeof(dir), "%s/%s", tu_dir, seg);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	tu_fmt(dir + strlen(dir), sizeof(dir) - strlen(dir), "/%s", seg);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	tu_fmt(name, sizeof(name), "%s/%s", dir, seg);
	tu_truncate(name, 4096);
	ck_assert_uint_ge(strlen(name), 256);
	TU_EXPECT_ERR(ubdk_create_header(name, &o, &h, &e), e,
		      UBDK_E_PATH_TOO_LONG);
	o.version = 2;
	TU_OK(ubdk_create_header(name, &o, &h, &e), e);
	tu_realpath(name, dir, sizeof(dir));
	ck_assert_str_eq(h.backing, dir);
}
END_TEST

struct create_case {
	uint32_t version, ss, align;
	uint64_t size;
};

static const struct create_case create_cases[] = {
	{ 3, 0, 0, 1 << 20 },
	{ 3, 4096, 512, 10 * 4096 + 100 },
	{ 3, 512, 65536, 777 },
	{ 2, 0, 0, 9 * 512 },
	{ 2, 2048, 0, 1 << 20 },
	{ 1, 0, 0, 17 * 512 + 3 },
	{ 1, 1024, 0, 1 << 20 },
};

/* ubdk_create writes exactly the header the format describes. */
START_TEST(create_file_bytes)
{
	const struct create_case *c = &create_cases[_i];
	struct ubdk_create_opts o = { c->version, c->ss, c->align };
	const char *b = make_backing("backing", c->size);
	const char *cow = tu_path("new.cow");
	char abs[4096];
	struct ubdk_err e = { 0 };
	struct tu_spec s;

	tu_realpath(b, abs, sizeof(abs));
	TU_OK(ubdk_create(cow, b, &o, false, &e), e);
	s = spec_for((int)c->version, abs, c->size, c->ss ? c->ss : 512,
		     c->align ? c->align : 4096);
	expect_new_cow(cow, &s);
}
END_TEST

/* A fresh COW on a 64 MiB backing is all holes but its header and tail. */
START_TEST(create_is_sparse)
{
	uint64_t size = 64ULL << 20;
	const char *b = make_backing("big", size);
	const char *cow = tu_path("sparse.cow");
	struct ubdk_err e = { 0 };
	struct tu_geo g;
	struct stat sb;

	TU_OK(ubdk_create(cow, b, NULL, false, &e), e);
	tu_geometry(UBDK_LAYOUT_V3, size, 512, 4096, &g);
	ck_assert_int_eq(stat(cow, &sb), 0);
	ck_assert_uint_eq((uint64_t)sb.st_size, g.data_offset + size);
	TU_CHECK((uint64_t)sb.st_blocks * 512 < (1 << 20),
		      "%lld bytes allocated", (long long)sb.st_blocks * 512);
}
END_TEST

START_TEST(create_refuses_existing)
{
	const char *b = make_backing("b", 1 << 16);
	const char *cow = tu_path("c.cow");
	struct ubdk_err e = { 0 };
	struct tu_geo g;
	uint8_t *before, *after;
	size_t blen, alen;

	TU_OK(ubdk_create(cow, b, NULL, false, &e), e);
	/* Mark the file so that any rewrite would show. */
	tu_pwrite_file(cow, "MARK", 4, 9000);
	before = tu_read_file(cow, &blen);
	TU_EXPECT_ERR(ubdk_create(cow, b, NULL, false, &e), e, UBDK_E_SYS);
	ck_assert_int_eq(e.errnum, EEXIST);
	TU_MSG_HAS(e, cow);
	after = tu_read_file(cow, &alen);
	ck_assert_uint_eq(alen, blen);
	ck_assert_int_eq(memcmp(before, after, blen), 0);
	free(after);

	/* overwrite: a complete new COW, the mark gone. */
	TU_OK(ubdk_create(cow, b, NULL, true, &e), e);
	after = tu_read_file(cow, &alen);
	ck_assert_uint_eq(alen, blen);
	ck_assert_mem_eq(after + 9000, "\0\0\0\0", 4);
	free(after);
	free(before);

	/* overwrite also truncates a longer file. */
	tu_truncate(cow, 5 << 20);
	tu_pwrite_file(cow, "JUNK", 4, (5 << 20) - 4);
	TU_OK(ubdk_create(cow, b, NULL, true, &e), e);
	tu_geometry(UBDK_LAYOUT_V3, 1 << 16, 512, 4096, &g);
	ck_assert_uint_eq(tu_file_size(cow), g.file_size);
}
END_TEST

/* A failed create leaves no file that could be mistaken for a COW. */
START_TEST(create_failure_leaves_nothing)
{
	const char *empty = tu_path("empty");
	const char *b = make_backing("b", 4096);
	const char *cow = tu_path("c.cow");
	struct ubdk_create_opts bad = { .sectorsize = 3 };
	struct ubdk_err e = { 0 };

	tu_write_file(empty, "", 0);
	TU_EXPECT_ERR(ubdk_create(cow, empty, NULL, false, &e), e,
		      UBDK_E_EMPTY_BACKING);
	ck_assert_int_ne(access(cow, F_OK), 0);
	TU_EXPECT_ERR(ubdk_create(cow, b, &bad, false, &e), e,
		      UBDK_E_SECTORSIZE);
	ck_assert_int_ne(access(cow, F_OK), 0);
	/* A directory that does not exist. */
	TU_EXPECT_ERR(ubdk_create(tu_path("no/such.cow"), b, NULL, false, &e),
		      e, UBDK_E_SYS);
	ck_assert_int_eq(e.errnum, ENOENT);
}
END_TEST

/*
 * A write that fails after the file was created (here: past a file size
 * limit) must remove the half-made file.  The limit is set in a child so
 * that it cannot leak into other tests.
 */
START_TEST(create_write_failure_removes_file)
{
	const char *b = make_backing("b", 1 << 20);
	const char *cow = tu_path("c.cow");
	pid_t pid;
	int status;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit rl = { .rlim_cur = 65536, .rlim_max = 65536 };
		struct ubdk_err e = { 0 };
		int ret;

		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
			_exit(201);
		ret = ubdk_create(cow, b, NULL, false, &e);
		if (ret == 0)
			_exit(100);
		if (access(cow, F_OK) == 0)
			_exit(200);
		if (e.errnum != EFBIG || ret != -EFBIG || !strstr(e.msg, cow))
			_exit(202);
		_exit(e.code);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), UBDK_E_SYS);
}
END_TEST

START_TEST(create_fd_writes_header_and_tail)
{
	const char *b = make_backing("b", 123456);
	const char *cow = tu_path("fd.cow");
	struct ubdk_header h;
	struct ubdk_err e = { 0 };
	struct tu_spec s;
	int fd;

	TU_OK(ubdk_create_header(b, NULL, &h, &e), e);
	fd = open(cow, O_RDWR | O_CREAT | O_EXCL, 0644);
	ck_assert_int_ge(fd, 0);
	TU_OK(ubdk_create_fd(fd, "fd.cow", &h, 0, &e), e);
	ck_assert_int_eq(close(fd), 0);
	s = spec_for(3, h.backing, 123456, 512, 4096);
	expect_new_cow(cow, &s);
}
END_TEST

/* The fast option: the same bytes in one block, not two. */
START_TEST(create_fd_fast)
{
	const char *b = make_backing("b", 1 << 20);
	const char *paths[2] = { tu_path("slow.cow"), tu_path("fast.cow") };
	struct ubdk_header h;
	struct ubdk_err e = { 0 };
	struct stat st[2];
	uint8_t *bytes[2];
	size_t len[2];
	struct tu_spec s;

	TU_OK(ubdk_create_header(b, NULL, &h, &e), e);
	for (int i = 0; i < 2; i++) {
		int fd = open(paths[i], O_RDWR | O_CREAT | O_EXCL, 0644);

		ck_assert_int_ge(fd, 0);
		TU_OK(ubdk_create_fd(fd, paths[i], &h, i ? UBDK_CREATE_FAST : 0, &e), e);
		ck_assert_int_eq(fsync(fd), 0);
		ck_assert_int_eq(fstat(fd, &st[i]), 0);
		ck_assert_int_eq(close(fd), 0);
		bytes[i] = tu_read_file(paths[i], &len[i]);
	}
	ck_assert_uint_eq(len[0], len[1]);
	ck_assert_uint_eq(tu_first_diff(bytes[0], bytes[1], len[0]), len[0]);
	/* The header's block only (the slow file also holds the last byte's). */
	ck_assert_int_le(st[1].st_blocks * 512, 4096);
	ck_assert_int_gt(st[0].st_blocks, st[1].st_blocks);
	s = spec_for(3, h.backing, 1 << 20, 512, 4096);
	expect_new_cow(paths[1], &s);
	free(bytes[0]);
	free(bytes[1]);
}
END_TEST

START_TEST(create_fd_rejects)
{
	const char *b = make_backing("b", 4096);
	const char *cow = tu_path("fd.cow");
	struct ubdk_header h;
	struct ubdk_err e = { 0 };
	int fd;

	TU_OK(ubdk_create_header(b, NULL, &h, &e), e);
	fd = open(cow, O_RDWR | O_CREAT | O_EXCL, 0644);
	ck_assert_int_ge(fd, 0);
	h.sectorsize = 0;
	TU_EXPECT_ERR(ubdk_create_fd(fd, "fd.cow", &h, 0, &e), e,
		      UBDK_E_SECTORSIZE);
	TU_MSG_HAS(e, "fd.cow");
	h.sectorsize = 512;
	h.layout = UBDK_LAYOUT_V3_BROKEN;
	TU_EXPECT_ERR(ubdk_create_fd(fd, "fd.cow", &h, 0, &e), e,
		      UBDK_E_INVALID_ARG);
	/* Nothing was written by the refused calls. */
	ck_assert_uint_eq(tu_file_size(cow), 0);
	ck_assert_int_eq(close(fd), 0);

	/* A descriptor that cannot be written. */
	h.layout = UBDK_LAYOUT_V3;
	fd = open(cow, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	TU_EXPECT_ERR(ubdk_create_fd(fd, "fd.cow", &h, 0, &e), e, UBDK_E_SYS);
	ck_assert_int_eq(e.errnum, EBADF);
	TU_MSG_HAS(e, "fd.cow");
	ck_assert_int_eq(close(fd), 0);
}
END_TEST

/* A new COW opens with the default checks and reads as its backing. */
START_TEST(create_then_open_reads_backing)
{
	struct tu_rng rng;
	size_t size = 50000, len;
	uint8_t *data = malloc(size), *got = malloc(size), *disk;
	const char *b = tu_path("b"), *cow = tu_path("c.cow");
	struct ubdk_cow *c;
	struct ubdk_err e = { 0 };

	tu_rng_seed(&rng, 11);
	tu_fill(&rng, data, size);
	tu_write_file(b, data, size);
	tu_set_mtime(b, MTIME);
	TU_OK(ubdk_create(cow, b, NULL, false, &e), e);
	TU_OK(ubdk_cow_open(cow, NULL, 0, &c, &e), e);
	ck_assert_uint_eq(tu_cow_count(c, 0, UINT64_MAX), 0);
	TU_OK(ubdk_cow_pread(c, got, size, 0, &e), e);
	ck_assert_int_eq(memcmp(got, data, size), 0);
	ck_assert_int_eq(ubdk_cow_close(c), 0);
	/* The backing file was only read. */
	disk = tu_read_file(b, &len);
	ck_assert_uint_eq(len, size);
	ck_assert_int_eq(memcmp(disk, data, size), 0);
	ck_assert_int_eq(tu_get_mtime(b), MTIME);
	free(disk);
	free(data);
	free(got);
}
END_TEST

Suite *create_suite(void)
{
	Suite *s = suite_create("create");
	TCase *tc = tcase_create("create");

	tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, create_header_defaults);
	tcase_add_test(tc, create_header_versions);
	tcase_add_test(tc, create_header_mtime_low_bits);
	tcase_add_test(tc, create_header_rejects);
	tcase_add_test(tc, create_header_v1_path_too_long);
	tcase_add_loop_test(tc, create_file_bytes, 0,
			    (int)(sizeof(create_cases) / sizeof(create_cases[0])));
	tcase_add_test(tc, create_is_sparse);
	tcase_add_test(tc, create_refuses_existing);
	tcase_add_test(tc, create_failure_leaves_nothing);
	tcase_add_test(tc, create_write_failure_removes_file);
	tcase_add_test(tc, create_fd_writes_header_and_tail);
	tcase_add_test(tc, create_fd_fast);
	tcase_add_test(tc, create_fd_rejects);
	tcase_add_test(tc, create_then_open_reads_backing);
	suite_add_tcase(s, tc);
	return s;
}
