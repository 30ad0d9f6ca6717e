/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * files.c - --files: which files and directories of an ext2/3/4 filesystem
 * the guest added, changed or deleted.
 *
 * Two views of the filesystem are opened read-only through the pair I/O
 * manager: the backing file alone ("before", K) and the merged view of the
 * pair ("after", M); nothing is written anywhere.  The COW's runs of
 * sectors give the set C of filesystem blocks the guest wrote.  Every other
 * block reads the same in both views, which bounds the work:
 *
 *  - an inode whose inode-table block is not in C is the same in K and M;
 *    one whose block is in C is read from both and compared field by field;
 *  - a directory whose inode and blocks are outside C has the same entries
 *    in both, so it is read once; other directories are read from both and
 *    their entries merged by name;
 *  - file content is compared through both block maps, reading only blocks
 *    in C or blocks that moved.
 *
 * Every block of C is then accounted for (filesystem metadata, journal,
 * free space, blocks of inodes whose inode changed); if some are left, an
 * inode scan of M finds their owners, whose content is compared even
 * though their inode did not change.
 *
 * Entries present on one side only are "orphans".  A directory orphan whose
 * inode still lives (same generation) on the other side was moved: it is
 * matched with its new place (a rename) and the two are walked together.
 * Other directory orphans are expanded: everything in a deleted directory
 * is deleted, everything in a new one is added, unless found again
 * elsewhere (same inode and generation: renamed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <et/com_err.h>

#include "extfs.h"
#include "imgstat.h"
#include "pairio.h"
#include "probe.h"

/* What changed in a file (the "fields" of a change). */
enum {
	F_CONTENT = 1 << 0,
	F_SIZE = 1 << 1,
	F_MODE = 1 << 2,
	F_OWNER = 1 << 3,
	F_MTIME = 1 << 4,
	F_CTIME = 1 << 5,
	F_LINKS = 1 << 6,
	F_FLAGS = 1 << 7,
	F_XATTR = 1 << 8,
	F_TYPE = 1 << 9,
	F_REPLACED = 1 << 10,      /* another inode under the same name */
};

static const char *const field_names[] = {
	"content", "size", "mode", "owner", "mtime", "ctime", "links", "flags",
	"xattr", "type", "replaced",
};

enum change_kind { CH_ADDED, CH_DELETED, CH_MODIFIED, CH_RENAMED };
static const char *const kind_names[] = { "added", "deleted", "modified",
					  "renamed" };
static const char kind_letters[] = { 'A', 'D', 'M', 'R' };

/* Categories of the blocks the COW holds. */
enum { CAT_NONE, CAT_META, CAT_JOURNAL, CAT_DIR, CAT_FILE, CAT_FREE,
       CAT__COUNT };
static const char *const cat_keys[] = { "unexplained", "metadata", "journal",
					"directories", "files", "free" };

/* Bytes of file content that may be read to compare, per call. */
#define READ_BUDGET (512ULL << 20)
#define MAX_DEPTH 4096

struct change {
	int kind;
	char *path, *from;
	int type;                  /* EXT2_FT_* */
	ext2_ino_t ino;
	uint64_t size, size_before;
	unsigned fields;
	uint64_t changed_blocks;
};

struct ent {
	char *name;
	ext2_ino_t ino;
	int type;
};

struct entlist {
	struct ent *v;
	size_t n, cap;
};

struct orphan {
	char *path;
	ext2_ino_t ino;
	int type;
	bool done;                 /* expanded, matched or final */
	bool matched;
};

struct orphans {
	struct orphan *v;
	size_t n, cap;
};

/* A set of inode numbers (open addressing). */
struct iset {
	uint32_t *v;
	size_t cap, n;
};

/* A piece of a file's block map. */
struct fext {
	uint64_t lblk, pblk, len;
	bool uninit;
};

struct fmap {
	struct fext *v;
	size_t n, cap;
	struct extent *meta;       /* tree, indirect and xattr blocks */
	size_t nmeta, capmeta;
};

struct ctx {
	struct img *im;
	struct extfs k, m;         /* before (backing) and after (merged) */
	bool have_k, same_fs, same_geo;
	unsigned bs, isz;
	uint64_t off;              /* byte offset of the filesystem */
	struct extent *cb;         /* changed blocks, sorted, merged */
	size_t ncb;
	uint64_t *cbidx;           /* index of cb[i]'s first block in cat */
	uint64_t ncblocks;
	uint8_t *cat;
	uint64_t unexplained;      /* blocks of cat still CAT_NONE */
	struct iset force;         /* compare even if the inode did not change */
	struct iset walked;        /* directories of M walked (loop guard) */
	struct iset expanded_k, expanded_m; /* orphan directories expanded */
	struct change *ch;
	size_t nch, capch;
	struct orphans del, add;
	uint64_t budget;
	int depth;
	errcode_t err;
	char errwhere[512];
	uint8_t *buf_k, *buf_m;    /* 256 blocks each, for comparing */
};

/* --- small containers ------------------------------------------------ */

static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return v;
	ncap = *cap ? *cap * 2 : 16;
	nv = realloc(v, ncap * size);
	if (!nv) {
		fprintf(stderr, "uml_imgstat: out of memory\n");
		exit(2);
	}
	*cap = ncap;
	return nv;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d) {
		fprintf(stderr, "uml_imgstat: out of memory\n");
		exit(2);
	}
	return d;
}

static char *join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = malloc(a + b + 2);

	if (!p) {
		fprintf(stderr, "uml_imgstat: out of memory\n");
		exit(2);
	}
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

