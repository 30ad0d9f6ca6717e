/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bitmap scans, 64 bits at a time.  Bit n is bit n % 8 of byte n / 8, which
 * is exactly bit n % 64 of the little-endian 64-bit word n / 64: loading
 * words little-endian lets ctz and popcount do the work.
 */
#include "internal.h"

#include <string.h>

/*
 * Word w of the bitmap, never touching a byte after last_byte (callers'
 * buffers are sized to the bits they hold, not to whole words).
 */
static inline uint64_t load_word(const uint8_t *bm, uint64_t w,
				 uint64_t last_byte)
{
	uint64_t first = w * 8, v = 0;

	if (first + 7 <= last_byte) {
		if (ubdk_host_is_le()) {
			memcpy(&v, bm + first, 8);
			return v;
		}
		return ubdk_get_le64(bm + first);
	}
	for (uint64_t i = first; i <= last_byte; i++)
		v |= (uint64_t)bm[i] << (8 * (i - first));
	return v;
}

bool ubdk_bitmap_test(const uint8_t *bitmap, uint64_t n)
{
	return (bitmap[n / 8] >> (n % 8)) & 1;
}

void ubdk_bitmap_set(uint8_t *bitmap, uint64_t n)
{
	bitmap[n / 8] |= (uint8_t)(1U << (n % 8));
}

uint64_t ubdk_bitmap_find(const uint8_t *bitmap, uint64_t start, uint64_t end,
			  bool value)
{
	uint64_t last_byte, w, word, pos;

	if (start >= end)
		return end;
	last_byte = (end - 1) / 8;
	w = start / 64;
	word = load_word(bitmap, w, last_byte);
	if (!value)
		word = ~word;
	word &= ~0ULL << (start % 64);
	for (;;) {
		if (word) {
			pos = w * 64 + (uint64_t)__builtin_ctzll(word);
			return pos < end ? pos : end;
		}
		w++;
		if (w > (end - 1) / 64)
			return end;
		word = load_word(bitmap, w, last_byte);
		if (!value)
			word = ~word;
	}
}

uint64_t ubdk_bitmap_count(const uint8_t *bitmap, uint64_t start,
			   uint64_t end)
{
	uint64_t last_byte, w, last_w, word, total = 0;

	if (start >= end)
		return 0;
	last_byte = (end - 1) / 8;
	w = start / 64;
	last_w = (end - 1) / 64;
	for (; w <= last_w; w++) {
		word = load_word(bitmap, w, last_byte);
		if (w == start / 64)
			word &= ~0ULL << (start % 64);
		if (w == last_w && end % 64)
			word &= ~0ULL >> (64 - end % 64);
		total += (uint64_t)__builtin_popcountll(word);
	}
	return total;
}

void ubdk_bitmap_set_range(uint8_t *bitmap, uint64_t start, uint64_t end)
{
	uint64_t first_full, last_full;

	if (start >= end)
		return;
	first_full = (start + 7) / 8;
	last_full = end / 8;
	if (first_full >= last_full) {
		for (uint64_t n = start; n < end; n++)
			ubdk_bitmap_set(bitmap, n);
		return;
	}
	for (uint64_t n = start; n < first_full * 8; n++)
		ubdk_bitmap_set(bitmap, n);
	memset(bitmap + first_full, 0xff, (size_t)(last_full - first_full));
	for (uint64_t n = last_full * 8; n < end; n++)
		ubdk_bitmap_set(bitmap, n);
}
