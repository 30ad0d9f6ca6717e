/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Decoding, validating and encoding COW headers.  No I/O here: this is the
 * part that meets untrusted bytes, and the fuzzer drives it directly.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* Field offsets of each layout (see docs/format.md). */
enum {
	V1_BACKING = 8, V1_MTIME = 264, V1_SIZE = 268, V1_SECTORSIZE = 276,
	V2_BACKING = 8, V2_MTIME = 4104, V2_SIZE = 4108, V2_SECTORSIZE = 4116,
	V3_MTIME = 8, V3_SIZE = 12, V3_SECTORSIZE = 20, V3_ALIGNMENT = 24,
	V3_COW_FORMAT = 28, V3_BACKING = 32,
	V3B_MTIME = 8, V3B_SIZE = 16, V3B_SECTORSIZE = 24, V3B_ALIGNMENT = 28,
	V3B_COW_FORMAT = 32, V3B_BACKING = 36,
};

const char *ubdk_layout_name(int layout)
{
	switch (layout) {
	case UBDK_LAYOUT_V1: return "v1";
	case UBDK_LAYOUT_V2: return "v2";
	case UBDK_LAYOUT_V3: return "v3";
	case UBDK_LAYOUT_V3_BROKEN: return "v3-broken";
	default: return "unknown";
	}
}

static uint64_t layout_header_len(int layout)
{
	switch (layout) {
	case UBDK_LAYOUT_V1: return UBDK_HDR_V1_SIZE;
	case UBDK_LAYOUT_V2: return UBDK_HDR_V2_SIZE;
	case UBDK_LAYOUT_V3: return UBDK_HDR_V3_SIZE;
	case UBDK_LAYOUT_V3_BROKEN: return UBDK_HDR_V3_BROKEN_SIZE;
	default: return 0;
	}
}

static uint64_t path_field_len(int layout)
{
	return layout == UBDK_LAYOUT_V1 ? UBDK_PATH_V1_MAX : UBDK_PATH_MAX;
}

/* x rounded up to a multiple of a (a > 0); false on overflow. */
static bool round_up(uint64_t x, uint64_t a, uint64_t *out)
{
	uint64_t rem = x % a;

	if (rem == 0) {
		*out = x;
		return true;
	}
	if (x > UINT64_MAX - (a - rem))
		return false;
	*out = x + (a - rem);
	return true;
}