static void iset_add(struct iset *s, uint32_t k)
{
	size_t i;

	if ((s->n + 1) * 2 > s->cap) {
		struct iset ns = { .cap = s->cap ? s->cap * 2 : 64 };

		ns.v = calloc(ns.cap, sizeof(*ns.v));
		if (!ns.v) {
			fprintf(stderr, "uml_imgstat: out of memory\n");
			exit(2);
		}
		for (size_t j = 0; j < s->cap; j++)
			if (s->v[j])
				iset_add(&ns, s->v[j]);
		free(s->v);
		*s = ns;
	}
	for (i = iset_slot(s, k); s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == k)
			return;
	s->v[i] = k;
	s->n++;
}

static bool iset_has(const struct iset *s, uint32_t k)
{
	if (!s->cap)
		return false;
	for (size_t i = iset_slot(s, k); s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == k)
			return true;
	return false;
}

/* --- the blocks the COW holds ---------------------------------------- */

static int build_changed_blocks(struct ctx *c)
{
	uint64_t ss = c->im->hdr.sectorsize, pos = 0, total = 0;
	uint64_t fs_bytes = ext2fs_blocks_count(c->m.fs->super) * c->bs;
	struct extent r;
	size_t cap = 0;

	while (img_next_cow_run(c->im, &pos, &r)) {
		uint64_t s = r.start * ss, e = (r.start + r.len) * ss, b0, b1;

		if (e <= c->off || s >= c->off + fs_bytes)
			continue;
		s = s > c->off ? s - c->off : 0;
		e = e - c->off > fs_bytes ? fs_bytes : e - c->off;
		b0 = s / c->bs;
		b1 = (e + c->bs - 1) / c->bs;
		if (c->ncb && c->cb[c->ncb - 1].start + c->cb[c->ncb - 1].len >= b0) {
			struct extent *l = &c->cb[c->ncb - 1];

			if (b1 > l->start + l->len)
				l->len = b1 - l->start;
			continue;
		}
		c->cb = grow(c->cb, &cap, c->ncb, sizeof(*c->cb));
		c->cb[c->ncb].start = b0;
		c->cb[c->ncb].len = b1 - b0;
		c->ncb++;
	}
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
static bool in_changed(const struct ctx *c, uint64_t b, uint64_t n)
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

union inode_buf {
	struct ext2_inode_large l;
	uint8_t raw[1024];
};

static errcode_t read_inode(ext2_filsys fs, ext2_ino_t ino, union inode_buf *b)
{
	memset(b, 0, sizeof(*b));
	return ext2fs_read_inode_full(fs, ino, EXT2_INODE(&b->l),
				      (int)(EXT2_INODE_SIZE(fs->super) <
					    sizeof(*b) ? EXT2_INODE_SIZE(fs->super) :
					    sizeof(*b)));
}

static bool inode_in_use(ext2_filsys fs, ext2_ino_t ino, const union inode_buf *b)
{
	if (ino < 1 || ino > fs->super->s_inodes_count)
		return false;
	if (fs->inode_map && !ext2fs_test_inode_bitmap2(fs->inode_map, ino))
		return false;
	return b->l.i_links_count > 0 && b->l.i_dtime == 0 && b->l.i_mode != 0;
}

/* The block of the inode table holding ino. */
static uint64_t itable_block(ext2_filsys fs, ext2_ino_t ino)
{
	uint32_t ipg = fs->super->s_inodes_per_group;
	dgrp_t g = (dgrp_t)((ino - 1) / ipg);
	uint64_t idx = (ino - 1) % ipg;

	return ext2fs_inode_table_loc(fs, g) +
	       idx * EXT2_INODE_SIZE(fs->super) / fs->blocksize;
}

/* May the inode differ between K and M? */
static bool inode_maybe_changed(const struct ctx *c, ext2_ino_t ino)
{
	if (!c->same_geo)
		return true;
	return in_changed(c, itable_block(c->m.fs, ino), 1) ||
	       iset_has(&c->force, ino);
}

static void map_free(struct fmap *m)
{
	free(m->v);
	free(m->meta);
	memset(m, 0, sizeof(*m));
}

static void map_add(struct fmap *m, uint64_t l, uint64_t p, uint64_t n,
		    bool uninit)
{
	if (m->n) {
		struct fext *x = &m->v[m->n - 1];

		if (x->lblk + x->len == l && x->pblk + x->len == p &&
		    x->uninit == uninit) {
			x->len += n;
			return;
		}
	}
	m->v = grow(m->v, &m->cap, m->n, sizeof(*m->v));
	m->v[m->n++] = (struct fext){ l, p, n, uninit };
}

static void map_meta(struct fmap *m, uint64_t p)
{
	m->meta = grow(m->meta, &m->capmeta, m->nmeta, sizeof(*m->meta));
	m->meta[m->nmeta++] = (struct extent){ p, 1 };
}

static int block_cb(ext2_filsys fs, blk64_t *blocknr, e2_blkcnt_t blockcnt,
		    blk64_t ref_blk, int ref_offset, void *priv)
{
	struct fmap *m = priv;

	(void)fs, (void)ref_blk, (void)ref_offset;
	if (blockcnt < 0)
		map_meta(m, *blocknr);
	else
		map_add(m, (uint64_t)blockcnt, *blocknr, 1, false);
	return 0;
}

/* The block map of an inode: data extents and metadata blocks. */
static errcode_t get_map(ext2_filsys fs, ext2_ino_t ino, union inode_buf *b,
			 struct fmap *m)
{
	struct ext2_inode *inode = EXT2_INODE(&b->l);
	blk64_t acl = ext2fs_file_acl_block(fs, inode);
	errcode_t ret = 0;

	memset(m, 0, sizeof(*m));
	if (acl)
		map_meta(m, acl);
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
			if (!(e.e_flags & EXT2_EXTENT_FLAGS_LEAF)) {
				map_meta(m, e.e_pblk);
				continue;
			}
			if (e.e_len)
				map_add(m, e.e_lblk, e.e_pblk, e.e_len,
					e.e_flags & EXT2_EXTENT_FLAGS_UNINIT);
		}
		ext2fs_extent_free(h);
		if (ret == EXT2_ET_EXTENT_NO_NEXT || ret == EXT2_ET_EXTENT_NO_DOWN)
			ret = 0;
		return ret;
	}
	return ext2fs_block_iterate3(fs, ino, BLOCK_FLAG_READ_ONLY, NULL,
				     block_cb, m);
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
	if (pk == pm && !in_changed(c, pk, n))
		return 0;
	while (n) {
		uint64_t chunk = n > 256 ? 256 : n;

		if (pk == pm && !in_changed(c, pk, chunk))
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
	if (bk == bm && !in_changed(c, bk, 1))
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
static unsigned inode_diff(struct ctx *c, ext2_ino_t kino, ext2_ino_t mino,
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

		if (get_map(c->k.fs, kino, a, &mk) == 0 &&
		    get_map(c->m.fs, mino, b, &mm) == 0)
			*blocks = compare_maps(c, &mk, EXT2_I_SIZE(ia), &mm,
					       EXT2_I_SIZE(ib), &differ);
		else
			*blocks = differ = 1;
		map_free(&mk);
		map_free(&mm);
		if (differ)
			f |= F_CONTENT;
	}
	return f;
}

