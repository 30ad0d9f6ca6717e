/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsdiff.c - comparing inodes, block maps and blocks of the two views of
 * one filesystem, and accounting for the blocks the COW holds (see
 * files.c for the whole picture).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsdiff.h"

/* --- small containers ------------------------------------------------ */

void fsd_stop(struct ctx *c, int why, const char *fmt, ...)
{
	size_t n = 0;
	va_list ap;

	if (c->stop)
		return;
	c->stop = why;
	if (why == FSD_DAMAGED)
		n = (size_t)snprintf(c->stopmsg, sizeof(c->stopmsg),
				     "filesystem damaged: ");
	va_start(ap, fmt);
	vsnprintf(c->stopmsg + n, sizeof(c->stopmsg) - n, fmt, ap);
	va_end(ap);
}

static void *nomem(struct ctx *c)
{
	fsd_stop(c, FSD_FAILED, "out of memory");
	return NULL;
}

char *fsd_strdup(struct ctx *c, const char *s)
{
	char *d = strdup(s);

	return d ? d : nomem(c);
}

char *fsd_join(struct ctx *c, const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = malloc(a + b + 2);

	if (!p)
		return nomem(c);
	memcpy(p, dir, a);
	if (a == 0 || dir[a - 1] != '/')
		p[a++] = '/';
	memcpy(p + a, name, b + 1);
	return p;
}

static size_t iset_slot(const struct iset *s, uint32_t k)
{
	return (size_t)(k * 2654435761U) & (s->cap - 1);
}

bool fsd_iset_add(struct ctx *c, struct iset *s, uint32_t k)
{
	size_t i;

	if ((s->n + 1) * 2 > s->cap) {
		struct iset ns = { .cap = s->cap ? s->cap * 2 : 64 };

		ns.v = calloc(ns.cap, sizeof(*ns.v));
		if (!ns.v) {
			nomem(c);
			return false;
		}
		for (size_t j = 0; j < s->cap; j++)
			if (s->v[j])
				fsd_iset_add(c, &ns, s->v[j]);
		free(s->v);
		*s = ns;
	}
	for (i = iset_slot(s, k); s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == k)
			return true;
	s->v[i] = k;
	s->n++;
	return true;
}

bool fsd_iset_has(const struct iset *s, uint32_t k)
{
	if (!s->cap)
		return false;
	for (size_t i = iset_slot(s, k); s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == k)
			return true;
	return false;
}

/* --- the blocks the COW holds ---------------------------------------- */

int fsd_changed_blocks(struct ctx *c)
{
	uint64_t ss = c->im->hdr.sectorsize, pos = 0, total = 0;
	uint64_t fs_bytes = ext2fs_blocks_count(c->m.fs->super) * c->bs;
	struct extent r, *l;
	size_t cap = 0;
	int ret;

	while ((ret = img_next_cow_run(c->im, &pos, &r)) > 0) {
		uint64_t s = r.start * ss, e = (r.start + r.len) * ss, b0, b1;

		if (e <= c->off || s >= c->off + fs_bytes)
			continue;
		s = s > c->off ? s - c->off : 0;
		e = e - c->off > fs_bytes ? fs_bytes : e - c->off;
		b0 = s / c->bs;
		b1 = (e + c->bs - 1) / c->bs;
		if (c->ncb && c->cb[c->ncb - 1].start + c->cb[c->ncb - 1].len >= b0) {
			l = &c->cb[c->ncb - 1];
			if (b1 > l->start + l->len)
				l->len = b1 - l->start;
			continue;
		}
		l = grow_array(c->cb, &cap, c->ncb, sizeof(*c->cb), FSD_GROW_FIRST);
		if (!l)
			return -ENOMEM;
		c->cb = l;
		c->cb[c->ncb].start = b0;
		c->cb[c->ncb].len = b1 - b0;
		c->ncb++;
	}
	if (ret < 0)
		return ret;
	c->cbidx = calloc(c->ncb + 1, sizeof(*c->cbidx));
	if (!c->cbidx)
		return -ENOMEM;
	for (size_t i = 0; i < c->ncb; i++) {
		c->cbidx[i] = total;
		total += c->cb[i].len;
	}
	c->ncblocks = total;
	c->unexplained = total;
	c->cat = calloc(total ? total : 1, 1);
	return c->cat ? 0 : -ENOMEM;
}

