/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * scan.c - what a COW file holds beyond what its reads use: bits of
 * sectors the device does not have, sectors marked present whose data is
 * past the end of the file (also in a file cut inside its bitmap, which
 * ubdk_cow_open refuses), and data stored for sectors whose bit is clear.
 * For consistency checks (uml_imgstat --check); reads go through the data
 * extents, so holes in a sparse bitmap cost nothing.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "ubdk_os.h"

#define SCAN_BUF (64U * 1024)

/*
 * The data extent of fd at or after off, clipped to [off, end): 1 with
 * [*d, *h), 0 when only holes follow.  A file system that cannot tell
 * gives the rest as data.
 */
static int next_data(int fd, uint64_t off, uint64_t end, uint64_t *d,
		     uint64_t *h)
{
	int ret = ubdk_os_next_data(fd, off, d, h);

	if (ret == -ENXIO)
		return 0;
	if (ret == -EINVAL || ret == -EOPNOTSUPP) {
		*d = off;
		*h = end;
	} else if (ret < 0) {
		return ret;
	}
	if (*d < off)
		*d = off;
	if (*h > end)
		*h = end;
	return *d < end;
}

static void bits_add(struct ubdk_scan_bits *b, const uint8_t *buf,
		     uint64_t bit0, uint64_t s, uint64_t e)
{
	uint64_t n = ubdk_bitmap_count(buf, s, e), p;

	if (!n)
		return;
	b->count += n;
	p = ubdk_bitmap_find(buf, s, e, true);
	if (b->first == UINT64_MAX)
		b->first = bit0 + p;
	/* No backward search: walk the runs to the last. */
	while (p < e) {
		uint64_t q = ubdk_bitmap_find(buf, p, e, false);

		b->last = bit0 + q - 1;
		p = ubdk_bitmap_find(buf, q, e, true);
	}
}

/* Set bits [from, to) of the bitmap at base in fd, as the file stores them. */
static int scan_bits(int fd, uint64_t base, uint64_t from, uint64_t to,
		     uint8_t *buf, struct ubdk_scan_bits *b)
{
	uint64_t p, end, d, h;
	int ret = 0;

	b->count = 0;
	b->first = b->last = UINT64_MAX;
	if (from >= to)
		return 0;
	p = base + from / 8;
	end = base + (to + 7) / 8;
	while (p < end && (ret = next_data(fd, p, end, &d, &h)) > 0) {
		for (uint64_t x = d; x < h;) {
			size_t n = h - x < SCAN_BUF ? (size_t)(h - x) : SCAN_BUF, got;
			uint64_t bit0 = (x - base) * 8, s, e;

			ret = ubdk_os_pread(fd, buf, n, x, &got);
			if (ret < 0)
				return ret;
			memset(buf + got, 0, n - got);
			s = from > bit0 ? from - bit0 : 0;
			e = to - bit0 < (uint64_t)n * 8 ? to - bit0 : (uint64_t)n * 8;
			x += n;
			if (s < e)
				bits_add(b, buf, bit0, s, e);
		}
		p = h;
	}
	return p < end ? ret : 0;
}

int ubdk_scan_fd(int fd, const char *name, const struct ubdk_header *hdr,
		 const struct ubdk_geometry *geo, struct ubdk_scan *sc,
		 struct ubdk_err *err)
{
	const uint64_t area = geo->data_offset - geo->bitmap_offset;
	struct ubdk_os_stat st;
	uint64_t avail;
	uint8_t *buf;
	int ret;

	memset(sc, 0, sizeof(*sc));
	ret = ubdk_os_fstat(fd, &st);
	if (ret < 0)
		return ubdk_fail(err, UBDK_E_SYS, -ret, "%s: %s", ubdk_name(name),
				 strerror(-ret));
	sc->file_size = st.size;
	avail = st.size > geo->bitmap_offset ? st.size - geo->bitmap_offset : 0;
	sc->bitmap_present = avail < area ? avail : area;
	sc->bits = sc->bitmap_present * 8 < geo->covered ?
		   sc->bitmap_present * 8 : geo->covered;
	sc->bitmap_end = geo->bitmap_offset + geo->bitmap_len;
	sc->short_bitmap = st.size < sc->bitmap_end;
	buf = ubdk_os_alloc(SCAN_BUF);
	if (!buf)
		return ubdk_fail(err, UBDK_E_NOMEM, ENOMEM, "%s: out of memory",
				 ubdk_name(name));
	/* The bitmap area's slack: bits of sectors the device lacks. */
	ret = scan_bits(fd, geo->bitmap_offset, geo->sectors,
			sc->bitmap_present * 8, buf, &sc->past);
	if (sc->past.count)
		sc->past_byte = geo->bitmap_offset + sc->past.first / 8;
	if (ret == 0)
		ret = scan_bits(fd, geo->bitmap_offset,
				ubdk__first_short_sector(hdr, geo, st.size),
				sc->bits, buf, &sc->short_data);
	ubdk_os_free(buf);
	if (ret < 0)
		return ubdk_fail(err, UBDK_E_SYS, -ret, "%s: reading bitmap: %s",
				 ubdk_name(name), strerror(-ret));
	return 0;
}

int ubdk_cow_next_stray(struct ubdk_cow *cow, uint64_t *pos, uint64_t *off,
			uint64_t *len, struct ubdk_err *err)
{
	const struct ubdk_geometry *g = ubdk_cow_geometry(cow);
	uint64_t ss = ubdk_cow_header(cow)->sectorsize;
	uint64_t area = g->data_offset, end = area + g->sectors * ss;
	uint64_t p = *pos > area ? *pos : area, d, h;
	struct ubdk_os_stat st;
	int fd = ubdk_cow_fd(cow), ret;

	ret = ubdk_os_fstat(fd, &st);
	if (ret < 0)
		return ubdk_fail(err, UBDK_E_SYS, -ret, "%s: %s",
				 ubdk_cow_path(cow), strerror(-ret));
	if (end > st.size)
		end = st.size;
	while (p < end && (ret = next_data(fd, p, end, &d, &h)) > 0) {
		uint64_t s = (d - area) / ss, e = (h - area + ss - 1) / ss;
		struct ubdk_run run;

		while ((ret = ubdk_cow_next_run(cow, &s, e, &run, err)) > 0) {
			uint64_t a = area + run.start * ss;
			uint64_t b = area + (run.start + run.count) * ss;

			if (run.src == UBDK_RUN_COW)
				continue;
			a = a > d ? a : d;
			b = b < h ? b : h;
			if (a < b) {
				*off = a;
				*len = b - a;
				*pos = b;
				return 1;
			}
		}
		if (ret < 0)
			return ret;
		p = h;
	}
	if (ret < 0)
		return ubdk_fail(err, UBDK_E_SYS, -ret, "%s: finding data: %s",
				 ubdk_cow_path(cow), strerror(-ret));
	*pos = end;
	return 0;
}