/* --- recording ------------------------------------------------------ */

static int mode_type(uint16_t mode)
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

static const char *type_name(int t)
{
	switch (t) {
	case EXT2_FT_REG_FILE: return "file";
	case EXT2_FT_DIR: return "dir";
	case EXT2_FT_CHRDEV: return "char";
	case EXT2_FT_BLKDEV: return "block";
	case EXT2_FT_FIFO: return "fifo";
	case EXT2_FT_SOCK: return "socket";
	case EXT2_FT_SYMLINK: return "symlink";
	default: return "unknown";
	}
}

static struct change *record(struct ctx *c, int kind, const char *path,
			     const char *from, int type, ext2_ino_t ino)
{
	struct change *x;

	c->ch = grow(c->ch, &c->capch, c->nch, sizeof(*c->ch));
	x = &c->ch[c->nch++];
	memset(x, 0, sizeof(*x));
	x->kind = kind;
	x->path = xstrdup(path);
	x->from = from ? xstrdup(from) : NULL;
	x->type = type;
	x->ino = ino;
	return x;
}

static void orphan_add(struct orphans *o, const char *path, ext2_ino_t ino,
		       int type)
{
	o->v = grow(o->v, &o->cap, o->n, sizeof(*o->v));
	o->v[o->n++] = (struct orphan){ xstrdup(path), ino, type, false, false };
}

/* --- directories ---------------------------------------------------- */

struct dirit {
	struct entlist *l;
	ext2_filsys fs;
};

static int dir_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *d,
		  int offset, int blocksize, char *buf, void *priv)
{
	struct dirit *it = priv;
	int len = ext2fs_dirent_name_len(d);
	struct ent *e;

	(void)dir, (void)offset, (void)blocksize, (void)buf;
	if (entry == DIRENT_DOT_FILE || entry == DIRENT_DOT_DOT_FILE || !d->inode)
		return 0;
	if ((len == 1 && d->name[0] == '.') ||
	    (len == 2 && d->name[0] == '.' && d->name[1] == '.'))
		return 0;
	it->l->v = grow(it->l->v, &it->l->cap, it->l->n, sizeof(*it->l->v));
	e = &it->l->v[it->l->n++];
	e->name = malloc((size_t)len + 1);
	if (!e->name) {
		fprintf(stderr, "uml_imgstat: out of memory\n");
		exit(2);
	}
	memcpy(e->name, d->name, (size_t)len);
	e->name[len] = 0;
	e->ino = d->inode;
	e->type = ext2fs_has_feature_filetype(it->fs->super) ?
		  ext2fs_dirent_file_type(d) : EXT2_FT_UNKNOWN;
	if (e->type == EXT2_FT_UNKNOWN) {
		union inode_buf b;

		if (read_inode(it->fs, e->ino, &b) == 0)
			e->type = mode_type(b.l.i_mode);
	}
	return 0;
}

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name);
}

static void entlist_free(struct entlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static errcode_t read_dir(struct ctx *c, ext2_filsys fs, ext2_ino_t dir,
			  const char *path, struct entlist *l)
{
	struct dirit it = { l, fs };
	union inode_buf b;
	errcode_t ret;
	int flags = 0;

	memset(l, 0, sizeof(*l));
	/* The flag is for inline directories only: others fail with it. */
	ret = read_inode(fs, dir, &b);
	if (!ret && (b.l.i_flags & EXT4_INLINE_DATA_FL))
		flags = DIRENT_FLAG_INCLUDE_INLINE_DATA;
	if (!ret)
		ret = ext2fs_dir_iterate2(fs, dir, flags, NULL, dir_cb, &it);
	if (ret && !c->err) {
		c->err = ret;
		snprintf(c->errwhere, sizeof(c->errwhere), "reading directory %s "
			 "(inode %u) %s", path, dir, fs == c->k.fs ?
			 "in the backing file" : "in the merged view");
	}
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), ent_cmp);
	return ret;
}

/* Has the directory (same inode in K and M) possibly other entries? */
static bool dir_changed(struct ctx *c, ext2_ino_t ino)
{
	union inode_buf a, b;
	struct fmap m;
	bool changed = false;

	if (!inode_maybe_changed(c, ino))
		return false;
	if (iset_has(&c->force, ino))
		return true;
	if (read_inode(c->k.fs, ino, &a) || read_inode(c->m.fs, ino, &b))
		return true;
	if (memcmp(a.raw, b.raw, c->isz))
		return true;
	/* Same inode: the same blocks, unless one of them was written. */
	if (get_map(c->m.fs, ino, &b, &m))
		return true;
	for (size_t i = 0; i < m.n && !changed; i++)
		changed = in_changed(c, m.v[i].pblk, m.v[i].len);
	for (size_t i = 0; i < m.nmeta && !changed; i++)
		changed = in_changed(c, m.meta[i].start, 1);
	map_free(&m);
	return changed;
}

