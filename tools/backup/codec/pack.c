/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "codec/pack.h"
#include "codec/lz4_splice.h"
#include "format/stream.h"
#include "format/sums.h"
#include "ubdk_endian.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define OUTBUF (4U << 20)

struct packer {
	int format, level, fd;
	uint64_t bytes;                 /* written so far */
	uint8_t *out;                   /* output buffer */
	size_t outn;
	uint8_t *block;                 /* lz4: one compressed block */
	uint8_t *zero_block;            /* lz4: compressed full unit of zeros */
	size_t zero_len;
	z_stream z;                     /* gzip: raw deflate */
	bool z_open, z_dirty;           /* z_dirty: data since the last flush */
	unsigned long crc;              /* gzip: CRC-32 of the content */
	uint64_t total;
};

static int out_flush(struct packer *p)
{
	int ret = stream_write_all(p->fd, p->out, p->outn, -1);

	p->outn = 0;
	return ret;
}

static int out_put(struct packer *p, const void *data, size_t n)
{
	int ret;

	if (p->outn + n > OUTBUF) {
		ret = out_flush(p);
		if (ret < 0)
			return ret;
	}
	if (n > OUTBUF) {
		p->bytes += n;
		return stream_write_all(p->fd, data, n, -1);
	}
	memcpy(p->out + p->outn, data, n);
	p->outn += n;
	p->bytes += n;
	return 0;
}

static int gz_run(struct packer *p, int flush)
{
	int zr;

	do {
		if (p->outn == OUTBUF) {
			int ret = out_flush(p);

			if (ret < 0)
				return ret;
		}
		p->z.next_out = p->out + p->outn;
		p->z.avail_out = (uInt)(OUTBUF - p->outn);
		zr = deflate(&p->z, flush);
		if (zr == Z_STREAM_ERROR)
			return -EIO;
		p->bytes += (OUTBUF - p->outn) - p->z.avail_out;
		p->outn = OUTBUF - p->z.avail_out;
	} while (p->z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
	return 0;
}

/*
 * Byte aligned and referring to nothing before it, the unit can stand
 * anywhere the main stream was fully flushed.
 */
const uint8_t *gz_zero_unit(int level, size_t *len)
{
	static uint8_t *tmpl[10];
	static size_t tlen[10];
	z_stream zz;
	uint8_t *zb;

	if (level < 1 || level > 9 || !unit_zeros())
		return NULL;
	if (tmpl[level]) {
		*len = tlen[level];
		return tmpl[level];
	}
	memset(&zz, 0, sizeof(zz));
	zb = malloc(PACK_UNIT);
	if (!zb || deflateInit2(&zz, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(zb);
		return NULL;
	}
	zz.next_in = (Bytef *)unit_zeros();
	zz.avail_in = PACK_UNIT;
	zz.next_out = zb;
	zz.avail_out = PACK_UNIT;
	if (deflate(&zz, Z_FULL_FLUSH) != Z_OK || zz.avail_in != 0 || zz.avail_out == 0) {
		deflateEnd(&zz);
		free(zb);
		return NULL;
	}
	deflateEnd(&zz);
	tlen[level] = PACK_UNIT - zz.avail_out;
	tmpl[level] = zb;
	*len = tlen[level];
	return zb;
}

static int lz4_open(struct packer *p, int level, uint64_t content_size)
{
	uint8_t hdr[LZ4S_HEADER];

	p->level = level;
	p->block = malloc(LZ4S_BLOCK_MAX(PACK_UNIT));
	p->zero_block = malloc(LZ4S_BLOCK_MAX(PACK_UNIT));
	if (!p->block || !p->zero_block || !unit_zeros())
		return -ENOMEM;
	p->zero_len = lz4s_block(level, unit_zeros(), PACK_UNIT, p->zero_block);
	return out_put(p, hdr, lz4s_header(hdr, content_size));
}

static int gz_open(struct packer *p, int level)
{
	uint8_t hdr[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };

	p->level = level > 0 ? level : 6;
	if (p->level > 9)
		p->level = 9;
	/* XFL as gzip sets it; a restore takes the level from it. */
	hdr[8] = p->level == 9 ? 2 : p->level == 1 ? 4 : 0;
	if (deflateInit2(&p->z, p->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	p->z_open = true;
	p->crc = crc32(0L, Z_NULL, 0);
	if (!gz_zero_unit(p->level, &p->zero_len))
		return -ENOMEM;
	return out_put(p, hdr, sizeof(hdr));
}

int packer_open(struct packer **out, int format, int level, int outfd,
		uint64_t content_size)
{
	struct packer *p = calloc(1, sizeof(*p));
	int ret;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->format = format;
	p->fd = outfd;
	p->out = malloc(OUTBUF);
	if (!p->out)
		ret = -ENOMEM;
	else if (format == PACK_LZ4)
		ret = lz4_open(p, level, content_size);
	else
		ret = gz_open(p, level);
	if (ret < 0) {
		packer_free(p);
		return ret;
	}
	*out = p;
	return 0;
}

static int lz4_unit(struct packer *p, const uint8_t *data, size_t len)
{
	if (!data && len == PACK_UNIT)
		return out_put(p, p->zero_block, p->zero_len);
	return out_put(p, p->block, lz4s_block(p->level, data ? data : unit_zeros(), len,
						 p->block));
}

static int gz_unit(struct packer *p, const uint8_t *data, size_t len)
{
	int ret;

	if (!data && len == PACK_UNIT) {
		if (p->z_dirty) {
			ret = gz_run(p, Z_FULL_FLUSH);
			if (ret < 0)
				return ret;
			p->z_dirty = false;
		}
		p->crc = crc_zero_unit(p->crc);
		return out_put(p, gz_zero_unit(p->level, &p->zero_len), p->zero_len);
	}
	if (!data)
		data = unit_zeros();
	p->crc = crc_update(p->crc, data, len);
	p->z.next_in = (Bytef *)data;
	p->z.avail_in = (uInt)len;
	p->z_dirty = true;
	return gz_run(p, Z_NO_FLUSH);
}

int packer_unit(void *ctx, const uint8_t *data, size_t len)
{
	struct packer *p = ctx;

	p->total += len;
	return p->format == PACK_LZ4 ? lz4_unit(p, data, len) : gz_unit(p, data, len);
}

int packer_finish(struct packer *p, uint64_t *bytes)
{
	uint8_t tail[8];
	int ret;

	if (p->format == PACK_LZ4) {
		memset(tail, 0, LZ4S_END_MARK);
		ret = out_put(p, tail, LZ4S_END_MARK);
	} else {
		p->z.next_in = NULL;
		p->z.avail_in = 0;
		ret = gz_run(p, Z_FINISH);
		ubdk_put_le32(tail, (uint32_t)p->crc);
		ubdk_put_le32(tail + 4, (uint32_t)p->total);
		if (ret == 0)
			ret = out_put(p, tail, 8);
	}
	if (ret == 0)
		ret = out_flush(p);
	if (bytes)
		*bytes = p->bytes;
	return ret;
}

void packer_free(struct packer *p)
{
	if (!p)
		return;
	if (p->z_open)
		deflateEnd(&p->z);
	free(p->out);
	free(p->block);
	free(p->zero_block);
	free(p);
}
