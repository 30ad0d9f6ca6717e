/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "codec/lz4_splice.h"
#include "format/stream.h"
#include "ubdk_endian.h"

#include <lz4.h>
#include <lz4hc.h>
#include <string.h>
#include <xxhash.h>

size_t lz4s_header(uint8_t hdr[LZ4S_HEADER], uint64_t content_size)
{
	size_t n = content_size == LZ4S_NO_SIZE ? 0 : 8;

	ubdk_put_le32(hdr, 0x184D2204U);
	hdr[4] = 0x40 | 0x20 | 0x10 | (n ? 0x08 : 0);
	hdr[5] = 6 << 4;
	if (n)
		ubdk_put_le64(hdr + 6, content_size);
	/* The descriptor's checksum: the second byte of its xxHash32. */
	hdr[6 + n] = (uint8_t)(XXH32(hdr + 4, 2 + n, 0) >> 8);
	return 7 + n;
}

bool lz4s_is_ours(const uint8_t *hdr, uint64_t *content_size)
{
	uint8_t ours[LZ4S_HEADER];

	*content_size = ubdk_get_le64(hdr + 6);
	lz4s_header(ours, *content_size);
	return memcmp(ours, hdr, sizeof(ours)) == 0;
}

size_t lz4s_block(int level, const uint8_t *src, size_t len, uint8_t *dst)
{
	int c;

	if (level >= 3)
		c = LZ4_compress_HC((const char *)src, (char *)dst + 4, (int)len,
				    (int)len - 1, level);
	else
		c = LZ4_compress_fast((const char *)src, (char *)dst + 4, (int)len,
				      (int)len - 1, 1);
	if (c <= 0) {
		ubdk_put_le32(dst, (uint32_t)len | 0x80000000U);
		memcpy(dst + 4, src, len);
		c = (int)len;
	} else {
		ubdk_put_le32(dst, (uint32_t)c);
	}
	ubdk_put_le32(dst + 4 + c, XXH32(dst + 4, (size_t)c, 0));
	return (size_t)c + 8;
}
