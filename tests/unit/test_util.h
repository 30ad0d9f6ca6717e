/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helpers shared by the unit tests: scratch directories, file I/O, a fixed
 * seed PRNG, and a reference model of the on-disk format written from the
 * format description (not from the library), so that expectations never come
 * from the code under test.
 */
#ifndef UBDK_TEST_UTIL_H
#define UBDK_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <check.h>

#include "ubdk_static.h"

/*
 * ck_assert_msg without the per-call progress message Check sends through a
 * pipe on success: cheap enough for loops over every byte or bit.
 */
#define TU_CHECK(cond, ...) do { \
	if (!(cond)) \
		ck_abort_msg(__VA_ARGS__); \
} while (0)

/* Integer equality, the cheap way (see TU_CHECK). */
#define TU_EQ(a, b) do { \
	uintmax_t tu_a_ = (uintmax_t)(a), tu_b_ = (uintmax_t)(b); \
	if (tu_a_ != tu_b_) \
		ck_abort_msg("%s == %s: %ju != %ju", #a, #b, tu_a_, tu_b_); \
} while (0)

/*
 * A failed call: negative return equal to -errnum, the expected code, and
 * (when non-NULL) the given text somewhere in the message.  Macros, so that
 * a failure points at the caller's line.
 */
#define TU_EXPECT_ERR(ret, err, want) do { \
	int tu_r_ = (ret); \
	TU_CHECK(tu_r_ < 0, "expected failure %s, got %d", \
		      ubdk_errcode_name(want), tu_r_); \
	TU_CHECK((err).code == (want), "error code %s (%d), want %s: %s", \
		      ubdk_errcode_name((err).code), (err).code, \
		      ubdk_errcode_name(want), (err).msg); \
	TU_CHECK(tu_r_ == -(err).errnum, "returned %d, errnum %d", tu_r_, \
		 (err).errnum); \
} while (0)

#define TU_MSG_HAS(err, text) \
	TU_CHECK(strstr((err).msg, (text)) != NULL, \
		      "message \"%s\" does not mention \"%s\"", (err).msg, (text))

/* A successful call, showing the library's message if not. */
#define TU_OK(ret, err) do { \
	int tu_r_ = (ret); \
	TU_CHECK(tu_r_ >= 0, "unexpected failure %d [%s]: %s", tu_r_, \
		      ubdk_errcode_name((err).code), (err).msg); \
} while (0)

/* --- scratch directories ------------------------------------------------ */

/* Root scratch dir made by main(); every test gets a fresh subdirectory. */
extern char tu_root[];
/* The current test's directory (set by tu_setup). */
extern char tu_dir[];

int tu_make_root(void);
void tu_remove_root(void);
/* Checked fixture: make and remove tu_dir, restore the cwd. */
void tu_setup(void);
void tu_teardown(void);
/* Remove a directory tree (no symlinks followed). */
void tu_rmtree(const char *path);

/* snprintf that fails the test instead of truncating. */
void tu_fmt(char *out, size_t outlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* tu_dir + "/" + name, from a small ring of static buffers. */
const char *tu_path(const char *name);

/* --- files --------------------------------------------------------------- */

void tu_write_file(const char *path, const void *buf, size_t len);
/* Write len bytes at off of an existing file (extends it if needed). */
void tu_pwrite_file(const char *path, const void *buf, size_t len,
		    uint64_t off);
/* Whole file, malloc'd; *len gets its size. */
uint8_t *tu_read_file(const char *path, size_t *len);
uint64_t tu_file_size(const char *path);
void tu_truncate(const char *path, uint64_t size);
void tu_set_mtime(const char *path, int64_t sec);
int64_t tu_get_mtime(const char *path);
/* Absolute physical path of an existing directory or file. */
void tu_realpath(const char *path, char *out, size_t outlen);

/* --- deterministic randomness -------------------------------------------- */

struct tu_rng {
	uint64_t s;
};

void tu_rng_seed(struct tu_rng *r, uint64_t seed);
uint64_t tu_rand(struct tu_rng *r);
/* Uniform-ish in [0, n), n > 0. */
uint64_t tu_below(struct tu_rng *r, uint64_t n);
void tu_fill(struct tu_rng *r, void *buf, size_t len);

/* --- reference model of the format ---------------------------------------- */

/* Byte order helpers written independently of internal.h. */
void tu_put32(uint8_t *p, uint32_t v, bool big);
void tu_put64(uint8_t *p, uint64_t v, bool big);
uint32_t tu_get32(const uint8_t *p, bool big);
uint64_t tu_get64(const uint8_t *p, bool big);
bool tu_host_le(void);

/* Header length of a layout (v1 280, v2 4120, v3 4128, v3-broken 4136). */
uint64_t tu_header_len(int layout);

/* The geometry rules of the format description, in 128-bit arithmetic. */
struct tu_geo {
	uint64_t header_len, sectors, bitmap_offset, bitmap_len;
	uint64_t bitmap_used, covered, data_offset, file_size;
	bool overflow;            /* data_offset + size does not fit off_t */
};

void tu_geometry(int layout, uint64_t size, uint32_t ss, uint32_t align,
		 struct tu_geo *g);

/* What to put in a hand-built header. */
struct tu_spec {
	int layout;               /* enum ubdk_layout */
	bool big;                 /* v1 only: big-endian fields */
	uint32_t mtime;
	uint64_t size;
	uint32_t ss, align, cow_format;
	const char *backing;      /* copied with strlen, not terminated here */
};

/*
 * Build the header bytes of spec into buf (UBDK_HDR_MAX_SIZE bytes, zeroed
 * first).  Returns the header length.  A v3-broken header puts garbage in
 * the high half of its 8-byte mtime field, which readers must ignore.
 */
size_t tu_build_header(uint8_t *buf, const struct tu_spec *s);

/* Bit n of a byte-wise LSB-first bitmap, one bit at a time. */
bool tu_bit(const uint8_t *bm, uint64_t n);
void tu_setbit(uint8_t *bm, uint64_t n);

/* Index of the first differing byte, or len when equal. */
size_t tu_first_diff(const void *a, const void *b, size_t len);

/*
 * The handle's bitmap queries, asserting that they do not fail (they can,
 * when a chunk of the bitmap cannot be read: tests of that call the
 * library directly).
 */
struct ubdk_cow;
struct ubdk_run;
bool tu_cow_test(struct ubdk_cow *c, uint64_t n);
uint64_t tu_cow_count(struct ubdk_cow *c, uint64_t start, uint64_t end);
int tu_cow_next_run(struct ubdk_cow *c, uint64_t *pos, uint64_t end,
		    struct ubdk_run *run);
/* Does the handle's bitmap equal the first `bits` bits of bm? */
bool tu_cow_bitmap_eq(struct ubdk_cow *c, const uint8_t *bm, uint64_t bits);

#endif /* UBDK_TEST_UTIL_H */
