/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the untrusted-input half of the COW library:
 * ubdk_header_decode, ubdk_header_geometry, ubdk_header_encode and the
 * bitmap scans.  Every check that fails calls abort() after printing the
 * line and the condition, so a crash report names the broken invariant.
 *
 * What is checked, per input:
 *  - decode agrees with an independent decoder written from the documented
 *    layout (uml-facts.md): success exactly when the reference finds the
 *    header valid, the same field values, and on failure an error code that
 *    names one of the problems the reference found;
 *  - geometry agrees with an independent 128-bit computation of the
 *    documented formulas, and is self-consistent (offsets ordered, bitmap
 *    big enough for `covered`, alignment per version, no off_t overflow);
 *  - a decoded v1/v2/v3 header encodes to the input bytes (unused bytes
 *    zeroed) and decodes again to the same header; v3-broken is refused;
 *  - truncating a valid header by one byte gives short-header;
 *  - the same header-ish values taken raw from the input (any layout,
 *    sector size, alignment, size, path length) go through geometry and
 *    encode, and whatever encodes decodes back to the same header;
 *  - every failure returns -errnum with a known code name and a non-empty,
 *    NUL-terminated, one-line message (naming the file where one is given);
 *  - the bitmap functions, on the input bytes used as a bitmap held in an
 *    exactly sized buffer (so ASan sees any byte touched past the range),
 *    against a bit-by-bit reference over ranges derived from the input.
 */
#include "ubdk_static.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__extension__ typedef unsigned __int128 u128;

#define NAME "fuzz.cow"
#define I64MAX ((u128)INT64_MAX)

static void fail(int line, const char *what)
{
	fprintf(stderr, "fuzz_header.c:%d: invariant violated: %s\n", line,
		what);
	abort();
}

#define CHECK(c) do { if (!(c)) fail(__LINE__, #c); } while (0)

/* A byte source over the input; zeros once it runs out. */
struct cursor {
	const uint8_t *p;
	size_t n, i;
	int step;                 /* +1 from the front, -1 from the back */
};

static uint8_t get8(struct cursor *c)
{
	uint8_t v;

	if (c->i >= c->n)
		return 0;
	v = c->step > 0 ? c->p[c->i] : c->p[c->n - 1 - c->i];
	c->i++;
	return v;
}

static uint32_t get32(struct cursor *c)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 8 | get8(c);
	return v;
}

static uint64_t get64(struct cursor *c)
{
	return (uint64_t)get32(c) << 32 | get32(c);
}

