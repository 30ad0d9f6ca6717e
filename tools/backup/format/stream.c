/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "format/stream.h"
#include "extent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *pack_name(int format)
{
	return format == PACK_LZ4 ? "lz4" : format == PACK_GZIP ? "gzip" : "none";
}

const char *pack_suffix(int format)
{
	return format == PACK_LZ4 ? ".lz4" : format == PACK_GZIP ? ".gz" : "";
}

int pack_parse(const char *s)
{
	if (!strcmp(s, "lz4"))
		return PACK_LZ4;
	if (!strcmp(s, "gzip") || !strcmp(s, "gz"))
		return PACK_GZIP;
	if (!strcmp(s, "none"))
		return PACK_NONE;
	return -1;
}

int pack_detect(int fd)
{
	uint8_t m[4];

	if (pread(fd, m, 4, 0) != 4)
		return -1;
	if (m[0] == 0x04 && m[1] == 0x22 && m[2] == 0x4d && m[3] == 0x18)
		return PACK_LZ4;
	if (m[0] == 0x1f && m[1] == 0x8b)
		return PACK_GZIP;
	return -1;
}

bool unit_is_zero(const uint8_t *p, size_t n)
{
	if (n < 16) {
		for (size_t i = 0; i < n; i++)
			if (p[i])
				return false;
		return true;
	}
	for (int i = 0; i < 16; i++)
		if (p[i])
			return false;
	/* Overlapping memcmp: the library's vector loop, no zero buffer. */
	return memcmp(p, p + 16, n - 16) == 0;
}

const uint8_t *unit_zeros(void)
{
	static uint8_t *z;

	if (!z)
		z = calloc(1, PACK_UNIT);
	return z;
}

int pack_stream_fd(int fd, uint64_t size, unit_fn fn, void *ctx,
		   volatile sig_atomic_t *intr)
{
	uint8_t *buf = malloc(PACK_UNIT);
	struct extent_iter it;
	/* [data, data_end): the first data extent that ends past off. */
	uint64_t off = 0, data = 0, data_end = 0, data_len;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	extent_iter_init(&it, fd, 0, size);
	while (off < size && ret == 0) {
		size_t len = size - off < PACK_UNIT ? (size_t)(size - off) : PACK_UNIT;

		if (intr && *intr) {
			ret = -EINTR;
			break;
		}
		/* A walk that fails gives the rest as data: reading it is safe. */
		while (data_end <= off) {
			if (extent_next(&it, &data, &data_len) == 0) {
				data = data_end = size;
				break;
			}
			data_end = data + data_len;
		}
		if (data >= off + len) {
			ret = fn(ctx, NULL, len);
		} else {
			size_t got = 0;

			while (got < len) {
				ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));

				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0) {
					ret = -errno;
					break;
				}
				if (n == 0) {
					memset(buf + got, 0, len - got);
					break;
				}
				got += (size_t)n;
			}
			if (ret == 0)
				ret = fn(ctx, unit_is_zero(buf, len) ? NULL : buf, len);
		}
		off += len;
	}
	free(buf);
	return ret;
}

static int asm_emit(void *arg)
{
	struct assembler *a = arg;
	int ret = a->fn(a->ctx, unit_is_zero(a->buf, a->n) ? NULL : a->buf, a->n);

	a->n = 0;
	return ret;
}

int asm_feed(struct assembler *a, const uint8_t *p, size_t n)
{
	a->total += n;
	return unit_feed(a->buf, &a->n, p, n, asm_emit, a);
}

int asm_zero_unit(struct assembler *a)
{
	a->total += PACK_UNIT;
	return a->fn(a->ctx, NULL, PACK_UNIT);
}

int asm_flush(struct assembler *a)
{
	return a->n > 0 ? asm_emit(a) : 0;
}

int stream_write_all(int fd, const uint8_t *p, size_t n, off_t off)
{
	while (n > 0) {
		ssize_t w = off < 0 ? write(fd, p, n) : pwrite(fd, p, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -ENOSPC;
		p += w;
		n -= (size_t)w;
		off = off < 0 ? off : off + w;
	}
	return 0;
}