static void walk(struct ctx *c, const char *kpath, const char *mpath,
		 ext2_ino_t kino, ext2_ino_t mino);

/* Does inode ino live on the other side with the same generation? */
static bool lives_on(struct ctx *c, ext2_filsys other, ext2_filsys self,
		     ext2_ino_t ino, int type)
{
	union inode_buf a, b;

	if (!c->same_fs || read_inode(self, ino, &a) || read_inode(other, ino, &b))
		return false;
	return inode_in_use(other, ino, &b) &&
	       a.l.i_generation == b.l.i_generation &&
	       mode_type(b.l.i_mode) == type;
}

/* An entry with the same name and inode number in K and M. */
static void same_entry(struct ctx *c, const char *kpath, const char *mpath,
		       ext2_ino_t ino, int type)
{
	if (inode_maybe_changed(c, ino)) {
		union inode_buf a, b;
		uint64_t blocks;
		unsigned f;

		if (read_inode(c->k.fs, ino, &a) || read_inode(c->m.fs, ino, &b))
			return;
		if (a.l.i_generation != b.l.i_generation ||
		    !inode_in_use(c->k.fs, ino, &a) ||
		    (a.l.i_mode & LINUX_S_IFMT) != (b.l.i_mode & LINUX_S_IFMT)) {
			/* Another file under the same inode number. */
			orphan_add(&c->del, kpath, ino, mode_type(a.l.i_mode));
			orphan_add(&c->add, mpath, ino, type);
			return;
		}
		if (type != EXT2_FT_DIR) {
			f = inode_diff(c, ino, ino, &a, &b, &blocks);
			if (f) {
				struct change *x = record(c, CH_MODIFIED, mpath,
							  NULL, type, ino);

				x->fields = f;
				x->changed_blocks = blocks;
				x->size = EXT2_I_SIZE(EXT2_INODE(&b.l));
				x->size_before = EXT2_I_SIZE(EXT2_INODE(&a.l));
			}
		} else {
			/* A directory's entries speak for it: only report
			 * what entries do not explain. */
			f = inode_diff(c, ino, ino, &a, &b, &blocks) &
			    (F_MODE | F_OWNER | F_FLAGS | F_XATTR);
			if (f) {
				struct change *x = record(c, CH_MODIFIED, mpath,
							  NULL, type, ino);

				x->fields = f;
				x->size = EXT2_I_SIZE(EXT2_INODE(&b.l));
				x->size_before = EXT2_I_SIZE(EXT2_INODE(&a.l));
			}
		}
	}
	if (type == EXT2_FT_DIR)
		walk(c, kpath, mpath, ino, ino);
}

/*
 * Walk a directory that is the same directory in K (at kpath, inode kino)
 * and in M (at mpath, inode mino).
 */
static void walk(struct ctx *c, const char *kpath, const char *mpath,
		 ext2_ino_t kino, ext2_ino_t mino)
{
	struct entlist ek, em;
	size_t i = 0, j = 0;

	/* A directory is walked once: a damaged filesystem may loop. */
	if (c->depth >= MAX_DEPTH || iset_has(&c->walked, mino))
		return;
	iset_add(&c->walked, mino);
	c->depth++;
	if (c->same_fs && kino == mino && !dir_changed(c, kino)) {
		read_dir(c, c->m.fs, mino, mpath, &em);
		for (i = 0; i < em.n; i++) {
			char *kp = join(kpath, em.v[i].name);
			char *mp = join(mpath, em.v[i].name);

			same_entry(c, kp, mp, em.v[i].ino, em.v[i].type);
			free(kp);
			free(mp);
		}
		entlist_free(&em);
		c->depth--;
		return;
	}
	read_dir(c, c->k.fs, kino, kpath, &ek);
	read_dir(c, c->m.fs, mino, mpath, &em);
	while (i < ek.n || j < em.n) {
		int cmp = i == ek.n ? 1 : j == em.n ? -1 :
			  strcmp(ek.v[i].name, em.v[j].name);

		if (cmp == 0) {
			char *kp = join(kpath, ek.v[i].name);
			char *mp = join(mpath, em.v[j].name);

			if (ek.v[i].ino == em.v[j].ino && c->same_fs &&
			    ek.v[i].type == em.v[j].type) {
				same_entry(c, kp, mp, em.v[j].ino, em.v[j].type);
			} else {
				orphan_add(&c->del, kp, ek.v[i].ino, ek.v[i].type);
				orphan_add(&c->add, mp, em.v[j].ino, em.v[j].type);
			}
			free(kp);
			free(mp);
			i++;
			j++;
		} else if (cmp < 0) {
			char *kp = join(kpath, ek.v[i].name);

			orphan_add(&c->del, kp, ek.v[i].ino, ek.v[i].type);
			free(kp);
			i++;
		} else {
			char *mp = join(mpath, em.v[j].name);

			orphan_add(&c->add, mp, em.v[j].ino, em.v[j].type);
			free(mp);
			j++;
		}
	}
	entlist_free(&ek);
	entlist_free(&em);
	c->depth--;
}

