/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Changed-block tracking: a sparse two-level bitmap of the blocks written
 * since a checkpoint (its files, docs/cbt.md, are cbt_file.c's).
 *
 * The index has one pointer per 2^15 blocks (a 4 KiB leaf of bits); a leaf
 * exists only once one of its blocks is marked, so memory follows the
 * blocks written.  Everything is taken with ubdk_os_map(): inside UML the
 * marking runs on the I/O thread, and the checkpoint may run in mconsole's
 * stop loop with signals blocked, where neither may call the kernel's
 * allocator.  Marking and ubdk_cbt_mark_open() make no messages either.
 */
#include "internal.h"
#include "cbt_internal.h"
#include "ubdk_cbt.h"
#include "ubdk_os.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const reason_names[UBDK_CBT_REASON__COUNT] = {
	[UBDK_CBT_CONSISTENT] = "consistent",
	[UBDK_CBT_MISSING] = "missing",
	[UBDK_CBT_UNCLEAN] = "unclean",
	[UBDK_CBT_COW_CHANGED] = "cow-changed",
	[UBDK_CBT_HEADER_CHANGED] = "header-changed",
	[UBDK_CBT_CORRUPT] = "corrupt",
	[UBDK_CBT_LOST] = "lost",
	[UBDK_CBT_IO_ERROR] = "io-error",
};

const char *ubdk_cbt_reason_name(int reason)
{
	if (reason < 0 || reason >= UBDK_CBT_REASON__COUNT)
		return "unknown";
	return reason_names[reason];
}

bool ubdk_cbt_name_ok(const char *name)
{
	size_t i;

	for (i = 0; name[i]; i++) {
		char c = name[i];

		if (i >= UBDK_CBT_NAME_MAX - 1)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == ':' || c == '@' || c == '+' || c == '-'))
			return false;
	}
	return true;
}

bool ubdk_cbt_gran_ok(uint32_t g)
{
	return g >= UBDK_CBT_GRANULARITY_MIN && g <= UBDK_CBT_GRANULARITY_MAX &&
	       !(g & (g - 1));
}

unsigned ubdk_cbt_log2(uint32_t v)
{
	unsigned n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

/* --- the tracker ------------------------------------------------------- */

static struct ubdk_cbt *alloc_cbt(uint64_t size, uint32_t gran)
{
	struct ubdk_cbt *c = ubdk_os_map(sizeof(*c));

	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->size = size;
	c->gran = gran;
	c->shift = ubdk_cbt_log2(gran);
	c->nblocks = (size >> c->shift) + ((size & (gran - 1)) != 0);
	c->nleaves = (c->nblocks + LEAF_BITS - 1) >> LEAF_SHIFT;
	if (c->nleaves == 0)
		c->nleaves = 1;
	c->leaves_len = (size_t)c->nleaves * sizeof(c->leaves[0]);
	c->leaves = ubdk_os_map(c->leaves_len);
	if (!c->leaves) {
		ubdk_os_unmap(c, sizeof(*c));
		return NULL;
	}
	/* ubdk_os_map gives zeroed memory (anonymous mappings). */
	return c;
}

int ubdk_cbt_new(uint64_t device_size, uint32_t granularity,
		 const char *name, int reason, struct ubdk_cbt **out,
		 struct ubdk_err *err)
{
	struct ubdk_cbt *c;

	*out = NULL;
	if (!granularity)
		granularity = UBDK_CBT_GRANULARITY;
	if (!ubdk_cbt_gran_ok(granularity))
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "CBT granularity %u is not a power of two "
				 "between 4096 and 2^30", granularity);
	if (!device_size)
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "CBT for an empty device");
	if (name && !ubdk_cbt_name_ok(name))
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "bad checkpoint name (0 to 63 of "
				 "A-Z a-z 0-9 . _ : @ + -)");
	if (reason < 0 || reason >= UBDK_CBT_REASON__COUNT)
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "bad CBT reason %d", reason);
	c = alloc_cbt(device_size, granularity);
	if (!c)
		return ubdk_fail(err, UBDK_E_NOMEM, ENOMEM,
				 "no memory for a CBT map");
	if (name)
		strcpy(c->name, name);
	c->reason = reason;
	*out = c;
	return 0;
}

void ubdk_cbt_free(struct ubdk_cbt *c)
{
	uint64_t i;

	if (!c)
		return;
	for (i = 0; i < c->nleaves; i++)
		if (c->leaves[i])
			ubdk_os_unmap(c->leaves[i], LEAF_BYTES);
	ubdk_os_unmap(c->leaves, c->leaves_len);
	ubdk_os_unmap(c, sizeof(*c));
}

/* Set bits [a, b) of one leaf (a < b <= LEAF_BITS); count the new ones. */
static void leaf_set(struct ubdk_cbt *c, uint64_t *w, uint64_t a, uint64_t b)
{
	while (a < b) {
		uint64_t i = a / 64, lo = a % 64;
		uint64_t hi = b - i * 64 >= 64 ? 64 : b - i * 64;
		uint64_t mask = (hi == 64 ? ~0ULL : (1ULL << hi) - 1) &
				~((1ULL << lo) - 1);

		c->count += (uint64_t)__builtin_popcountll(mask & ~w[i]);
		w[i] |= mask;
		a = i * 64 + hi;
	}
}