static bool is_pow2(uint64_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

void ubdk_geometry_locate(const struct ubdk_header *hdr, const struct ubdk_geometry *geo,
			  uint64_t off, uint64_t len, uint64_t *data_off,
			  uint64_t *bits_off, uint64_t *bits_len)
{
	uint64_t ss = hdr->sectorsize ? hdr->sectorsize : 512;
	uint64_t s0 = off / ss, s1 = (off + len - 1) / ss;

	*data_off = geo->data_offset + off;
	*bits_off = geo->bitmap_offset + s0 / 8;
	*bits_len = s1 / 8 - s0 / 8 + 1;
}

uint64_t ubdk__first_short_sector(const struct ubdk_header *hdr,
				  const struct ubdk_geometry *geo,
				  uint64_t file_size)
{
	/* A short last sector needs only the device's bytes: a file that
	 * holds them holds every sector's data. */
	if (file_size >= geo->data_offset + hdr->size)
		return geo->sectors;
	return file_size > geo->data_offset ?
	       (file_size - geo->data_offset) / hdr->sectorsize : 0;
}

int ubdk_header_geometry(const struct ubdk_header *hdr, const char *name,
			 struct ubdk_geometry *geo, struct ubdk_err *err)
{
	const char *n = ubdk_name(name);
	uint64_t ss = hdr->sectorsize, used, end;
	bool old = hdr->layout == UBDK_LAYOUT_V1 || hdr->layout == UBDK_LAYOUT_V2;

	memset(geo, 0, sizeof(*geo));
	geo->header_len = layout_header_len(hdr->layout);
	if (geo->header_len == 0)
		return ubdk_fail(err, UBDK_E_BAD_VERSION, EINVAL,
				 "%s: unknown layout %d", n, hdr->layout);
	/* v1 and v2 store the sector size as a signed 32-bit integer. */
	if (!is_pow2(ss))
		return ubdk_fail(err, UBDK_E_SECTORSIZE, EINVAL,
				 "%s: sectorsize %u is not a power of two",
				 n, hdr->sectorsize);
	if (old && ss > INT32_MAX)
		return ubdk_fail(err, UBDK_E_SECTORSIZE, EINVAL,
				 "%s: sectorsize %u is negative as the signed "
				 "32-bit field of a version %d header",
				 n, hdr->sectorsize, hdr->layout == UBDK_LAYOUT_V1 ? 1 : 2);
	if (hdr->alignment == 0)
		return ubdk_fail(err, UBDK_E_ALIGNMENT, EINVAL,
				 "%s: alignment is zero", n);

	geo->sectors = hdr->size / ss + (hdr->size % ss != 0);
	if (old) {
		uint64_t group = 8 * ss, rem = hdr->size % group;

		/* The kernel's (size + ss - 1) / (8 * ss), without overflow. */
		geo->bitmap_offset = geo->header_len;
		geo->bitmap_len = hdr->size / group + (rem + ss - 1 >= group);
		if (!round_up(geo->bitmap_offset + geo->bitmap_len, ss,
			      &geo->data_offset))
			goto overflow;
		/*
		 * The under-counted bitmap leaves the last bits in the slack
		 * before the data area; bits that would fall in the data area
		 * cannot exist, so those sectors always come from backing.
		 */
		used = geo->sectors / 8 + (geo->sectors % 8 != 0);
		if (used > geo->data_offset - geo->bitmap_offset)
			used = geo->data_offset - geo->bitmap_offset;
		geo->bitmap_used = used;
		geo->covered = used * 8 < geo->sectors ? used * 8 : geo->sectors;
	} else {
		if (!round_up(geo->header_len, hdr->alignment,
			      &geo->bitmap_offset))
			goto overflow;
		geo->bitmap_len = geo->sectors / 8 + (geo->sectors % 8 != 0);
		if (geo->bitmap_len > UINT64_MAX - geo->bitmap_offset ||
		    !round_up(geo->bitmap_offset + geo->bitmap_len,
			      hdr->alignment, &geo->data_offset))
			goto overflow;
		geo->bitmap_used = geo->bitmap_len;
		geo->covered = geo->sectors;
	}
	/* Every offset must also be a valid file offset (off_t). */
	end = geo->data_offset;
	if (end > INT64_MAX || hdr->size > (uint64_t)INT64_MAX - end)
		goto overflow;
	geo->file_size = end + hdr->size;
	return 0;

overflow:
	return ubdk_fail(err, UBDK_E_OVERFLOW, EOVERFLOW,
			 "%s: size %llu with sectorsize %u and alignment %u "
			 "puts the bitmap or data region past 2^63 bytes", n,
			 (unsigned long long)hdr->size, hdr->sectorsize,
			 hdr->alignment);
}

static int decode_backing(const uint8_t *field, size_t field_len,
			  const char *n, struct ubdk_header *hdr,
			  struct ubdk_err *err)
{
	const uint8_t *nul = memchr(field, '\0', field_len);

	if (!nul)
		return ubdk_fail(err, UBDK_E_BACKING_UNTERMINATED, EINVAL,
				 "%s: backing_file field (%zu bytes) is not "
				 "NUL-terminated", n, field_len);
	if (nul == field)
		return ubdk_fail(err, UBDK_E_BACKING_EMPTY, EINVAL,
				 "%s: backing_file is empty", n);
	memcpy(hdr->backing, field, (size_t)(nul - field) + 1);
	return 0;
}

int ubdk_header_decode(const void *buf, size_t len, const char *name,
		       struct ubdk_header *hdr, struct ubdk_err *err)
{
	const uint8_t *p = buf;
	const char *n = ubdk_name(name);
	struct ubdk_geometry geo;
	uint32_t magic_be;
	bool le;
	uint64_t need;
	int ret;

	memset(hdr, 0, sizeof(*hdr));
	if (len < 8)
		return ubdk_fail(err, UBDK_E_SHORT_HEADER, EINVAL,
				 "%s: file is %zu bytes, too short for a COW "
				 "header", n, len);
	magic_be = ubdk_get_be32(p);
	if (magic_be == UBDK_COW_MAGIC)
		le = false;
	else if (ubdk_get_le32(p) == UBDK_COW_MAGIC)
		le = true;
	else
		return ubdk_fail(err, UBDK_E_BAD_MAGIC, EINVAL,
				 "%s: bad magic 0x%08x, not a COW file", n,
				 magic_be);

	hdr->magic_le = le;
	/* The version is stored in the byte order of the magic. */
	hdr->version = le ? ubdk_get_le32(p + 4) : ubdk_get_be32(p + 4);
	switch (hdr->version) {
	case 1:
		hdr->layout = UBDK_LAYOUT_V1;
		break;
	case 2:
		hdr->layout = UBDK_LAYOUT_V2;
		break;
	case 3:
		/*
		 * In the unpacked 64-bit layout cow_format (always 0) sits
		 * where a packed v3 starts its backing path, which a valid
		 * absolute path never begins with four zero bytes.
		 */
		if (len < V3_BACKING + 4)
			return ubdk_fail(err, UBDK_E_SHORT_HEADER, EINVAL,
					 "%s: file is %zu bytes, too short for "
					 "a v3 header", n, len);
		hdr->layout = memcmp(p + V3_BACKING, "\0\0\0\0", 4) ?
			      UBDK_LAYOUT_V3 : UBDK_LAYOUT_V3_BROKEN;
		break;
	default:
		return ubdk_fail(err, UBDK_E_BAD_VERSION, EINVAL,
				 "%s: unknown COW version %u", n,
				 hdr->version);
	}

	need = layout_header_len(hdr->layout);
	if (len < need)
		return ubdk_fail(err, UBDK_E_SHORT_HEADER, EINVAL,
				 "%s: file is %zu bytes, too short for a %s "
				 "header of %llu bytes", n, len,
				 ubdk_layout_name(hdr->layout),
				 (unsigned long long)need);

	switch (hdr->layout) {
	case UBDK_LAYOUT_V1:
		hdr->v1_swapped = le != ubdk_host_is_le();
		hdr->mtime = le ? ubdk_get_le32(p + V1_MTIME) :
				  ubdk_get_be32(p + V1_MTIME);
		hdr->size = le ? ubdk_get_le64(p + V1_SIZE) :
				 ubdk_get_be64(p + V1_SIZE);
		hdr->sectorsize = le ? ubdk_get_le32(p + V1_SECTORSIZE) :
				       ubdk_get_be32(p + V1_SECTORSIZE);
		hdr->alignment = hdr->sectorsize;
		ret = decode_backing(p + V1_BACKING, UBDK_PATH_V1_MAX, n, hdr,
				     err);
		break;
	case UBDK_LAYOUT_V2:
		hdr->mtime = ubdk_get_be32(p + V2_MTIME);
		hdr->size = ubdk_get_be64(p + V2_SIZE);
		hdr->sectorsize = ubdk_get_be32(p + V2_SECTORSIZE);
		hdr->alignment = hdr->sectorsize;
		ret = decode_backing(p + V2_BACKING, UBDK_PATH_MAX, n, hdr,
				     err);
		break;
	case UBDK_LAYOUT_V3:
		hdr->mtime = ubdk_get_be32(p + V3_MTIME);
		hdr->size = ubdk_get_be64(p + V3_SIZE);
		hdr->sectorsize = ubdk_get_be32(p + V3_SECTORSIZE);
		hdr->alignment = ubdk_get_be32(p + V3_ALIGNMENT);
		hdr->cow_format = ubdk_get_be32(p + V3_COW_FORMAT);
		ret = decode_backing(p + V3_BACKING, UBDK_PATH_MAX, n, hdr,
				     err);
		break;
	default:
		/*
		 * Broken writers stored htonl(mtime) in an 8-byte time_t on a
		 * little-endian host: the value is the big-endian u32 at the
		 * start of the field, as the kernel reads it.
		 */
		hdr->mtime = ubdk_get_be32(p + V3B_MTIME);
		hdr->size = ubdk_get_be64(p + V3B_SIZE);
		hdr->sectorsize = ubdk_get_be32(p + V3B_SECTORSIZE);
		hdr->alignment = ubdk_get_be32(p + V3B_ALIGNMENT);
		hdr->cow_format = ubdk_get_be32(p + V3B_COW_FORMAT);
		ret = decode_backing(p + V3B_BACKING, UBDK_PATH_MAX, n, hdr,
				     err);
		break;
	}
	if (ret < 0)
		return ret;
	if (hdr->cow_format != 0)
		return ubdk_fail(err, UBDK_E_COW_FORMAT, EINVAL,
				 "%s: cow_format %u is not the bitmap format (0)",
				 n, hdr->cow_format);
	return ubdk_header_geometry(hdr, name, &geo, err);
}

int ubdk_header_encode(const struct ubdk_header *hdr, void *buf, size_t len,
		       struct ubdk_err *err)
{
	uint8_t *p = buf;
	struct ubdk_geometry geo;
	size_t plen;
	bool le;
	int ret;

	if (hdr->layout == UBDK_LAYOUT_V3_BROKEN)
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "the broken v3 layout is read-only");
	ret = ubdk_header_geometry(hdr, "new header", &geo, err);
	if (ret < 0)
		return ret;
	if (len < geo.header_len)
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "header buffer of %zu bytes is too small", len);
	if (hdr->cow_format != 0)
		return ubdk_fail(err, UBDK_E_COW_FORMAT, EINVAL,
				 "cow_format %u is not the bitmap format (0)",
				 hdr->cow_format);
	plen = strnlen(hdr->backing, sizeof(hdr->backing));
	if (plen == 0)
		return ubdk_fail(err, UBDK_E_BACKING_EMPTY, EINVAL,
				 "backing file path is empty");
	if (plen >= path_field_len(hdr->layout))
		return ubdk_fail(err, UBDK_E_PATH_TOO_LONG, ENAMETOOLONG,
				 "backing file path of %zu bytes does not fit "
				 "a %s header (at most %llu)", plen,
				 ubdk_layout_name(hdr->layout),
				 (unsigned long long)path_field_len(hdr->layout) - 1);

	memset(p, 0, (size_t)geo.header_len);
	switch (hdr->layout) {
	case UBDK_LAYOUT_V1:
		/* v1 is host-endian: written as the writing host sees it. */
		le = ubdk_host_is_le() != hdr->v1_swapped;
		if (le) {
			ubdk_put_le32(p, UBDK_COW_MAGIC);
			ubdk_put_le32(p + 4, 1);
			ubdk_put_le32(p + V1_MTIME, hdr->mtime);
			ubdk_put_le64(p + V1_SIZE, hdr->size);
			ubdk_put_le32(p + V1_SECTORSIZE, hdr->sectorsize);
		} else {
			ubdk_put_be32(p, UBDK_COW_MAGIC);
			ubdk_put_be32(p + 4, 1);
			ubdk_put_be32(p + V1_MTIME, hdr->mtime);
			ubdk_put_be64(p + V1_SIZE, hdr->size);
			ubdk_put_be32(p + V1_SECTORSIZE, hdr->sectorsize);
		}
		memcpy(p + V1_BACKING, hdr->backing, plen);
		break;
	case UBDK_LAYOUT_V2:
		ubdk_put_be32(p, UBDK_COW_MAGIC);
		ubdk_put_be32(p + 4, 2);
		memcpy(p + V2_BACKING, hdr->backing, plen);
		ubdk_put_be32(p + V2_MTIME, hdr->mtime);
		ubdk_put_be64(p + V2_SIZE, hdr->size);
		ubdk_put_be32(p + V2_SECTORSIZE, hdr->sectorsize);
		break;
	default:
		ubdk_put_be32(p, UBDK_COW_MAGIC);
		ubdk_put_be32(p + 4, 3);
		ubdk_put_be32(p + V3_MTIME, hdr->mtime);
		ubdk_put_be64(p + V3_SIZE, hdr->size);
		ubdk_put_be32(p + V3_SECTORSIZE, hdr->sectorsize);
		ubdk_put_be32(p + V3_ALIGNMENT, hdr->alignment);
		ubdk_put_be32(p + V3_COW_FORMAT, hdr->cow_format);
		memcpy(p + V3_BACKING, hdr->backing, plen);
		break;
	}
	return (int)geo.header_len;
}