/* A renamed entry: d (in K) is a (in M). */
static void renamed(struct ctx *c, struct orphan *d, struct orphan *a)
{
	union inode_buf ib_k, ib_m;
	struct change *x = record(c, CH_RENAMED, a->path, d->path, a->type, a->ino);
	uint64_t blocks = 0;
	unsigned f = 0;

	d->matched = a->matched = true;
	d->done = a->done = true;
	if (read_inode(c->k.fs, d->ino, &ib_k) == 0 &&
	    read_inode(c->m.fs, a->ino, &ib_m) == 0) {
		/* Renaming changes the ctime (and a directory's ".."). */
		f = inode_diff(c, d->ino, a->ino, &ib_k, &ib_m, &blocks) &
		    ~(unsigned)F_CTIME;
		if (a->type == EXT2_FT_DIR)
			f &= F_MODE | F_OWNER | F_FLAGS | F_XATTR;
		x->size = EXT2_I_SIZE(EXT2_INODE(&ib_m.l));
		x->size_before = EXT2_I_SIZE(EXT2_INODE(&ib_k.l));
	}
	x->fields = f;
	x->changed_blocks = blocks;
	if (a->type == EXT2_FT_DIR) {
		char *kp = xstrdup(d->path), *mp = xstrdup(a->path);

		walk(c, kp, mp, d->ino, a->ino);
		free(kp);
		free(mp);
	}
}

static int orphan_ino_cmp(const void *a, const void *b)
{
	const struct orphan *x = *(struct orphan *const *)a;
	const struct orphan *y = *(struct orphan *const *)b;

	return x->ino < y->ino ? -1 : x->ino > y->ino ? 1 : strcmp(x->path, y->path);
}

/* Pair deleted and added entries of the same file: renames. */
static bool match_orphans(struct ctx *c)
{
	struct orphan **ds, **as;
	size_t nd = 0, na = 0, i = 0, j = 0;
	bool any = false;

	if (!c->same_fs)
		return false;
	ds = malloc((c->del.n + 1) * sizeof(*ds));
	as = malloc((c->add.n + 1) * sizeof(*as));
	if (!ds || !as) {
		fprintf(stderr, "uml_imgstat: out of memory\n");
		exit(2);
	}
	for (size_t k = 0; k < c->del.n; k++)
		if (!c->del.v[k].matched)
			ds[nd++] = &c->del.v[k];
	for (size_t k = 0; k < c->add.n; k++)
		if (!c->add.v[k].matched)
			as[na++] = &c->add.v[k];
	qsort(ds, nd, sizeof(*ds), orphan_ino_cmp);
	qsort(as, na, sizeof(*as), orphan_ino_cmp);
	/* Pointers into c->del/c->add stay valid: renamed() may append. */
	{
		struct orphan **pairs = malloc((nd + 1) * 2 * sizeof(*pairs));
		size_t np = 0;

		if (!pairs) {
			fprintf(stderr, "uml_imgstat: out of memory\n");
			exit(2);
		}
		while (i < nd && j < na) {
			if (ds[i]->ino < as[j]->ino) {
				i++;
			} else if (ds[i]->ino > as[j]->ino) {
				j++;
			} else {
				pairs[np++] = ds[i++];
				pairs[np++] = as[j++];
			}
		}
		free(ds);
		free(as);
		/* Indices, since renamed() may grow (move) the arrays. */
		for (size_t k = 0; k < np; k += 2) {
			size_t di = (size_t)(pairs[k] - c->del.v);
			size_t ai = (size_t)(pairs[k + 1] - c->add.v);

			pairs[k] = (struct orphan *)(uintptr_t)di;
			pairs[k + 1] = (struct orphan *)(uintptr_t)ai;
		}
		for (size_t k = 0; k < np; k += 2) {
			size_t di = (size_t)(uintptr_t)pairs[k];
			size_t ai = (size_t)(uintptr_t)pairs[k + 1];
			union inode_buf a, b;

			if (c->del.v[di].type != c->add.v[ai].type ||
			    read_inode(c->k.fs, c->del.v[di].ino, &a) ||
			    read_inode(c->m.fs, c->add.v[ai].ino, &b) ||
			    a.l.i_generation != b.l.i_generation ||
			    !inode_in_use(c->k.fs, c->del.v[di].ino, &a) ||
			    !inode_in_use(c->m.fs, c->add.v[ai].ino, &b))
				continue;
			renamed(c, &c->del.v[di], &c->add.v[ai]);
			any = true;
		}
		free(pairs);
	}
	return any;
}

/* Expand directories that were really deleted or created. */
static bool expand_orphans(struct ctx *c, struct orphans *o, bool deleted)
{
	ext2_filsys self = deleted ? c->k.fs : c->m.fs;
	ext2_filsys other = deleted ? c->m.fs : c->k.fs;
	size_t n = o->n;
	bool any = false;

	for (size_t i = 0; i < n; i++) {
		struct entlist l;
		char *path;
		ext2_ino_t ino;

		if (o->v[i].done || o->v[i].matched)
			continue;
		if (o->v[i].type != EXT2_FT_DIR) {
			o->v[i].done = true;
			continue;
		}
		/* Moved, not gone: wait for its new place to show up. */
		if (lives_on(c, other, self, o->v[i].ino, EXT2_FT_DIR))
			continue;
		o->v[i].done = true;
		ino = o->v[i].ino;
		if (iset_has(deleted ? &c->expanded_k : &c->expanded_m, ino))
			continue;
		iset_add(deleted ? &c->expanded_k : &c->expanded_m, ino);
		any = true;
		path = xstrdup(o->v[i].path);
		if (read_dir(c, self, ino, path, &l) == 0) {
			for (size_t k = 0; k < l.n; k++) {
				char *p = join(path, l.v[k].name);

				orphan_add(o, p, l.v[k].ino, l.v[k].type);
				free(p);
			}
		}
		entlist_free(&l);
		free(path);
	}
	return any;
}

static int orphan_path_cmp(const void *a, const void *b)
{
	const struct orphan *x = *(struct orphan *const *)a;
	const struct orphan *y = *(struct orphan *const *)b;

	return strcmp(x->path, y->path);
}

/*
 * A name deleted and added again with another inode (a file rewritten by
 * "write a copy, rename it over"): one modification, "replaced".
 */