int ubdk_cbt_mark(struct ubdk_cbt *c, uint64_t off, uint64_t len)
{
	uint64_t first, last;

	if (!len || off >= c->size)
		return 0;
	if (len > c->size - off)
		len = c->size - off;
	first = off >> c->shift;
	last = (off + len - 1) >> c->shift;
	while (first <= last) {
		uint64_t leaf = first >> LEAF_SHIFT;
		uint64_t a = first & (LEAF_BITS - 1);
		uint64_t b = last - (first - a) + 1;

		if (b > LEAF_BITS)
			b = LEAF_BITS;
		if (!c->leaves[leaf]) {
			c->leaves[leaf] = ubdk_os_map(LEAF_BYTES);
			if (!c->leaves[leaf]) {
				/* The change is not recorded: say so. */
				c->reason = UBDK_CBT_LOST;
				return -ENOMEM;
			}
			c->nalloc++;
		}
		leaf_set(c, c->leaves[leaf], a, b);
		first += b - a;
	}
	return 0;
}

bool ubdk_cbt_test(const struct ubdk_cbt *c, uint64_t n)
{
	const uint64_t *w;

	if (n >= c->nblocks)
		return false;
	w = c->leaves[n >> LEAF_SHIFT];
	n &= LEAF_BITS - 1;
	return w && (w[n / 64] >> (n % 64) & 1);
}

uint64_t ubdk_cbt_count(const struct ubdk_cbt *c)
{
	return c->count;
}

uint64_t ubdk_cbt_mem(const struct ubdk_cbt *c)
{
	return sizeof(*c) + c->leaves_len + c->nalloc * LEAF_BYTES;
}

/* First block >= pos whose bit is `value`, or nblocks. */
static uint64_t find(const struct ubdk_cbt *c, uint64_t pos, bool value)
{
	while (pos < c->nblocks) {
		const uint64_t *w = c->leaves[pos >> LEAF_SHIFT];
		uint64_t base = pos & ~(LEAF_BITS - 1);
		uint64_t i = (pos - base) / 64;

		if (!w) {
			if (!value)
				return pos;
			pos = base + LEAF_BITS;
			continue;
		}
		for (; i < LEAF_WORDS; i++) {
			uint64_t word = value ? w[i] : ~w[i];

			if (i == (pos - base) / 64)
				word &= ~0ULL << ((pos - base) % 64);
			if (word) {
				pos = base + i * 64 +
				      (uint64_t)__builtin_ctzll(word);
				return pos < c->nblocks ? pos : c->nblocks;
			}
		}
		pos = base + LEAF_BITS;
	}
	return c->nblocks;
}

int ubdk_cbt_next(const struct ubdk_cbt *c, uint64_t *pos, uint64_t *start,
		  uint64_t *count)
{
	uint64_t s = find(c, *pos, true), e;

	if (s >= c->nblocks) {
		*pos = c->nblocks;
		return 0;
	}
	e = find(c, s, false);
	*start = s;
	*count = e - s;
	*pos = e;
	return 1;
}

void ubdk_cbt_get_info(const struct ubdk_cbt *c, struct ubdk_cbt_info *info)
{
	memset(info, 0, sizeof(*info));
	info->version = UBDK_CBT_VERSION;
	info->reason = (uint32_t)c->reason;
	info->granularity = c->gran;
	info->device_size = c->size;
	info->generation = c->generation;
	info->blocks = c->count;
	strcpy(info->name, c->name);
}

void ubdk_cbt_set_reason(struct ubdk_cbt *c, int reason)
{
	if (reason > 0 && reason < UBDK_CBT_REASON__COUNT)
		c->reason = reason;
}

int ubdk_cbt_checkpoint(struct ubdk_cbt *c, const char *name,
			struct ubdk_cbt **sealed, struct ubdk_err *err)
{
	struct ubdk_cbt *s;
	uint64_t **fresh;

	*sealed = NULL;
	if (!name || !ubdk_cbt_name_ok(name))
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "bad checkpoint name (0 to 63 of "
				 "A-Z a-z 0-9 . _ : @ + -)");
	s = ubdk_os_map(sizeof(*s));
	fresh = ubdk_os_map(c->leaves_len);
	if (!s || !fresh) {
		if (s)
			ubdk_os_unmap(s, sizeof(*s));
		if (fresh)
			ubdk_os_unmap(fresh, c->leaves_len);
		return ubdk_fail(err, UBDK_E_NOMEM, ENOMEM,
				 "no memory for a CBT checkpoint");
	}
	*s = *c;
	c->leaves = fresh;
	c->count = 0;
	c->nalloc = 0;
	c->reason = UBDK_CBT_CONSISTENT;
	c->generation++;
	strcpy(c->name, name);
	*sealed = s;
	return 0;
}

int ubdk_cbt_identity_of(const struct ubdk_cow *cow,
			 struct ubdk_cbt_identity *id, struct ubdk_err *err)
{
	const struct ubdk_header *hdr = ubdk_cow_header(cow);
	struct ubdk_os_stat st;
	int ret;

	ret = ubdk_os_fstat(ubdk_cow_fd(cow), &st);
	if (ret < 0)
		return ubdk_fail(err, UBDK_E_SYS, -ret, "%s: cannot stat: %s",
				 ubdk_cow_path(cow), strerror(-ret));
	id->cow_size = st.size;
	id->cow_mtime_ns = st.mtime_ns;
	id->backing_size = hdr->size;
	id->backing_mtime = hdr->mtime;
	return 0;
}