static uint32_t rd32(const uint8_t *p, bool le)
{
	return le ? (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
		    (uint32_t)p[1] << 8 | p[0] :
		    (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		    (uint32_t)p[2] << 8 | p[3];
}

static uint64_t rd64(const uint8_t *p, bool le)
{
	return le ? (uint64_t)rd32(p + 4, true) << 32 | rd32(p, true) :
		    (uint64_t)rd32(p, false) << 32 | rd32(p + 4, false);
}

static bool host_le(void)
{
	const uint16_t one = 1;

	return *(const uint8_t *)&one == 1;
}

static bool err_in(int code, unsigned mask)
{
	return code > 0 && code < 32 && (mask & (1U << code));
}

#define BIT(c) (1U << (c))

/* --- reference geometry, straight from the documented formulas --------- */

static u128 rup(u128 x, u128 a)
{
	return (x + a - 1) / a * a;
}

static uint64_t layout_len(int layout)
{
	switch (layout) {
	case UBDK_LAYOUT_V1: return 280;
	case UBDK_LAYOUT_V2: return 4120;
	case UBDK_LAYOUT_V3: return 4128;
	case UBDK_LAYOUT_V3_BROKEN: return 4136;
	default: return 0;
	}
}

static size_t path_field(int layout)
{
	return layout == UBDK_LAYOUT_V1 ? 256 : 4096;
}

/* 0 and the geometry, or the error code the checks hit first. */
static int ref_geometry(const struct ubdk_header *h, struct ubdk_geometry *g)
{
	uint64_t hl = layout_len(h->layout);
	bool old = h->layout == UBDK_LAYOUT_V1 || h->layout == UBDK_LAYOUT_V2;
	u128 ss = h->sectorsize, al = h->alignment, size = h->size;
	u128 sectors, bo, bl, doff, used, covered, fsz;

	memset(g, 0, sizeof(*g));
	if (hl == 0)
		return UBDK_E_BAD_VERSION;
	if (ss == 0 || (ss & (ss - 1)) != 0 || (old && ss > INT32_MAX))
		return UBDK_E_SECTORSIZE;
	if (al == 0)
		return UBDK_E_ALIGNMENT;
	sectors = (size + ss - 1) / ss;
	if (old) {
		bo = hl;
		bl = (size + ss - 1) / (8 * ss);
		doff = rup(bo + bl, ss);
		used = (sectors + 7) / 8;
		if (used > doff - bo)
			used = doff - bo;
		covered = used * 8 < sectors ? used * 8 : sectors;
	} else {
		bo = rup(hl, al);
		bl = (sectors + 7) / 8;
		doff = rup(bo + bl, al);
		used = bl;
		covered = sectors;
	}
	fsz = doff + size;
	if (doff > I64MAX || fsz > I64MAX)
		return UBDK_E_OVERFLOW;
	g->header_len = hl;
	g->sectors = (uint64_t)sectors;
	g->bitmap_offset = (uint64_t)bo;
	g->bitmap_len = (uint64_t)bl;
	g->bitmap_used = (uint64_t)used;
	g->covered = (uint64_t)covered;
	g->data_offset = (uint64_t)doff;
	g->file_size = (uint64_t)fsz;
	return 0;
}

/* --- reference decoder from the documented layout --------------------- */

/*
 * Fill h as far as the bytes allow and return the set of problems found
 * (0: valid).  Once the layout is known every independent problem is
 * collected, because the order in which the library checks them is not
 * part of its contract.
 */
static unsigned ref_decode(const uint8_t *p, size_t len,
			   struct ubdk_header *h)
{
	unsigned bad = 0;
	bool le;
	const uint8_t *field;
	size_t flen;
	const uint8_t *nul;
	struct ubdk_geometry g;
	int gc;

	memset(h, 0, sizeof(*h));
	if (len < 8)
		return BIT(UBDK_E_SHORT_HEADER);
	if (rd32(p, false) == UBDK_COW_MAGIC)
		le = false;
	else if (rd32(p, true) == UBDK_COW_MAGIC)
		le = true;
	else
		return BIT(UBDK_E_BAD_MAGIC);
	/* The kernel reads the version in the magic's byte order. */
	h->version = rd32(p + 4, le);
	switch (h->version) {
	case 1:
		h->layout = UBDK_LAYOUT_V1;
		break;
	case 2:
		h->layout = UBDK_LAYOUT_V2;
		break;
	case 3:
		if (len < 36)
			return BIT(UBDK_E_SHORT_HEADER);
		h->layout = (p[32] | p[33] | p[34] | p[35]) ?
			    UBDK_LAYOUT_V3 : UBDK_LAYOUT_V3_BROKEN;
		break;
	default:
		return BIT(UBDK_E_BAD_VERSION);
	}
	if (len < layout_len(h->layout))
		return BIT(UBDK_E_SHORT_HEADER);

	switch (h->layout) {
	case UBDK_LAYOUT_V1:
		h->v1_swapped = le != host_le();
		field = p + 8;
		h->mtime = rd32(p + 264, le);
		h->size = rd64(p + 268, le);
		h->sectorsize = rd32(p + 276, le);
		h->alignment = h->sectorsize;
		break;
	case UBDK_LAYOUT_V2:
		field = p + 8;
		h->mtime = rd32(p + 4104, false);
		h->size = rd64(p + 4108, false);
		h->sectorsize = rd32(p + 4116, false);
		h->alignment = h->sectorsize;
		break;
	case UBDK_LAYOUT_V3:
		h->mtime = rd32(p + 8, false);
		h->size = rd64(p + 12, false);
		h->sectorsize = rd32(p + 20, false);
		h->alignment = rd32(p + 24, false);
		h->cow_format = rd32(p + 28, false);
		field = p + 32;
		break;
	default:
		/* 8-byte mtime, the rest shifted by 4. */
		h->mtime = rd32(p + 8, false);
		h->size = rd64(p + 16, false);
		h->sectorsize = rd32(p + 24, false);
		h->alignment = rd32(p + 28, false);
		h->cow_format = rd32(p + 32, false);
		field = p + 36;
		break;
	}
	flen = path_field(h->layout);
	nul = memchr(field, 0, flen);
	if (!nul)
		bad |= BIT(UBDK_E_BACKING_UNTERMINATED);
	else if (nul == field)
		bad |= BIT(UBDK_E_BACKING_EMPTY);
	else
		memcpy(h->backing, field, (size_t)(nul - field));
	if (h->cow_format != 0)
		bad |= BIT(UBDK_E_COW_FORMAT);
	gc = ref_geometry(h, &g);
	if (gc)
		bad |= BIT(gc);
	return bad;
}

/* --- checks -------------------------------------------------------------- */

static void check_err(int ret, const struct ubdk_err *e, const char *name)
{
	const char *cn;

	CHECK(ret < 0);
	CHECK(e->code > UBDK_OK && e->code < UBDK_E__COUNT);
	cn = ubdk_errcode_name(e->code);
	CHECK(cn != NULL && cn[0] != '\0' && strcmp(cn, "unknown") != 0);
	CHECK(e->errnum > 0 && ret == -e->errnum);
	CHECK(memchr(e->msg, '\0', sizeof(e->msg)) != NULL);
	CHECK(e->msg[0] != '\0');
	CHECK(strchr(e->msg, '\n') == NULL);
	if (name)
		CHECK(strstr(e->msg, name) != NULL);
}

static void poison_err(struct ubdk_err *e)
{
	memset(e, 0xa5, sizeof(*e));
}

static void check_same_header(const struct ubdk_header *a,
			      const struct ubdk_header *b)
{
	CHECK(a->layout == b->layout);
	CHECK(a->version == b->version);
	CHECK(a->v1_swapped == b->v1_swapped);
	CHECK(a->mtime == b->mtime);
	CHECK(a->size == b->size);
	CHECK(a->sectorsize == b->sectorsize);
	CHECK(a->alignment == b->alignment);
	CHECK(a->cow_format == b->cow_format);
	CHECK(strncmp(a->backing, b->backing, sizeof(a->backing)) == 0);
}

static void check_same_geometry(const struct ubdk_geometry *a,
				const struct ubdk_geometry *b)
{
	CHECK(a->header_len == b->header_len);
	CHECK(a->sectors == b->sectors);
	CHECK(a->bitmap_offset == b->bitmap_offset);
	CHECK(a->bitmap_len == b->bitmap_len);
	CHECK(a->bitmap_used == b->bitmap_used);
	CHECK(a->covered == b->covered);
	CHECK(a->data_offset == b->data_offset);
	CHECK(a->file_size == b->file_size);
}

/* The invariants a successful geometry must satisfy on its own. */
static void check_geometry_sane(const struct ubdk_header *h,
				const struct ubdk_geometry *g)
{
	bool old = h->layout == UBDK_LAYOUT_V1 || h->layout == UBDK_LAYOUT_V2;
	u128 ss = h->sectorsize, al = h->alignment;

	CHECK(g->header_len == layout_len(h->layout));
	CHECK(g->bitmap_offset >= g->header_len);
	CHECK((u128)g->data_offset >=
	      (u128)g->bitmap_offset + g->bitmap_used);
	CHECK((u128)g->bitmap_used * 8 >= g->covered);
	CHECK(g->covered <= g->sectors);
	CHECK(g->sectors == h->size / ss + (h->size % ss != 0));
	CHECK((u128)g->sectors * ss >= h->size &&
	      (u128)g->sectors * ss < (u128)h->size + ss);
	CHECK(g->data_offset <= INT64_MAX);
	CHECK(g->file_size <= INT64_MAX);
	CHECK((u128)g->file_size == (u128)g->data_offset + h->size);
	if (old) {
		CHECK(h->sectorsize <= INT32_MAX);
		CHECK(g->bitmap_offset == g->header_len);
		CHECK(g->data_offset % ss == 0);
		CHECK((u128)g->data_offset <
		      (u128)g->bitmap_offset + g->bitmap_len + ss);
		CHECK((u128)g->data_offset >=
		      (u128)g->bitmap_offset + g->bitmap_len);
		/* the kernel's under-count: floor((size + ss - 1) / 8ss) */
		CHECK((u128)g->bitmap_len * 8 * ss <= (u128)h->size + ss - 1);
		CHECK(((u128)g->bitmap_len + 1) * 8 * ss > (u128)h->size + ss - 1);
		CHECK(g->bitmap_used <= g->data_offset - g->bitmap_offset);
		/* all sectors are covered unless the slack ran out */
		CHECK(g->covered == g->sectors ||
		      g->bitmap_used == g->data_offset - g->bitmap_offset);
	} else {
		CHECK(g->bitmap_offset % al == 0);
		CHECK(g->bitmap_offset < (u128)g->header_len + al);
		CHECK(g->data_offset % al == 0);
		CHECK((u128)g->data_offset <
		      (u128)g->bitmap_offset + g->bitmap_len + al);
		CHECK(g->bitmap_len == g->sectors / 8 + (g->sectors % 8 != 0));
		CHECK(g->bitmap_used == g->bitmap_len);
		CHECK(g->covered == g->sectors);
	}
}

/* Geometry of h from the library, checked against the reference. */
static int geometry_checked(const struct ubdk_header *h,
			    struct ubdk_geometry *g)
{
	struct ubdk_geometry rg, g2;
	struct ubdk_err e;
	int ret, rc, ret2;

	poison_err(&e);
	ret = ubdk_header_geometry(h, NAME, g, &e);
	rc = ref_geometry(h, &rg);
	/* without err, and without a name, the answer is the same */
	ret2 = ubdk_header_geometry(h, NULL, &g2, NULL);
	CHECK(ret2 == ret);
	if (rc) {
		CHECK(ret < 0);
		check_err(ret, &e, NAME);
		CHECK(e.code == rc);
		return ret;
	}
	CHECK(ret == 0);
	check_same_geometry(g, &rg);
	check_same_geometry(g, &g2);
	check_geometry_sane(h, g);
	return 0;
}

/* Encode h; if that works, decode the bytes and compare. */
static void roundtrip(const struct ubdk_header *h, const uint8_t *orig,
		      size_t orig_len)
{
	static uint8_t buf[UBDK_HDR_MAX_SIZE + 64];
	struct ubdk_header h2;
	struct ubdk_geometry g, g2;
	struct ubdk_err e;
	unsigned expect = 0;
	size_t plen = strnlen(h->backing, sizeof(h->backing));
	int ret, gret;
	uint8_t *exact;

	gret = ubdk_header_geometry(h, NULL, &g, NULL);
	if (h->layout == UBDK_LAYOUT_V3_BROKEN)
		expect |= BIT(UBDK_E_INVALID_ARG);
	if (gret < 0) {
		struct ubdk_err ge;

		ubdk_header_geometry(h, NULL, &g, &ge);
		expect |= BIT(ge.code);
	}
	if (h->cow_format != 0)
		expect |= BIT(UBDK_E_COW_FORMAT);
	if (plen == 0)
		expect |= BIT(UBDK_E_BACKING_EMPTY);
	else if (h->layout >= UBDK_LAYOUT_V1 &&
		 h->layout <= UBDK_LAYOUT_V3_BROKEN &&
		 plen >= path_field(h->layout))
		expect |= BIT(UBDK_E_PATH_TOO_LONG);

	memset(buf, 0x5a, sizeof(buf));
	poison_err(&e);
	ret = ubdk_header_encode(h, buf, UBDK_HDR_MAX_SIZE, &e);
	if (expect) {
		check_err(ret, &e, NULL);
		CHECK(err_in(e.code, expect));
		/* nothing written on failure */
		for (size_t i = 0; i < sizeof(buf); i++)
			CHECK(buf[i] == 0x5a);
		return;
	}
	CHECK(ret > 0 && (uint64_t)ret == g.header_len);
	for (size_t i = (size_t)ret; i < sizeof(buf); i++)
		CHECK(buf[i] == 0x5a);

	/* A buffer one byte short is refused. */
	{
		struct ubdk_err e2;
		static uint8_t small[UBDK_HDR_MAX_SIZE];
		int r2;

		memset(small, 0x33, sizeof(small));
		poison_err(&e2);
		r2 = ubdk_header_encode(h, small, (size_t)ret - 1, &e2);
		check_err(r2, &e2, NULL);
		CHECK(e2.code == UBDK_E_INVALID_ARG);
		for (size_t i = 0; i < sizeof(small); i++)
			CHECK(small[i] == 0x33);
	}

	/* The exact bytes, in an exactly sized buffer. */
	exact = malloc((size_t)ret);
	CHECK(exact != NULL);
	memcpy(exact, buf, (size_t)ret);
	poison_err(&e);
	CHECK(ubdk_header_decode(exact, (size_t)ret, NAME, &h2, &e) == 0);
	free(exact);
	check_same_header(&h2, h);
	CHECK(ubdk_header_geometry(&h2, NAME, &g2, NULL) == 0);
	check_same_geometry(&g, &g2);

	/*
	 * Against the original input: the same bytes except that the
	 * encoder zeroes what follows the path's NUL.  Only v2/v3 whose magic
	 * was little-endian are re-encoded big-endian (the kernel reads the
	 * version in the magic's byte order, and every other field of v2/v3
	 * big-endian).
	 */
	if (orig && orig_len >= (size_t)ret &&
	    (h->layout == UBDK_LAYOUT_V1 ||
	     orig[0] == 0x4f)) {
		size_t foff = h->layout == UBDK_LAYOUT_V3 ? 32 : 8;
		size_t flen = path_field(h->layout);

		for (size_t i = 0; i < (size_t)ret; i++) {
			uint8_t want = orig[i];

			if (i >= foff + plen && i < foff + flen)
				want = 0;
			CHECK(buf[i] == want);
		}
	}
}

/* Decode the input, check it all, and round-trip it. */
static void check_decode(const uint8_t *data, size_t size)
{
	struct ubdk_header h, rh, h2;
	struct ubdk_geometry g;
	struct ubdk_err e;
	unsigned bad;
	int ret, r2;

	poison_err(&e);
	ret = ubdk_header_decode(data, size, NAME, &h, &e);
	bad = ref_decode(data, size, &rh);

	r2 = ubdk_header_decode(data, size, NULL, &h2, NULL);
	CHECK(r2 == ret);
	{
		struct ubdk_err e3;
		struct ubdk_header h3;

		poison_err(&e3);
		r2 = ubdk_header_decode(data, size, NULL, &h3, &e3);
		CHECK(r2 == ret);
		if (ret < 0) {
			check_err(r2, &e3, NULL);
			CHECK(e3.code == e.code);
		}
	}

	/* Geometry of whatever decode left behind, valid or not. */
	r2 = geometry_checked(&h, &g);

	if (bad) {
		CHECK(ret < 0);
		check_err(ret, &e, NAME);
		CHECK(err_in(e.code, bad));
		return;
	}
	CHECK(ret == 0);
	check_same_header(&h, &rh);
	check_same_header(&h, &h2);
	CHECK(h.layout >= UBDK_LAYOUT_V1 && h.layout <= UBDK_LAYOUT_V3_BROKEN);
	CHECK(h.version == (h.layout == UBDK_LAYOUT_V3_BROKEN ? 3U :
			    (uint32_t)h.layout));
	CHECK(h.backing[0] != '\0');
	CHECK(strnlen(h.backing, sizeof(h.backing)) < path_field(h.layout));
	CHECK(h.cow_format == 0);
	CHECK(h.layout == UBDK_LAYOUT_V1 || !h.v1_swapped);
	if (h.layout == UBDK_LAYOUT_V1 || h.layout == UBDK_LAYOUT_V2)
		CHECK(h.alignment == h.sectorsize);
	CHECK(strcmp(ubdk_layout_name(h.layout), "unknown") != 0);

	/* A valid header decodes to geometry. */
	CHECK(r2 == 0);

	/* Exactly header_len bytes suffice; one fewer is short. */
	{
		size_t hl = (size_t)g.header_len;
		uint8_t *cp = malloc(hl);
		struct ubdk_header h4;

		CHECK(cp != NULL);
		memcpy(cp, data, hl);
		CHECK(ubdk_header_decode(cp, hl, NAME, &h4, NULL) == 0);
		check_same_header(&h4, &h);
		poison_err(&e);
		r2 = ubdk_header_decode(cp, hl - 1, NAME, &h4, &e);
		check_err(r2, &e, NAME);
		CHECK(e.code == UBDK_E_SHORT_HEADER);
		free(cp);
	}

	roundtrip(&h, data, size);
}

/* A header built from raw input values: reaches encode's own checks. */
static void check_synthetic(const uint8_t *data, size_t size)
{
	struct cursor c = { data, size, 0, 1 };
	struct ubdk_header h;
	struct ubdk_geometry g;
	uint8_t sel;
	size_t plen;

	memset(&h, 0, sizeof(h));
	sel = get8(&c);
	h.layout = sel & 7;           /* 0 and 5..7 are invalid layouts */
	if (h.layout > 4 && (sel & 0x80))
		h.layout = 1 + (h.layout & 3);
	h.version = h.layout == UBDK_LAYOUT_V3_BROKEN ? 3 : (uint32_t)h.layout;
	h.v1_swapped = h.layout == UBDK_LAYOUT_V1 && (sel & 0x40);
	h.mtime = get32(&c);
	sel = get8(&c);
	h.sectorsize = (sel & 0x80) ? get32(&c) : 1U << (sel & 31);
	if (h.layout == UBDK_LAYOUT_V1 || h.layout == UBDK_LAYOUT_V2) {
		h.alignment = h.sectorsize;
	} else {
		sel = get8(&c);
		h.alignment = (sel & 0x80) ? get32(&c) :
			      (sel & 0x40) ? (uint32_t)sel & 0x3f :
					     1U << (sel & 31);
	}
	sel = get8(&c);
	h.size = (sel & 0x80) ? get64(&c) :
		 (sel & 0x40) ? (uint64_t)get32(&c) :
				(uint64_t)get32(&c) << (sel & 63);
	sel = get8(&c);
	h.cow_format = (sel & 0xf0) == 0xf0 ? get32(&c) : 0;
	plen = (size_t)get8(&c) << 8 | get8(&c);
	plen %= sizeof(h.backing) + 1;
	for (size_t i = 0; i < plen; i++) {
		uint8_t b = get8(&c);

		h.backing[i] = (char)(b ? b : 'a' + (char)(i % 26));
	}

	CHECK((strcmp(ubdk_layout_name(h.layout), "unknown") == 0) ==
	      (h.layout < UBDK_LAYOUT_V1 || h.layout > UBDK_LAYOUT_V3_BROKEN));
	geometry_checked(&h, &g);
	roundtrip(&h, NULL, 0);
}

/* Once: every code has its own name; anything else is "unknown". */
static void check_code_names(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	for (int i = 0; i < UBDK_E__COUNT; i++) {
		const char *a = ubdk_errcode_name(i);

		CHECK(a != NULL && a[0] != '\0' && strcmp(a, "unknown") != 0);
		for (int j = 0; j < i; j++)
			CHECK(strcmp(a, ubdk_errcode_name(j)) != 0);
	}
	CHECK(strcmp(ubdk_errcode_name(-1), "unknown") == 0);
	CHECK(strcmp(ubdk_errcode_name(UBDK_E__COUNT), "unknown") == 0);
}

/* --- bitmaps ----------------------------------------------------------- */

static bool ref_test(const uint8_t *bm, uint64_t n)
{
	return (bm[n / 8] >> (n % 8)) & 1;
}

/* Bits [s, e) of src (e <= 8 * n) in a buffer of exactly (e + 7) / 8 bytes. */
static void check_bitmap_range(const uint8_t *src, size_t n, uint64_t s,
			       uint64_t e)
{
	size_t nb = (size_t)((e + 7) / 8);
	uint8_t *bm, *set, *ref;
	uint64_t cnt = 0, ft = e, ft2 = e, ff = e;

	(void)n;
	if (s >= e) {
		/* an empty range touches nothing, even far out */
		bm = malloc(1);
		CHECK(bm != NULL);
		bm[0] = 0x5a;
		CHECK(ubdk_bitmap_count(bm, s, e) == 0);
		CHECK(ubdk_bitmap_find(bm, s, e, true) == e);
		CHECK(ubdk_bitmap_find(bm, s, e, false) == e);
		ubdk_bitmap_set_range(bm, s, e);
		CHECK(bm[0] == 0x5a);
		CHECK(ubdk_bitmap_count(bm, UINT64_MAX, UINT64_MAX) == 0);
		CHECK(ubdk_bitmap_find(bm, UINT64_MAX - s, UINT64_MAX - s,
				       true) == UINT64_MAX - s);
		free(bm);
		return;
	}
	bm = malloc(nb);
	set = malloc(nb);
	ref = malloc(nb);
	CHECK(bm && set && ref);
	memcpy(bm, src, nb);

	for (uint64_t i = s; i < e; i++) {
		bool b = ref_test(bm, i);

		CHECK(ubdk_bitmap_test(bm, i) == b);
		cnt += b;
		if (b && ft != e && ft2 == e)
			ft2 = i;
		if (b && ft == e)
			ft = i;
		if (!b && ff == e)
			ff = i;
	}
	CHECK(ubdk_bitmap_count(bm, s, e) == cnt);
	CHECK(ubdk_bitmap_find(bm, s, e, true) == ft);
	CHECK(ubdk_bitmap_find(bm, s, e, false) == ff);
	/* counts split anywhere add up */
	{
		uint64_t m = s + (e - s) / 3;

		CHECK(ubdk_bitmap_count(bm, s, m) +
		      ubdk_bitmap_count(bm, m, e) == cnt);
	}
	/* searching from the first hit finds it again; past it, the next */
	if (ft < e) {
		CHECK(ubdk_bitmap_find(bm, ft, e, true) == ft);
		CHECK(ubdk_bitmap_find(bm, ft + 1, e, true) == ft2);
	}
	CHECK(memcmp(bm, src, nb) == 0);   /* the scans are read-only */

	memcpy(set, src, nb);
	memcpy(ref, src, nb);
	ubdk_bitmap_set_range(set, s, e);
	for (uint64_t i = s; i < e; i++)
		ref[i / 8] |= (uint8_t)(1U << (i % 8));
	CHECK(memcmp(set, ref, nb) == 0);
	CHECK(ubdk_bitmap_count(set, s, e) == e - s);
	CHECK(ubdk_bitmap_find(set, s, e, false) == e);
	CHECK(s == 0 || ubdk_bitmap_count(set, 0, s) ==
	      ubdk_bitmap_count(bm, 0, s));

	/* single-bit set */
	memcpy(set, src, nb);
	memcpy(ref, src, nb);
	ubdk_bitmap_set(set, s);
	ref[s / 8] |= (uint8_t)(1U << (s % 8));
	CHECK(memcmp(set, ref, nb) == 0);
	CHECK(ubdk_bitmap_test(set, s));

	free(bm);
	free(set);
	free(ref);
}

/* At most this many input bytes serve as one bitmap (speed). */
#define BITMAP_WINDOW 512

static void check_bitmaps(const uint8_t *data, size_t size)
{
	struct cursor c = { data, size, 0, -1 };
	uint64_t bits, s, e, span;
	size_t off, n;

	if (size == 0) {
		check_bitmap_range(data, 0, 0, 0);
		return;
	}
	/*
	 * A window of the input, placed and sized by its last bytes; then
	 * the whole window and three ranges in it, chosen the same way.
	 */
	off = (size_t)(((uint32_t)get8(&c) << 8 | get8(&c)) % size);
	n = size - off < BITMAP_WINDOW ? size - off : BITMAP_WINDOW;
	bits = (uint64_t)n * 8;
	check_bitmap_range(data + off, n, 0, bits);
	for (int k = 0; k < 3; k++) {
		s = get32(&c) % (bits + 1);
		span = get8(&c);
		switch (span >> 6) {
		case 0:
			e = s + (span & 63);          /* short, near words */
			break;
		case 1:
			e = s + (span & 63) * 64;     /* whole words */
			break;
		case 2:
			e = get32(&c) % (bits + 1);   /* anywhere, maybe < s */
			break;
		default:
			e = bits - (span & 63);       /* near the end */
			break;
		}
		if (e > bits)
			e = bits;
		check_bitmap_range(data + off, n, s, e);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_code_names();
	check_decode(data, size);
	check_synthetic(data, size);
	check_bitmaps(data, size);
	return 0;
}