static void match_replaced(struct ctx *c)
{
	struct orphan **as = malloc((c->add.n + 1) * sizeof(*as));
	size_t na = 0;

	if (!as) {
		fprintf(stderr, "uml_imgstat: out of memory\n");
		exit(2);
	}
	for (size_t k = 0; k < c->add.n; k++)
		if (!c->add.v[k].matched)
			as[na++] = &c->add.v[k];
	qsort(as, na, sizeof(*as), orphan_path_cmp);
	for (size_t k = 0; k < c->del.n; k++) {
		struct orphan *d = &c->del.v[k], key = { .path = d->path }, *kp = &key;
		struct orphan **hit;
		union inode_buf ib_k, ib_m;
		struct change *x;
		uint64_t blocks = 0;
		unsigned f = F_REPLACED;

		if (d->matched)
			continue;
		hit = bsearch(&kp, as, na, sizeof(*as), orphan_path_cmp);
		if (!hit || (*hit)->matched || (*hit)->type != d->type)
			continue;
		d->matched = (*hit)->matched = true;
		x = record(c, CH_MODIFIED, d->path, NULL, d->type, (*hit)->ino);
		if (read_inode(c->k.fs, d->ino, &ib_k) == 0 &&
		    read_inode(c->m.fs, (*hit)->ino, &ib_m) == 0) {
			f |= inode_diff(c, d->ino, (*hit)->ino, &ib_k, &ib_m, &blocks);
			if (d->type == EXT2_FT_DIR)
				f &= F_MODE | F_OWNER | F_FLAGS | F_XATTR | F_REPLACED;
			x->size = EXT2_I_SIZE(EXT2_INODE(&ib_m.l));
			x->size_before = EXT2_I_SIZE(EXT2_INODE(&ib_k.l));
		}
		x->fields = f;
		x->changed_blocks = d->type == EXT2_FT_DIR ? 0 : blocks;
	}
	free(as);
}

static void settle_orphans(struct ctx *c)
{
	for (int round = 0; round < 1000000; round++) {
		bool any = match_orphans(c);

		any |= expand_orphans(c, &c->del, true);
		any |= expand_orphans(c, &c->add, false);
		if (!any)
			break;
	}
	if (c->same_fs)
		match_replaced(c);
	for (size_t i = 0; i < c->del.n; i++) {
		struct orphan *d = &c->del.v[i];
		union inode_buf b;
		struct change *x;

		if (d->matched)
			continue;
		x = record(c, CH_DELETED, d->path, NULL, d->type, d->ino);
		if (read_inode(c->k.fs, d->ino, &b) == 0)
			x->size_before = x->size = EXT2_I_SIZE(EXT2_INODE(&b.l));
	}
	for (size_t i = 0; i < c->add.n; i++) {
		struct orphan *a = &c->add.v[i];
		union inode_buf b;
		struct change *x;

		if (a->matched)
			continue;
		x = record(c, CH_ADDED, a->path, NULL, a->type, a->ino);
		if (read_inode(c->m.fs, a->ino, &b) == 0)
			x->size = EXT2_I_SIZE(EXT2_INODE(&b.l));
	}
}

/* --- accounting for the changed blocks --------------------------------- */

static void mark_metadata(struct ctx *c)
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
static void mark_reserved_inodes(struct ctx *c)
{
	ext2_filsys fs = c->m.fs;

	for (ext2_ino_t ino = 1; ino < EXT2_FIRST_INO(fs->super); ino++) {
		union inode_buf b;
		struct fmap m;

		if (ino == EXT2_ROOT_INO || read_inode(fs, ino, &b) ||
		    !b.l.i_mode)
			continue;
		if (get_map(fs, ino, &b, &m) == 0)
			mark_map(c, &m, ino == EXT2_JOURNAL_INO ? CAT_JOURNAL :
				 CAT_META);
		map_free(&m);
	}
}

/* Blocks of inodes whose inode-table block the guest wrote. */
static void mark_changed_inodes(struct ctx *c)
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

					if (idx >= ipg || read_inode(fs, ino, &b) ||
					    !inode_in_use(fs, ino, &b))
						continue;
					if (get_map(fs, ino, &b, &m) == 0)
						mark_map(c, &m, LINUX_S_ISDIR(b.l.i_mode) ?
							 CAT_DIR : CAT_FILE);
					map_free(&m);
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
static void find_owners(struct ctx *c)
{
	ext2_filsys fs = c->m.fs;
	ext2_inode_scan scan;
	ext2_ino_t ino;
	union inode_buf b;

	if (ext2fs_open_inode_scan(fs, 0, &scan))
		return;
	while (ext2fs_get_next_inode_full(scan, &ino, EXT2_INODE(&b.l),
					  (int)(c->isz < sizeof(b) ? c->isz :
						sizeof(b))) == 0 && ino) {
		struct fmap m;
		bool hit = false;

		if (!inode_in_use(fs, ino, &b) || ino < EXT2_FIRST_INO(fs->super))
			continue;
		if (get_map(fs, ino, &b, &m))
			continue;
		for (size_t i = 0; i < m.n && !hit; i++)
			hit = in_changed(c, m.v[i].pblk, m.v[i].len);
		for (size_t i = 0; i < m.nmeta && !hit; i++)
			hit = in_changed(c, m.meta[i].start, 1);
		/* Its blocks explain some that nothing else did. */
		if (hit && mark_map(c, &m, LINUX_S_ISDIR(b.l.i_mode) ? CAT_DIR :
				    CAT_FILE))
			iset_add(&c->force, ino);
		map_free(&m);
		if (!c->unexplained)
			break;
	}
	ext2fs_close_inode_scan(scan);
}

