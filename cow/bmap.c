/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The bitmap of an open COW file, kept sparse and loaded lazily, so that
 * memory and open time follow the sectors written and not the device size
 * (a 1 TiB device has a 256 MiB bitmap; an 8 TiB one, 2 GiB).
 *
 * The bitmap is cut into chunks of CHUNK_BYTES.  Only chunks holding a set
 * bit live in memory, in a hash table keyed by chunk number.  A chunk not
 * in the table is zero when it lies in a hole of the file's bitmap region
 * (SEEK_DATA says so at open, without reading) or has been read and found
 * zero (a bit per chunk in its data extent records that); otherwise it is
 * read from the file on first use, a window at a time.
 *
 * Bits are only ever set.  A chunk whose bits were set in memory is dirty
 * until ubdk__bmap_writeback() puts it in the file; callers write the data
 * of the sectors first, so the file never holds a bit before its data.
 *
 * Memory comes from ubdk_os_map(), which inside UML is usable from the I/O
 * thread (it cannot call the kernel's allocator).
 */
#include "internal.h"
#include "ubdk_os.h"

#include <errno.h>
#include <string.h>

#define CHUNK_BYTES 256U
#define CHUNK_WORDS (CHUNK_BYTES / 8)
#define CHUNK_BITS ((uint64_t)CHUNK_BYTES * 8)
/* Bytes read at once when loading: chunks near each other are used together. */
#define WINDOW_BYTES 65536U
#define WINDOW_CHUNKS (WINDOW_BYTES / CHUNK_BYTES)
/* Memory taken from the OS at once for chunks. */
#define SLAB_BYTES 65536U
/* Ranges longer than this many chunks skip known-zero chunks through the
 * sorted index instead of looking at each one. */
#define SKIP_CHUNKS 64

struct chunk {
	uint64_t w[CHUNK_WORDS];   /* the bytes as on disk: the bitmap.c
	                              functions work on them directly */
	uint64_t idx;
	struct chunk *next_dirty;
	bool dirty;
};

struct slab {
	struct slab *next;
	size_t used;               /* chunks handed out (the arena: bytes) */
	struct chunk chunks[];
};

#define SLAB_CHUNKS ((SLAB_BYTES - sizeof(struct slab)) / sizeof(struct chunk))

struct entry {
	uint64_t key;              /* chunk number + 1; 0 = empty */
	struct chunk *chunk;
};

/* A data extent of the bitmap region: chunks that may hold set bits. */
struct extent {
	uint64_t first, end;       /* chunk numbers, [first, end) */
	uint64_t *loaded;          /* a bit per chunk read from the file */
	uint64_t *nonzero;         /* a bit per chunk in memory (same map) */
	size_t loaded_len;         /* bytes for both */
	bool in_arena;             /* small: carved from the arena */
};

struct ubdk_bmap {
	int fd;
	uint64_t offset;           /* of the bitmap in the file */
	uint64_t used;             /* bitmap bytes that hold bits */
	uint64_t covered;          /* bits that exist */
	uint64_t nchunks;

	struct entry *table;
	uint64_t table_cap;        /* power of two */
	uint64_t table_len;
	unsigned table_shift;

	struct extent *ext;
	size_t next, ext_cap;

	struct slab *slabs;
	struct slab *arena;        /* small allocations (per-extent bits) */
	struct chunk *dirty;       /* chunks to write back */

	uint64_t *sorted;          /* keys of in-memory chunks outside the
	                              data extents, ascending (those inside
	                              are found through the extents) */
	uint64_t sorted_len, sorted_cap;
	bool sorted_stale;

	uint8_t *window;           /* WINDOW_BYTES, for loading */
	uint64_t mem;              /* bytes mapped, for ubdk__bmap_mem */
};

static void *map(struct ubdk_bmap *bm, size_t len)
{
	void *p = ubdk_os_map(len);

	if (p)
		bm->mem += len;
	return p;
}

static void unmap(struct ubdk_bmap *bm, void *p, size_t len)
{
	if (p) {
		ubdk_os_unmap(p, len);
		bm->mem -= len;
	}
}

static uint64_t hash(uint64_t key, unsigned shift)
{
	return (key * 0x9e3779b97f4a7c15ULL) >> shift;
}

static struct chunk *lookup(const struct ubdk_bmap *bm, uint64_t c)
{
	uint64_t key = c + 1, mask = bm->table_cap - 1, i;

	if (!bm->table)
		return NULL;
	for (i = hash(key, bm->table_shift);; i = (i + 1) & mask) {
		if (bm->table[i].key == key)
			return bm->table[i].chunk;
		if (!bm->table[i].key)
			return NULL;
	}
}

static void put(struct entry *table, uint64_t cap, unsigned shift,
		struct chunk *ch)
{
	uint64_t key = ch->idx + 1, i;

	for (i = hash(key, shift); table[i].key; i = (i + 1) & (cap - 1))
		;
	table[i].key = key;
	table[i].chunk = ch;
}

static int grow_table(struct ubdk_bmap *bm)
{
	uint64_t cap = bm->table_cap ? bm->table_cap * 2 : 256, i;
	unsigned shift = bm->table_cap ? bm->table_shift - 1 : 64 - 8;
	struct entry *t;

	if (cap > SIZE_MAX / sizeof(*t))
		return -ENOMEM;
	t = map(bm, (size_t)cap * sizeof(*t));
	if (!t)
		return -ENOMEM;
	memset(t, 0, (size_t)cap * sizeof(*t));
	for (i = 0; i < bm->table_cap; i++)
		if (bm->table[i].key)
			put(t, cap, shift, bm->table[i].chunk);
	unmap(bm, bm->table, (size_t)bm->table_cap * sizeof(*t));
	bm->table = t;
	bm->table_cap = cap;
	bm->table_shift = shift;
	return 0;
}

static struct chunk *new_chunk(struct ubdk_bmap *bm, uint64_t c)
{
	struct chunk *ch;

	if (2 * (bm->table_len + 1) > bm->table_cap && grow_table(bm) < 0)
		return NULL;
	if (!bm->slabs || bm->slabs->used == SLAB_CHUNKS) {
		struct slab *s = map(bm, SLAB_BYTES);

		if (!s)
			return NULL;
		s->next = bm->slabs;
		s->used = 0;
		bm->slabs = s;
	}
	ch = &bm->slabs->chunks[bm->slabs->used++];
	memset(ch, 0, sizeof(*ch));
	ch->idx = c;
	put(bm->table, bm->table_cap, bm->table_shift, ch);
	bm->table_len++;
	return ch;
}

/*
 * Small allocations, carved from slabs freed only at close: a mapping of
 * its own would cost a page for each of thousands of small extents.
 */
static void *arena_alloc(struct ubdk_bmap *bm, size_t len)
{
	size_t room = SLAB_BYTES - sizeof(struct slab);
	void *p;

	len = (len + 15) & ~(size_t)15;
	if (len > room / 4)
		return NULL;
	if (!bm->arena || room - bm->arena->used < len) {
		struct slab *s = map(bm, SLAB_BYTES);

		if (!s)
			return NULL;
		s->next = bm->arena;
		s->used = 0;
		bm->arena = s;
	}
	p = (uint8_t *)bm->arena->chunks + bm->arena->used;
	bm->arena->used += len;
	return p;
}

/* The data extent holding chunk c, or NULL. */
static struct extent *extent_of(const struct ubdk_bmap *bm, uint64_t c)
{
	size_t lo = 0, hi = bm->next;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (bm->ext[mid].end <= c)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < bm->next && bm->ext[lo].first <= c ? &bm->ext[lo] : NULL;
}

static bool is_loaded(const struct extent *e, uint64_t c)
{
	uint64_t i = c - e->first;

	return e->loaded && (e->loaded[i / 64] >> (i % 64)) & 1;
}

static bool is_nonzero(const struct extent *e, uint64_t c)
{
	uint64_t i = c - e->first;

	return e->loaded && (e->nonzero[i / 64] >> (i % 64)) & 1;
}

static void mark_nonzero(struct extent *e, uint64_t c)
{
	uint64_t i = c - e->first;

	e->nonzero[i / 64] |= 1ULL << (i % 64);
}

/* Bytes of chunk c that lie in the bitmap. */
static size_t chunk_len(const struct ubdk_bmap *bm, uint64_t c)
{
	uint64_t from = c * CHUNK_BYTES;

	return bm->used - from < CHUNK_BYTES ? (size_t)(bm->used - from) :
	       CHUNK_BYTES;
}

/* Is a chunk's worth of bytes all zero?  A word at a time: most are. */
static bool all_zero(const uint8_t *p, size_t n)
{
	uint64_t acc = 0, w;
	size_t k = 0;

	for (; k + 8 <= n; k += 8) {
		memcpy(&w, p + k, 8);
		acc |= w;
	}
	for (; k < n; k++)
		acc |= p[k];
	return acc == 0;
}

/* Read the window of extent e around chunk c; keep its non-zero chunks. */
static int load(struct ubdk_bmap *bm, struct extent *e, uint64_t c)
{
	uint64_t first = c / WINDOW_CHUNKS * WINDOW_CHUNKS, end, i;
	size_t got, len;
	int ret;

	if (!e->loaded) {
		uint64_t n = e->end - e->first;

		uint64_t words = (n + 63) / 64;

		e->loaded_len = (size_t)(2 * words * 8);
		e->loaded = arena_alloc(bm, e->loaded_len);
		e->in_arena = e->loaded != NULL;
		if (!e->loaded)
			e->loaded = map(bm, e->loaded_len);
		if (!e->loaded)
			return -ENOMEM;
		memset(e->loaded, 0, e->loaded_len);
		e->nonzero = e->loaded + words;
	}
	if (!bm->window) {
		bm->window = map(bm, WINDOW_BYTES);
		if (!bm->window)
			return -ENOMEM;
	}
	if (first < e->first)
		first = e->first;
	end = first + WINDOW_CHUNKS;
	if (end > e->end)
		end = e->end;
	len = (size_t)((end - first) * CHUNK_BYTES);
	if (first * CHUNK_BYTES + len > bm->used)
		len = (size_t)(bm->used - first * CHUNK_BYTES);
	ret = ubdk_os_pread(bm->fd, bm->window, len,
			    bm->offset + first * CHUNK_BYTES, &got);
	if (ret < 0)
		return ret;
	memset(bm->window + got, 0, len - got);
	for (i = first; i < end; i++) {
		const uint8_t *src = bm->window + (i - first) * CHUNK_BYTES;
		uint64_t rel = i - e->first;
		size_t n = chunk_len(bm, i);
		struct chunk *ch;

		if (is_loaded(e, i))
			continue;
		if (!all_zero(src, n) && !lookup(bm, i)) {
			ch = new_chunk(bm, i);
			if (!ch)
				return -ENOMEM;
			memcpy(ch->w, src, n);
			mark_nonzero(e, i);
		}
		e->loaded[rel / 64] |= 1ULL << (rel % 64);
	}
	return 0;
}

/*
 * Chunk c in memory, loading it if needed; NULL in *out when it is zero.
 */
static int get_chunk(struct ubdk_bmap *bm, uint64_t c, struct chunk **out)
{
	struct extent *e;
	int ret;

	*out = lookup(bm, c);
	if (*out)
		return 0;
	e = extent_of(bm, c);
	if (!e || is_loaded(e, c))
		return 0;
	ret = load(bm, e, c);
	if (ret < 0)
		return ret;
	*out = lookup(bm, c);
	return 0;
}

static int add_extent(struct ubdk_bmap *bm, uint64_t first, uint64_t end)
{
	if (bm->next && bm->ext[bm->next - 1].end >= first) {
		if (end > bm->ext[bm->next - 1].end)
			bm->ext[bm->next - 1].end = end;
		return 0;
	}
	if (bm->next == bm->ext_cap) {
		size_t cap = bm->ext_cap ? bm->ext_cap * 2 : 16;
		struct extent *n = map(bm, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		if (bm->ext)
			memcpy(n, bm->ext, bm->next * sizeof(*n));
		unmap(bm, bm->ext, bm->ext_cap * sizeof(*n));
		bm->ext = n;
		bm->ext_cap = cap;
	}
	bm->ext[bm->next].first = first;
	bm->ext[bm->next].end = end;
	bm->ext[bm->next].loaded = NULL;
	bm->ext[bm->next].nonzero = NULL;
	bm->ext[bm->next].loaded_len = 0;
	bm->ext[bm->next].in_arena = false;
	bm->next++;
	return 0;
}

/* Which parts of the bitmap region the file has data for: the rest is zero. */
static int find_extents(struct ubdk_bmap *bm)
{
	uint64_t pos = bm->offset, stop = bm->offset + bm->used;

	while (pos < stop) {
		uint64_t data, hole;
		int ret = ubdk_os_next_data(bm->fd, pos, &data, &hole);

		if (ret == -ENXIO)
			break;             /* only holes from here on */
		if (ret == -EINVAL || ret == -EOPNOTSUPP) {
			/* No hole information: anything may be set. */
			return add_extent(bm, (pos - bm->offset) / CHUNK_BYTES,
					  bm->nchunks);
		}
		if (ret < 0)
			return ret;
		if (data >= stop)
			break;
		if (hole > stop)
			hole = stop;
		ret = add_extent(bm, (data - bm->offset) / CHUNK_BYTES,
				 (hole - bm->offset + CHUNK_BYTES - 1) /
				 CHUNK_BYTES);
		if (ret < 0)
			return ret;
		pos = hole;
	}
	return 0;
}

int ubdk__bmap_open(int fd, uint64_t offset, uint64_t used, uint64_t covered,
		    struct ubdk_bmap **out)
{
	struct ubdk_bmap *bm = ubdk_os_zalloc(sizeof(*bm));
	int ret;

	*out = NULL;
	if (!bm)
		return -ENOMEM;
	bm->fd = fd;
	bm->offset = offset;
	bm->used = used;
	bm->covered = covered;
	bm->nchunks = (used + CHUNK_BYTES - 1) / CHUNK_BYTES;
	ret = find_extents(bm);
	if (ret < 0) {
		ubdk__bmap_free(bm);
		return ret;
	}
	*out = bm;
	return 0;
}

void ubdk__bmap_free(struct ubdk_bmap *bm)
{
	size_t i;

	if (!bm)
		return;
	while (bm->slabs) {
		struct slab *s = bm->slabs;

		bm->slabs = s->next;
		unmap(bm, s, SLAB_BYTES);
	}
	while (bm->arena) {
		struct slab *s = bm->arena;

		bm->arena = s->next;
		unmap(bm, s, SLAB_BYTES);
	}
	for (i = 0; i < bm->next; i++)
		if (!bm->ext[i].in_arena)
			unmap(bm, bm->ext[i].loaded, bm->ext[i].loaded_len);
	unmap(bm, bm->ext, bm->ext_cap * sizeof(*bm->ext));
	unmap(bm, bm->table, (size_t)bm->table_cap * sizeof(*bm->table));
	unmap(bm, bm->sorted, (size_t)bm->sorted_cap * sizeof(*bm->sorted));
	unmap(bm, bm->window, WINDOW_BYTES);
	ubdk_os_free(bm);
}

uint64_t ubdk__bmap_mem(const struct ubdk_bmap *bm)
{
	return bm->mem + sizeof(*bm);
}

/*
 * Heapsort, in place: libc's qsort may allocate, and inside UML this runs
 * on the I/O thread, which must not call the kernel's allocator.
 */
static void sift_down(uint64_t *a, uint64_t i, uint64_t n)
{
	for (;;) {
		uint64_t big = i, l = 2 * i + 1, r = l + 1, t;

		if (l < n && a[l] > a[big])
			big = l;
		if (r < n && a[r] > a[big])
			big = r;
		if (big == i)
			return;
		t = a[i];
		a[i] = a[big];
		a[big] = t;
		i = big;
	}
}

static void sort_u64(uint64_t *a, uint64_t n)
{
	for (uint64_t i = n / 2; i-- > 0;)
		sift_down(a, i, n);
	for (uint64_t end = n; end-- > 1;) {
		uint64_t t = a[0];

		a[0] = a[end];
		a[end] = t;
		sift_down(a, 0, end);
	}
}

static int sort_keys(struct ubdk_bmap *bm)
{
	uint64_t i, n = 0;

	if (!bm->sorted_stale && bm->sorted)
		return 0;
	if (bm->sorted_cap < bm->table_len || !bm->sorted) {
		uint64_t cap = bm->table_cap ? bm->table_cap : 1;
		uint64_t *s = map(bm, (size_t)cap * sizeof(*s));

		if (!s)
			return -ENOMEM;
		unmap(bm, bm->sorted, (size_t)bm->sorted_cap * sizeof(*s));
		bm->sorted = s;
		bm->sorted_cap = cap;
	}
	for (i = 0; i < bm->table_cap; i++)
		if (bm->table[i].key && !extent_of(bm, bm->table[i].key - 1))
			bm->sorted[n++] = bm->table[i].key - 1;
	sort_u64(bm->sorted, n);
	bm->sorted_len = n;
	bm->sorted_stale = false;
	return 0;
}

/*
 * The first chunk at or after c that may hold a set bit: in memory, or in a
 * data extent and not yet read.  limit when there is none before it.
 */
static int next_candidate(struct ubdk_bmap *bm, uint64_t c, uint64_t limit,
			  uint64_t *out)
{
	uint64_t best = limit;
	size_t lo = 0, hi;
	int ret;

	if (limit - c <= SKIP_CHUNKS) {
		for (; c < limit; c++) {
			struct extent *e;

			if (lookup(bm, c))
				break;
			e = extent_of(bm, c);
			if (e && !is_loaded(e, c))
				break;
		}
		*out = c;
		return 0;
	}
	ret = sort_keys(bm);
	if (ret < 0)
		return ret;
	hi = (size_t)bm->sorted_len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (bm->sorted[mid] < c)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < bm->sorted_len && bm->sorted[lo] < best)
		best = bm->sorted[lo];
	/* Data extents not fully read may hold bits too. */
	for (lo = 0, hi = bm->next; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;

		if (bm->ext[mid].end <= c)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < bm->next && bm->ext[lo].first < best; lo++) {
		const struct extent *e = &bm->ext[lo];
		uint64_t i = e->first > c ? e->first : c;

		for (; i < e->end && i < best; i++) {
			uint64_t w = (i - e->first) / 64;

			if (!is_loaded(e, i) || is_nonzero(e, i)) {
				best = i;
				break;
			}
			/* 64 chunks read and found zero: skip them. */
			if ((i - e->first) % 64 == 0 && e->loaded[w] == ~0ULL &&
			    !e->nonzero[w])
				i += 63;
		}
	}
	*out = best;
	return 0;
}

/*
 * The chunk holding bit pos (NULL when it is zero) and the end of its bits
 * within [pos, end).
 */
static int chunk_at(struct ubdk_bmap *bm, uint64_t pos, uint64_t end,
		    struct chunk **ch, uint64_t *cend)
{
	uint64_t c = pos / CHUNK_BITS;

	*cend = (c + 1) * CHUNK_BITS < end ? (c + 1) * CHUNK_BITS : end;
	return get_chunk(bm, c, ch);
}

/* Past the zero chunk holding bit *pos, to the next that may hold bits. */
static int skip_zero_chunk(struct ubdk_bmap *bm, uint64_t *pos, uint64_t end)
{
	uint64_t c;
	int ret = next_candidate(bm, *pos / CHUNK_BITS + 1,
				 (end + CHUNK_BITS - 1) / CHUNK_BITS, &c);

	if (ret == 0)
		*pos = c * CHUNK_BITS;
	return ret;
}

static const uint8_t *bits_of(const struct chunk *ch)
{
	return (const uint8_t *)ch->w;
}

int ubdk__bmap_test(struct ubdk_bmap *bm, uint64_t n)
{
	struct chunk *ch;
	int ret;

	if (n >= bm->covered)
		return 0;
	ret = get_chunk(bm, n / CHUNK_BITS, &ch);
	if (ret < 0)
		return ret;
	return ch ? ubdk_bitmap_test(bits_of(ch), n % CHUNK_BITS) : 0;
}

int ubdk__bmap_find(struct ubdk_bmap *bm, uint64_t start, uint64_t end,
		    bool value, uint64_t *found)
{
	uint64_t pos = start, asked_end = end;
	int ret;

	/* Bits past the bitmap's reach do not exist: they read clear. */
	if (end > bm->covered)
		end = bm->covered;
	*found = asked_end;
	if (pos >= end) {
		if (!value && start < asked_end)
			*found = start;
		return 0;
	}
	while (pos < end) {
		uint64_t cend;
		struct chunk *ch;

		ret = chunk_at(bm, pos, end, &ch, &cend);
		if (ret < 0)
			return ret;
		if (!ch) {
			if (!value) {
				*found = pos;
				return 0;
			}
			ret = skip_zero_chunk(bm, &pos, end);
			if (ret < 0)
				return ret;
			continue;
		}
		{
			uint64_t base = pos / CHUNK_BITS * CHUNK_BITS;
			uint64_t f = base + ubdk_bitmap_find(bits_of(ch),
							     pos - base,
							     cend - base, value);

			if (f < cend) {
				*found = f;
				return 0;
			}
			pos = cend;
		}
	}
	/* Nothing in [start, covered): the first bit past it reads clear. */
	*found = value ? asked_end : end;
	return 0;
}

int ubdk__bmap_count(struct ubdk_bmap *bm, uint64_t start, uint64_t end,
		     uint64_t *count)
{
	uint64_t pos = start, total = 0;
	int ret;

	if (end > bm->covered)
		end = bm->covered;
	while (pos < end) {
		uint64_t cend;
		struct chunk *ch;

		ret = chunk_at(bm, pos, end, &ch, &cend);
		if (ret < 0)
			return ret;
		if (!ch) {
			ret = skip_zero_chunk(bm, &pos, end);
			if (ret < 0)
				return ret;
			continue;
		}
		total += ubdk_bitmap_count(bits_of(ch), pos % CHUNK_BITS,
					   cend - pos / CHUNK_BITS * CHUNK_BITS);
		pos = cend;
	}
	*count = total;
	return 0;
}

int ubdk__bmap_set(struct ubdk_bmap *bm, uint64_t start, uint64_t end)
{
	uint64_t pos = start;
	int ret;

	if (end > bm->covered)
		return -ERANGE;
	while (pos < end) {
		uint64_t c = pos / CHUNK_BITS, base = c * CHUNK_BITS, cend;
		struct chunk *ch;

		ret = chunk_at(bm, pos, end, &ch, &cend);
		if (ret < 0)
			return ret;
		if (!ch) {
			struct extent *e = extent_of(bm, c);

			ch = new_chunk(bm, c);
			if (!ch)
				return -ENOMEM;
			/* get_chunk read it if it lies in a data extent. */
			if (e)
				mark_nonzero(e, c);
			else
				bm->sorted_stale = true;
		}
		/* Bits already set: the chunk's bytes do not change. */
		if (ubdk_bitmap_find(bits_of(ch), pos - base, cend - base,
				     false) < cend - base) {
			ubdk_bitmap_set_range((uint8_t *)ch->w, pos - base,
					      cend - base);
			if (!ch->dirty) {
				ch->dirty = true;
				ch->next_dirty = bm->dirty;
				bm->dirty = ch;
			}
		}
		pos = cend;
	}
	return 0;
}

bool ubdk__bmap_dirty(const struct ubdk_bmap *bm)
{
	return bm->dirty != NULL;
}

int ubdk__bmap_writeback(struct ubdk_bmap *bm)
{
	while (bm->dirty) {
		struct chunk *ch = bm->dirty;
		int ret = ubdk_os_pwrite(bm->fd, ch->w, chunk_len(bm, ch->idx),
					 bm->offset + ch->idx * CHUNK_BYTES);

		/* Still dirty on failure: a later write-back tries again. */
		if (ret < 0)
			return ret;
		bm->dirty = ch->next_dirty;
		ch->next_dirty = NULL;
		ch->dirty = false;
	}
	return 0;
}