/* Index of the first changed extent ending after block b. */
static size_t cb_at(const struct ctx *c, uint64_t b)
{
	size_t lo = 0, hi = c->ncb;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->cb[mid].start + c->cb[mid].len <= b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Does [b, b + n) hold a block the guest wrote? */
bool fsd_in_changed(const struct ctx *c, uint64_t b, uint64_t n)
{
	size_t i = cb_at(c, b);

	return n && i < c->ncb && c->cb[i].start < b + n;
}

/*
 * Give the changed blocks of [b, b + n) a category, unless they have one;
 * returns how many got one.
 */
static uint64_t mark(struct ctx *c, uint64_t b, uint64_t n, int cat)
{
	uint64_t got = 0;

	for (size_t i = cb_at(c, b); i < c->ncb && c->cb[i].start < b + n; i++) {
		uint64_t s = c->cb[i].start > b ? c->cb[i].start : b;
		uint64_t e = c->cb[i].start + c->cb[i].len;

		if (e > b + n)
			e = b + n;
		for (uint64_t x = s; x < e; x++) {
			uint8_t *p = &c->cat[c->cbidx[i] + (x - c->cb[i].start)];

			if (*p == CAT_NONE) {
				*p = (uint8_t)cat;
				got++;
			}
		}
	}
	c->unexplained -= got;
	return got;
}

/* --- inodes and block maps ------------------------------------------- */

errcode_t fsd_read_inode(ext2_filsys fs, ext2_ino_t ino, union inode_buf *b)
{
	memset(b, 0, sizeof(*b));
	return ext2fs_read_inode_full(fs, ino, EXT2_INODE(&b->l),
				      (int)(EXT2_INODE_SIZE(fs->super) <
					    sizeof(*b) ? EXT2_INODE_SIZE(fs->super) :
					    sizeof(*b)));
}

bool fsd_ino_valid(ext2_filsys fs, ext2_ino_t ino)
{
	return ino >= 1 && ino <= fs->super->s_inodes_count;
}

bool fsd_inode_in_use(ext2_filsys fs, ext2_ino_t ino, const union inode_buf *b)
{
	if (!fsd_ino_valid(fs, ino))
		return false;
	if (fs->inode_map && !ext2fs_test_inode_bitmap2(fs->inode_map, ino))
		return false;
	return b->l.i_links_count > 0 && b->l.i_dtime == 0 && b->l.i_mode != 0;
}

/* The block of the inode table holding ino (a valid inode number). */
static uint64_t itable_block(ext2_filsys fs, ext2_ino_t ino)
{
	uint32_t ipg = fs->super->s_inodes_per_group;
	dgrp_t g = (dgrp_t)((ino - 1) / ipg);
	uint64_t idx = (ino - 1) % ipg;

	return ext2fs_inode_table_loc(fs, g) +
	       idx * EXT2_INODE_SIZE(fs->super) / fs->blocksize;
}

/* May the inode differ between K and M? */
bool fsd_inode_maybe_changed(const struct ctx *c, ext2_ino_t ino)
{
	/* An inode that cannot be read in M is read, and fails, in both. */
	if (!c->same_geo || !fsd_ino_valid(c->m.fs, ino))
		return true;
	return fsd_in_changed(c, itable_block(c->m.fs, ino), 1) ||
	       fsd_iset_has(&c->force, ino);
}

void fsd_map_free(struct fmap *m)
{
	free(m->v);
	free(m->meta);
	memset(m, 0, sizeof(*m));
}

static bool map_add(struct fmap *m, uint64_t l, uint64_t p, uint64_t n,
		    bool uninit)
{
	struct fext *v;

	if (m->n) {
		struct fext *x = &m->v[m->n - 1];

		if (x->lblk + x->len == l && x->pblk + x->len == p &&
		    x->uninit == uninit) {
			x->len += n;
			return true;
		}
	}
	v = grow_array(m->v, &m->cap, m->n, sizeof(*m->v), FSD_GROW_FIRST);
	if (!v)
		return !(m->nomem = true);
	m->v = v;
	m->v[m->n++] = (struct fext){ l, p, n, uninit };
	return true;
}

static bool map_meta(struct fmap *m, uint64_t p)
{
	struct extent *v = grow_array(m->meta, &m->capmeta, m->nmeta,
				    sizeof(*m->meta), FSD_GROW_FIRST);

	if (!v)
		return !(m->nomem = true);
	m->meta = v;
	m->meta[m->nmeta++] = (struct extent){ p, 1 };
	return true;
}

static int block_cb(ext2_filsys fs, blk64_t *blocknr, e2_blkcnt_t blockcnt,
		    blk64_t ref_blk, int ref_offset, void *priv)
{
	struct fmap *m = priv;

	(void)fs, (void)ref_blk, (void)ref_offset;
	if (blockcnt < 0 ? map_meta(m, *blocknr) :
	    map_add(m, (uint64_t)blockcnt, *blocknr, 1, false))
		return 0;
	return BLOCK_ABORT;
}

static errcode_t get_map(ext2_filsys fs, ext2_ino_t ino, union inode_buf *b,
			 struct fmap *m)
{
	struct ext2_inode *inode = EXT2_INODE(&b->l);
	blk64_t acl = ext2fs_file_acl_block(fs, inode);
	errcode_t ret = 0;

	if (acl && !map_meta(m, acl))
		return EXT2_ET_NO_MEMORY;
	if (inode->i_flags & EXT4_INLINE_DATA_FL)
		return 0;
	if (!ext2fs_inode_has_valid_blocks2(fs, inode))
		return 0;
	if (inode->i_flags & EXT4_EXTENTS_FL) {
		ext2_extent_handle_t h;
		struct ext2fs_extent e;
		int op = EXT2_EXTENT_ROOT;

		ret = ext2fs_extent_open2(fs, ino, inode, &h);
		if (ret)
			return ret;
		while ((ret = ext2fs_extent_get(h, op, &e)) == 0) {
			op = EXT2_EXTENT_NEXT;
			if (e.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT)
				continue;
			if (!(e.e_flags & EXT2_EXTENT_FLAGS_LEAF) ?
			    !map_meta(m, e.e_pblk) :
			    e.e_len && !map_add(m, e.e_lblk, e.e_pblk, e.e_len,
						e.e_flags & EXT2_EXTENT_FLAGS_UNINIT)) {
				ret = EXT2_ET_NO_MEMORY;
				break;
			}
		}
		ext2fs_extent_free(h);
		if (ret == EXT2_ET_EXTENT_NO_NEXT || ret == EXT2_ET_EXTENT_NO_DOWN)
			ret = 0;
		return ret;
	}
	ret = ext2fs_block_iterate3(fs, ino, BLOCK_FLAG_READ_ONLY, NULL,
				    block_cb, m);
	return m->nomem ? EXT2_ET_NO_MEMORY : ret;
}

/* The block map of an inode: data extents and metadata blocks. */
errcode_t fsd_get_map(struct ctx *c, ext2_filsys fs, ext2_ino_t ino,
		      union inode_buf *b, struct fmap *m)
{
	errcode_t ret;

	memset(m, 0, sizeof(*m));
	ret = get_map(fs, ino, b, m);
	if (ret)
		fsd_map_free(m);
	if (ret == EXT2_ET_NO_MEMORY)
		nomem(c);
	return ret;
}

/* Mark the changed blocks of an inode's map; returns how many. */
static uint64_t mark_map(struct ctx *c, const struct fmap *m, int cat)
{
	uint64_t got = 0;

	for (size_t i = 0; i < m->n; i++)
		got += mark(c, m->v[i].pblk, m->v[i].len, cat);
	for (size_t i = 0; i < m->nmeta; i++)
		got += mark(c, m->meta[i].start, 1, cat);
	return got;
}

/* --- comparing files ----------------------------------------------- */

/* Physical block of logical block l in a map, 0 for a hole; *run: same kind. */
static uint64_t lookup(const struct fmap *m, size_t *cur, uint64_t l,
		       uint64_t *run)
{
	while (*cur < m->n && m->v[*cur].lblk + m->v[*cur].len <= l)
		(*cur)++;
	if (*cur < m->n && m->v[*cur].lblk <= l) {
		const struct fext *x = &m->v[*cur];

		*run = x->lblk + x->len - l;
		return x->uninit ? 0 : x->pblk + (l - x->lblk);
	}
	*run = *cur < m->n ? m->v[*cur].lblk - l : UINT64_MAX;
	return 0;
}

static errcode_t read_or_zero(ext2_filsys fs, uint64_t p, uint64_t n,
			      uint8_t *buf)
{
	if (!p) {
		memset(buf, 0, (size_t)(n * fs->blocksize));
		return 0;
	}
	return io_channel_read_blk64(fs->io, p, (int)n, buf);
}

/*
 * Number of blocks of [l, l + n) whose content differs, between physical
 * blocks pk (in K) and pm (in M), 0 meaning a hole; only the first `last`
 * bytes of the final block count when last is not 0.
 */
static uint64_t compare_range(struct ctx *c, uint64_t pk, uint64_t pm,
			      uint64_t n, unsigned last)
{
	uint64_t diff = 0;

	if (!pk && !pm)
		return 0;
	if (pk == pm && !fsd_in_changed(c, pk, n))
		return 0;
	while (n) {
		uint64_t chunk = n > 256 ? 256 : n;

		if (pk == pm && !fsd_in_changed(c, pk, chunk))
			goto next;
		if (c->budget < 2 * chunk * c->bs) {
			diff += chunk;
			goto next;
		}
		c->budget -= 2 * chunk * c->bs;
		if (read_or_zero(c->k.fs, pk, chunk, c->buf_k) ||
		    read_or_zero(c->m.fs, pm, chunk, c->buf_m)) {
			diff += chunk;
			goto next;
		}
		for (uint64_t i = 0; i < chunk; i++) {
			size_t len = last && chunk == n && i == chunk - 1 ?
				     last : c->bs;

			if (memcmp(c->buf_k + i * c->bs, c->buf_m + i * c->bs, len))
				diff++;
		}
next:
		n -= chunk;
		if (pk)
			pk += chunk;
		if (pm)
			pm += chunk;
	}
	return diff;
}

/*
 * Compare the content of one file before (map mk, size_k) and after (mm,
 * size_m): the blocks whose bytes differ within the common length
 * (*differ), plus blocks past the old end (returned with *differ).
 */
static uint64_t compare_maps(struct ctx *c, const struct fmap *mk,
			     uint64_t size_k, const struct fmap *mm,
			     uint64_t size_m, uint64_t *differ)
{
	uint64_t common = size_k < size_m ? size_k : size_m;
	uint64_t nblk = (common + c->bs - 1) / c->bs, l = 0;
	unsigned tail = (unsigned)(common % c->bs);
	size_t ck = 0, cm = 0;

	*differ = 0;
	while (l < nblk) {
		uint64_t rk, rm, pk = lookup(mk, &ck, l, &rk);
		uint64_t pm = lookup(mm, &cm, l, &rm);
		uint64_t n = rk < rm ? rk : rm;

		if (n > nblk - l)
			n = nblk - l;
		*differ += compare_range(c, pk, pm, n, l + n == nblk ? tail : 0);
		l += n;
	}
	if (size_m > size_k)
		return *differ + (size_m + c->bs - 1) / c->bs - nblk;
	return *differ;
}

static uint64_t xtime(const union inode_buf *b, unsigned isz, uint32_t lo,
		      size_t extra_off)
{
	uint64_t extra = 0;

	if (isz > EXT2_GOOD_OLD_INODE_SIZE &&
	    (size_t)EXT2_GOOD_OLD_INODE_SIZE + b->l.i_extra_isize >= extra_off + 4)
		memcpy(&extra, b->raw + extra_off, 4);
	return (uint64_t)lo << 32 | extra;
}

/* In-inode extended attributes: the bytes after i_extra_isize. */
static bool inode_xattrs_differ(const union inode_buf *a,
				const union inode_buf *b, unsigned isz)
{
	unsigned sa, sb;

	if (isz <= EXT2_GOOD_OLD_INODE_SIZE)
		return false;
	sa = EXT2_GOOD_OLD_INODE_SIZE + a->l.i_extra_isize;
	sb = EXT2_GOOD_OLD_INODE_SIZE + b->l.i_extra_isize;
	if (sa != sb)
		return true;
	return sa < isz && memcmp(a->raw + sa, b->raw + sb, isz - sa) != 0;
}

/* Extended-attribute blocks: entries, without refcount, hash, checksum. */
static bool xattr_blocks_differ(struct ctx *c, uint64_t bk, uint64_t bm)
{
	if (!bk || !bm)
		return bk != bm;
	if (bk == bm && !fsd_in_changed(c, bk, 1))
		return false;
	if (read_or_zero(c->k.fs, bk, 1, c->buf_k) ||
	    read_or_zero(c->m.fs, bm, 1, c->buf_m))
		return true;
	return memcmp(c->buf_k + 32, c->buf_m + 32, c->bs - 32) != 0;
}

static bool is_dir_mode(uint16_t mode)
{
	return LINUX_S_ISDIR(mode);
}

/*
 * Fields that differ between the K inode kino (a) and the M inode mino (b)
 * of one file, content included.  "content" means bytes within the common
 * length differ; *blocks gets those blocks plus the blocks past the old end.
 */
unsigned fsd_inode_diff(struct ctx *c, ext2_ino_t kino, ext2_ino_t mino,
			union inode_buf *a, union inode_buf *b,
			uint64_t *blocks)
{
	unsigned f = 0, isz = c->isz;
	struct ext2_inode *ia = EXT2_INODE(&a->l), *ib = EXT2_INODE(&b->l);
	const uint32_t structural = EXT4_EXTENTS_FL | EXT4_INLINE_DATA_FL |
				    EXT2_INDEX_FL | EXT4_HUGE_FILE_FL |
				    EXT4_EA_INODE_FL;
	uint16_t mode = ib->i_mode;

	*blocks = 0;
	if ((ia->i_mode & LINUX_S_IFMT) != (ib->i_mode & LINUX_S_IFMT))
		f |= F_TYPE;
	if (ia->i_mode != ib->i_mode)
		f |= F_MODE;
	if (inode_uid(*ia) != inode_uid(*ib) || inode_gid(*ia) != inode_gid(*ib))
		f |= F_OWNER;
	if (EXT2_I_SIZE(ia) != EXT2_I_SIZE(ib))
		f |= F_SIZE;
	if (xtime(a, isz, ia->i_mtime, offsetof(struct ext2_inode_large, i_mtime_extra)) !=
	    xtime(b, isz, ib->i_mtime, offsetof(struct ext2_inode_large, i_mtime_extra)))
		f |= F_MTIME;
	if (xtime(a, isz, ia->i_ctime, offsetof(struct ext2_inode_large, i_ctime_extra)) !=
	    xtime(b, isz, ib->i_ctime, offsetof(struct ext2_inode_large, i_ctime_extra)))
		f |= F_CTIME;
	if (ia->i_links_count != ib->i_links_count)
		f |= F_LINKS;
	if ((ia->i_flags & ~structural) != (ib->i_flags & ~structural))
		f |= F_FLAGS;
	if (inode_xattrs_differ(a, b, isz) ||
	    xattr_blocks_differ(c, ext2fs_file_acl_block(c->k.fs, ia),
				ext2fs_file_acl_block(c->m.fs, ib)))
		f |= F_XATTR;
	if (f & F_TYPE)
		return f | F_CONTENT;
	/* Content. */
	if (LINUX_S_ISCHR(mode) || LINUX_S_ISBLK(mode)) {
		if (memcmp(ia->i_block, ib->i_block, sizeof(ia->i_block)))
			f |= F_CONTENT;
	} else if ((ia->i_flags | ib->i_flags) & EXT4_INLINE_DATA_FL ||
		   (LINUX_S_ISLNK(mode) && (ext2fs_is_fast_symlink(ia) ||
					    ext2fs_is_fast_symlink(ib)))) {
		/* Data in the inode (and its system.data attribute). */
		uint64_t common = EXT2_I_SIZE(ia) < EXT2_I_SIZE(ib) ?
				  EXT2_I_SIZE(ia) : EXT2_I_SIZE(ib);

		if (common > sizeof(ia->i_block))
			common = sizeof(ia->i_block);
		if (memcmp(ia->i_block, ib->i_block, (size_t)common) ||
		    ((f & F_XATTR) && EXT2_I_SIZE(ib) > sizeof(ib->i_block)))
			f |= F_CONTENT;
		if (f & (F_CONTENT | F_SIZE))
			*blocks = 1;
		if ((ia->i_flags & ib->i_flags) & EXT4_INLINE_DATA_FL)
			f &= ~(unsigned)F_XATTR;
	} else if (LINUX_S_ISREG(mode) || LINUX_S_ISLNK(mode) ||
		   is_dir_mode(mode)) {
		struct fmap mk = { 0 }, mm = { 0 };
		uint64_t differ = 0;

		if (fsd_get_map(c, c->k.fs, kino, a, &mk) == 0 &&
		    fsd_get_map(c, c->m.fs, mino, b, &mm) == 0)
			*blocks = compare_maps(c, &mk, EXT2_I_SIZE(ia), &mm,
					       EXT2_I_SIZE(ib), &differ);
		else
			*blocks = differ = 1;
		fsd_map_free(&mk);
		fsd_map_free(&mm);
		if (differ)
			f |= F_CONTENT;
	}
	return f;
}

/* --- accounting for the changed blocks --------------------------------- */

void fsd_mark_metadata(struct ctx *c)
{
	ext2_filsys fs = c->m.fs;
	unsigned ipb_blocks = (unsigned)((uint64_t)fs->super->s_inodes_per_group *
					 c->isz / c->bs);

	for (dgrp_t g = 0; g < fs->group_desc_count; g++) {
		blk64_t super = 0, old_desc = 0, new_desc = 0;
		blk_t used = 0;

		ext2fs_super_and_bgd_loc2(fs, g, &super, &old_desc, &new_desc,
					  &used);
		if (super || g == 0)
			mark(c, super, 1, CAT_META);
		if (old_desc)
			mark(c, old_desc, fs->desc_blocks +
			     fs->super->s_reserved_gdt_blocks, CAT_META);
		if (new_desc)
			mark(c, new_desc, 1, CAT_META);
		mark(c, ext2fs_block_bitmap_loc(fs, g), 1, CAT_META);
		mark(c, ext2fs_inode_bitmap_loc(fs, g), 1, CAT_META);
		mark(c, ext2fs_inode_table_loc(fs, g), ipb_blocks, CAT_META);
	}
	if (fs->super->s_first_data_block)
		mark(c, 0, fs->super->s_first_data_block, CAT_META);
	/* The block holding the superblock at 1024 when blocks are 1 KiB+. */
	mark(c, 0, 1, CAT_META);
}

/* The blocks of the reserved inodes (journal, resize, quota...). */
void fsd_mark_reserved_inodes(struct ctx *c)
{
	ext2_filsys fs = c->m.fs;

	for (ext2_ino_t ino = 1; ino < EXT2_FIRST_INO(fs->super); ino++) {
		union inode_buf b;
		struct fmap m;

		if (ino == EXT2_ROOT_INO || fsd_read_inode(fs, ino, &b) ||
		    !b.l.i_mode)
			continue;
		if (fsd_get_map(c, fs, ino, &b, &m) == 0)
			mark_map(c, &m, ino == EXT2_JOURNAL_INO ? CAT_JOURNAL :
				 CAT_META);
		fsd_map_free(&m);
	}
}

/* Blocks of inodes whose inode-table block the guest wrote. */
void fsd_mark_changed_inodes(struct ctx *c)
{
	ext2_filsys fs = c->m.fs;
	uint32_t ipg = fs->super->s_inodes_per_group;
	unsigned per_block = c->bs / c->isz;

	for (dgrp_t g = 0; g < fs->group_desc_count; g++) {
		uint64_t t = ext2fs_inode_table_loc(fs, g);
		uint64_t nb = ((uint64_t)ipg * c->isz + c->bs - 1) / c->bs;

		for (size_t i = cb_at(c, t); i < c->ncb && c->cb[i].start < t + nb; i++) {
			uint64_t s = c->cb[i].start > t ? c->cb[i].start : t;
			uint64_t e = c->cb[i].start + c->cb[i].len;

			if (e > t + nb)
				e = t + nb;
			for (uint64_t blk = s; blk < e; blk++) {
				for (unsigned k = 0; k < per_block; k++) {
					uint64_t idx = (blk - t) * per_block + k;
					ext2_ino_t ino = (ext2_ino_t)(g * (uint64_t)ipg + idx + 1);
					union inode_buf b;
					struct fmap m;

					if (idx >= ipg || fsd_read_inode(fs, ino, &b) ||
					    !fsd_inode_in_use(fs, ino, &b))
						continue;
					if (fsd_get_map(c, fs, ino, &b, &m) == 0)
						mark_map(c, &m, LINUX_S_ISDIR(b.l.i_mode) ?
							 CAT_DIR : CAT_FILE);
					fsd_map_free(&m);
				}
			}
		}
	}
}

/*
 * Blocks written by the guest that no changed inode, no metadata and no
 * free space explains: find their owners with an inode scan and have
 * them compared even though their inode did not change.
 */
void fsd_find_owners(struct ctx *c)
{
	ext2_filsys fs = c->m.fs;
	ext2_inode_scan scan;
	ext2_ino_t ino;
	union inode_buf b;

	if (ext2fs_open_inode_scan(fs, 0, &scan))
		return;
	while (!c->stop && ext2fs_get_next_inode_full(scan, &ino, EXT2_INODE(&b.l),
						      (int)(c->isz < sizeof(b) ? c->isz :
							    sizeof(b))) == 0 && ino) {
		struct fmap m;
		bool hit = false;

		if (!fsd_inode_in_use(fs, ino, &b) || ino < EXT2_FIRST_INO(fs->super))
			continue;
		if (fsd_get_map(c, fs, ino, &b, &m))
			continue;
		for (size_t i = 0; i < m.n && !hit; i++)
			hit = fsd_in_changed(c, m.v[i].pblk, m.v[i].len);
		for (size_t i = 0; i < m.nmeta && !hit; i++)
			hit = fsd_in_changed(c, m.meta[i].start, 1);
		/* Its blocks explain some that nothing else did. */
		if (hit && mark_map(c, &m, LINUX_S_ISDIR(b.l.i_mode) ? CAT_DIR :
				    CAT_FILE))
			fsd_iset_add(c, &c->force, ino);
		fsd_map_free(&m);
		if (!c->unexplained)
			break;
	}
	ext2fs_close_inode_scan(scan);
}

void fsd_mark_free(struct ctx *c)
{
	ext2_filsys fs = c->m.fs;

	if (!fs->block_map)
		return;
	for (size_t i = 0; i < c->ncb; i++)
		for (uint64_t b = c->cb[i].start; b < c->cb[i].start + c->cb[i].len; b++)
			/* The bitmap starts at the first data block (1 with
			 * 1 KiB blocks); what is before it is metadata. */
			if (b >= ext2fs_blocks_count(fs->super) ||
			    (b >= fs->super->s_first_data_block &&
			     !ext2fs_test_block_bitmap2(fs->block_map, b)))
				mark(c, b, 1, CAT_FREE);
}

int fsd_mode_type(uint16_t mode)
{
	switch (mode & LINUX_S_IFMT) {
	case LINUX_S_IFREG: return EXT2_FT_REG_FILE;
	case LINUX_S_IFDIR: return EXT2_FT_DIR;
	case LINUX_S_IFCHR: return EXT2_FT_CHRDEV;
	case LINUX_S_IFBLK: return EXT2_FT_BLKDEV;
	case LINUX_S_IFIFO: return EXT2_FT_FIFO;
	case LINUX_S_IFSOCK: return EXT2_FT_SOCK;
	case LINUX_S_IFLNK: return EXT2_FT_SYMLINK;
	default: return EXT2_FT_UNKNOWN;
	}
}

/* Inode tables, inode size and groups equal: K and M index alike. */
bool fsd_same_geometry(ext2_filsys a, ext2_filsys b)
{
	if (a->group_desc_count != b->group_desc_count ||
	    a->super->s_inodes_per_group != b->super->s_inodes_per_group ||
	    EXT2_INODE_SIZE(a->super) != EXT2_INODE_SIZE(b->super) ||
	    a->blocksize != b->blocksize)
		return false;
	for (dgrp_t g = 0; g < a->group_desc_count; g++)
		if (ext2fs_inode_table_loc(a, g) != ext2fs_inode_table_loc(b, g))
			return false;
	return true;
}