static void mark_free(struct ctx *c)
{
	ext2_filsys fs = c->m.fs;

	if (!fs->block_map)
		return;
	for (size_t i = 0; i < c->ncb; i++)
		for (uint64_t b = c->cb[i].start; b < c->cb[i].start + c->cb[i].len; b++)
			if (b >= ext2fs_blocks_count(fs->super) ||
			    !ext2fs_test_block_bitmap2(fs->block_map, b))
				mark(c, b, 1, CAT_FREE);
}

/* --- output --------------------------------------------------------- */

static int change_cmp(const void *a, const void *b)
{
	const struct change *x = a, *y = b;
	int r = strcmp(x->path, y->path);

	return r ? r : x->kind - y->kind;
}

static void fields_text(unsigned f, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = 0;
	for (size_t i = 0; i < sizeof(field_names) / sizeof(field_names[0]); i++)
		if (f & (1U << i))
			used += (size_t)snprintf(buf + used, used < len ? len - used : 0,
						 "%s%s", used ? "," : "", field_names[i]);
}

static void write_changes(struct out *o, struct ctx *c)
{
	uint64_t counts[4] = { 0 }, cats[CAT__COUNT] = { 0 };

	if (c->nch > 1)
		qsort(c->ch, c->nch, sizeof(*c->ch), change_cmp);
	for (size_t i = 0; i < c->nch; i++)
		counts[c->ch[i].kind]++;
	for (uint64_t i = 0; i < c->ncblocks; i++)
		cats[c->cat[i]]++;
	out_arr(o, "changes", NULL);
	for (size_t i = 0; i < c->nch; i++) {
		const struct change *x = &c->ch[i];
		char fl[256];

		fields_text(x->fields, fl, sizeof(fl));
		if (o->json) {
			out_obj(o, NULL, NULL);
			out_str(o, "change", NULL, kind_names[x->kind]);
			out_str(o, "path", NULL, x->path);
			if (x->kind == CH_RENAMED)
				out_str(o, "from", NULL, x->from);
			out_str(o, "type", NULL, type_name(x->type));
			out_u64(o, "ino", NULL, x->ino);
			out_u64(o, "size", NULL, x->size);
			if (x->kind == CH_MODIFIED || x->kind == CH_RENAMED) {
				out_u64(o, "size_before", NULL, x->size_before);
				out_arr(o, "fields", NULL);
				for (size_t k = 0; k < sizeof(field_names) /
				     sizeof(field_names[0]); k++)
					if (x->fields & (1U << k))
						out_str(o, NULL, NULL, field_names[k]);
				out_arr_end(o);
				out_u64(o, "changed_blocks", NULL, x->changed_blocks);
			}
			out_obj_end(o);
			continue;
		}
		fprintf(o->f, "  %c ", kind_letters[x->kind]);
		if (x->kind == CH_RENAMED) {
			print_name(o->f, x->from);
			fputs(x->type == EXT2_FT_DIR ? "/ -> " : " -> ", o->f);
		}
		print_name(o->f, x->path);
		if (x->type == EXT2_FT_DIR)
			fputc('/', o->f);
		if (x->kind == CH_MODIFIED || (x->kind == CH_RENAMED && x->fields)) {
			fprintf(o->f, "  (%s", fl);
			if (x->fields & F_SIZE)
				fprintf(o->f, "; size %" PRIu64 " -> %" PRIu64,
					x->size_before, x->size);
			if (x->changed_blocks)
				fprintf(o->f, "; %" PRIu64 " block%s differ%s",
					x->changed_blocks,
					x->changed_blocks == 1 ? "" : "s",
					x->changed_blocks == 1 ? "s" : "");
			fputc(')', o->f);
		} else if (x->type != EXT2_FT_DIR &&
			   (x->kind == CH_ADDED || x->kind == CH_DELETED)) {
			fprintf(o->f, "  (%" PRIu64 " bytes)", x->size);
		}
		fputc('\n', o->f);
	}
	out_arr_end(o);
	out_obj(o, "summary", NULL);
	for (int k = 0; k < 4; k++)
		out_u64(o, kind_names[k], NULL, counts[k]);
	out_obj_end(o);
	out_obj(o, "cow_blocks", NULL);
	out_u64(o, "total", NULL, c->ncblocks);
	for (int k = 0; k < CAT__COUNT; k++)
		out_u64(o, cat_keys[k], NULL, cats[k]);
	out_obj_end(o);
	out_line(o, "%" PRIu64 " added, %" PRIu64 " deleted, %" PRIu64
		 " modified, %" PRIu64 " renamed", counts[CH_ADDED],
		 counts[CH_DELETED], counts[CH_MODIFIED], counts[CH_RENAMED]);
	out_line(o, "filesystem blocks in the COW: %" PRIu64 " (files %" PRIu64
		 ", directories %" PRIu64 ", metadata %" PRIu64 ", journal %"
		 PRIu64 ", free now %" PRIu64 ", unexplained %" PRIu64 ")",
		 c->ncblocks, cats[CAT_FILE], cats[CAT_DIR], cats[CAT_META],
		 cats[CAT_JOURNAL], cats[CAT_FREE], cats[CAT_NONE]);
}

static void ctx_free(struct ctx *c)
{
	for (size_t i = 0; i < c->nch; i++) {
		free(c->ch[i].path);
		free(c->ch[i].from);
	}
	for (size_t i = 0; i < c->del.n; i++)
		free(c->del.v[i].path);
	for (size_t i = 0; i < c->add.n; i++)
		free(c->add.v[i].path);
	free(c->ch);
	free(c->del.v);
	free(c->add.v);
	free(c->cb);
	free(c->cbidx);
	free(c->cat);
	free(c->force.v);
	free(c->walked.v);
	free(c->expanded_k.v);
	free(c->expanded_m.v);
	free(c->buf_k);
	free(c->buf_m);
	if (c->have_k)
		extfs_close(&c->k);
	if (c->m.fs)
		extfs_close(&c->m);
}

/* Inode tables, inode size and groups equal: K and M index alike. */
static bool same_geometry(ext2_filsys a, ext2_filsys b)
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

int mode_files(struct out *o, struct img *im, const struct opts *op)
{
	struct probe_result pr;
	struct ctx c;
	long ret;
	int status = ST_OK;

	(void)op;
	if (im->kind != IMG_COW) {
		file_error(o, "%s: not a COW file: --files compares a COW's merged "
			   "view with its backing file", im->path);
		return ST_FAILED;
	}
	if (!img_view_ok(im)) {
		file_error(o, "%s: %s", im->path, !im->hdr_ok ? im->hdr_err.msg :
			   !im->geo_ok ? im->geo_err.msg : im->bfd < 0 ?
			   "the backing file cannot be opened" :
			   "cannot read the bitmap");
		return ST_FAILED;
	}
	ret = probe_find_ext(im, &pr);
	if (ret < 0) {
		file_error(o, "%s: reading the merged view: %s", im->path,
			   strerror((int)-ret));
		return ST_FAILED;
	}
	if (!pr.has_ext) {
		file_error(o, "%s: the merged view holds no ext2/3/4 filesystem "
			   "(%s)", im->path, pr.type[0] ? pr.type : "nothing found");
		return ST_FAILED;
	}
	memset(&c, 0, sizeof(c));
	c.im = im;
	c.off = pr.ext_offset;
	c.budget = READ_BUDGET;
	ret = extfs_open(&c.m, im, PIO_VIEW, c.off);
	if (ret) {
		file_error(o, "%s: opening the filesystem of the merged view: %s",
			   im->path, error_message(ret));
		return ST_FAILED;
	}
	c.have_k = extfs_open(&c.k, im, PIO_BACKING, c.off) == 0;
	c.bs = c.m.fs->blocksize;
	c.isz = EXT2_INODE_SIZE(c.m.fs->super);
	c.same_fs = c.have_k && !memcmp(c.k.fs->super->s_uuid,
					c.m.fs->super->s_uuid, 16);
	c.same_geo = c.same_fs && same_geometry(c.k.fs, c.m.fs);
	c.buf_k = malloc(256 * (size_t)c.bs);
	c.buf_m = malloc(256 * (size_t)c.bs);
	if (!c.buf_k || !c.buf_m || build_changed_blocks(&c) < 0 ||
	    ext2fs_read_bitmaps(c.m.fs) ||
	    (c.have_k && ext2fs_read_inode_bitmap(c.k.fs))) {
		file_error(o, "%s: reading the filesystem's bitmaps failed",
			   im->path);
		ctx_free(&c);
		return ST_FAILED;
	}

	/* Account for the blocks the guest wrote; find data-only changes. */
	mark_metadata(&c);
	mark_reserved_inodes(&c);
	mark_free(&c);
	if (c.same_geo) {
		mark_changed_inodes(&c);
		if (c.unexplained)
			find_owners(&c);
	}

	if (c.same_fs) {
		walk(&c, "/", "/", EXT2_ROOT_INO, EXT2_ROOT_INO);
	} else {
		/* A new filesystem: everything in it is new. */
		if (c.have_k)
			orphan_add(&c.del, "/", EXT2_ROOT_INO, EXT2_FT_DIR);
		orphan_add(&c.add, "/", EXT2_ROOT_INO, EXT2_FT_DIR);
	}
	settle_orphans(&c);
	if (!c.same_fs) {
		/* The roots themselves are not changes. */
		for (size_t i = 0; i < c.nch; i++)
			if (!strcmp(c.ch[i].path, "/"))
				c.ch[i].kind = -1;
		{
			size_t w = 0;

			for (size_t i = 0; i < c.nch; i++) {
				if (c.ch[i].kind < 0) {
					free(c.ch[i].path);
					free(c.ch[i].from);
					continue;
				}
				c.ch[w++] = c.ch[i];
			}
			c.nch = w;
		}
	}

	out_obj(o, "files", NULL);
	out_obj(o, "filesystem", NULL);
	out_str(o, "type", NULL, pr.type);
	out_u64(o, "offset", NULL, c.off);
	out_u64(o, "block_size", NULL, c.bs);
	out_bool(o, "same_filesystem", NULL, c.same_fs);
	out_str(o, "backing_status", NULL, backing_status(im));
	out_bool(o, "needs_recovery", NULL,
		 ext2fs_has_feature_journal_needs_recovery(c.m.fs->super));
	out_obj_end(o);
	if (!o->json) {
		fprintf(o->f, "%s: files the guest changed in the %s filesystem",
			im->path, pr.type);
		if (c.off)
			fprintf(o->f, " at offset %" PRIu64, c.off);
		fputs(" (A added, D deleted, M modified, R renamed)\n", o->f);
		if (!c.have_k)
			fputs("  the backing file holds no such filesystem: "
			      "everything is new\n", o->f);
		else if (!c.same_fs)
			fputs("  the guest made a new filesystem (another UUID): "
			      "everything is new\n", o->f);
		if (strcmp(backing_status(im), "ok"))
			fprintf(o->f, "  warning: the backing file does not match the "
				"header (%s): the comparison may not show what the "
				"guest did\n", backing_status(im));
		if (ext2fs_has_feature_journal_needs_recovery(c.m.fs->super))
			fputs("  warning: the journal needs recovery (the guest "
			      "did not unmount it): changes still in the journal "
			      "are not seen\n", o->f);
	}
	write_changes(o, &c);
	if (c.err) {
		out_str(o, "error", NULL, error_message(c.err));
		file_error(o, "%s: %s: %s", im->path, c.errwhere,
			   error_message(c.err));
		status = ST_FAILED;
	}
	out_obj_end(o);
	ctx_free(&c);
	return status;
}
