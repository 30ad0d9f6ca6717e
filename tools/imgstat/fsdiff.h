/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsdiff.h - the pieces of --files that compare one inode, one block map
 * or one block between the filesystem in the backing file (K, "before")
 * and in the merged view (M, "after"), and account for every filesystem
 * block the COW holds.  files.c walks the trees and reports.
 */
#ifndef IMGSTAT_FSDIFF_H
#define IMGSTAT_FSDIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ext2fs/ext2fs.h>

#include "extfs.h"
#include "grow.h"
#include "img.h"

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

enum change_kind { CH_ADDED, CH_DELETED, CH_MODIFIED, CH_RENAMED };

/* Categories of the blocks the COW holds. */
enum { CAT_NONE, CAT_META, CAT_JOURNAL, CAT_DIR, CAT_FILE, CAT_FREE,
       CAT__COUNT };
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
	bool nomem;                /* an allocation failed while building it */
};

/* How fsd_files() ended (c->stop). */
enum { FSD_OK, FSD_FAILED, FSD_DAMAGED };
/* fsd_files() flags. */
enum { FSD_IGNORE_CSUM = 1 << 0 };

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
	errcode_t err;             /* a directory could not be read */
	char errwhere[512];
	int stop;                  /* FSD_FAILED or FSD_DAMAGED: given up */
	char stopmsg[768];
	uint8_t *buf_k, *buf_m;    /* 256 blocks each, for comparing */
};

union inode_buf {
	struct ext2_inode_large l;
	uint8_t raw[1024];
};


/*
 * The engine of --files: compare the filesystem at byte offset off of the
 * COW im's merged view with the one in its backing file.  It prints
 * nothing and never exits: it returns FSD_OK with c->ch, c->cat and
 * c->err (a directory that could not be read, the rest is still
 * compared) filled, or c->stop with the reason in c->stopmsg.  Call
 * fsd_ctx_free() in every case.
 */
int fsd_files(struct ctx *c, struct img *im, uint64_t off, unsigned flags);
void fsd_ctx_free(struct ctx *c);

/*
 * Give up: the first reason is kept; FSD_DAMAGED messages start with
 * "filesystem damaged: ".  Everything after that returns early.
 */
void fsd_stop(struct ctx *c, int why, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Containers (arrays grow with grow_array, 16 elements first).  These
 * record running out of memory with fsd_stop() and return NULL / false.
 */
#define FSD_GROW_FIRST 16
char *fsd_strdup(struct ctx *c, const char *s);
char *fsd_join(struct ctx *c, const char *dir, const char *name);
bool fsd_iset_add(struct ctx *c, struct iset *s, uint32_t k);
bool fsd_iset_has(const struct iset *s, uint32_t k);
/* Is ino an inode number fs has? */
bool fsd_ino_valid(ext2_filsys fs, ext2_ino_t ino);

/* The filesystem blocks the COW holds: c->cb, c->cat. */
int fsd_changed_blocks(struct ctx *c);
/* Does [b, b + n) hold a block the guest wrote? */
bool fsd_in_changed(const struct ctx *c, uint64_t b, uint64_t n);

/* Inodes and block maps. */
errcode_t fsd_read_inode(ext2_filsys fs, ext2_ino_t ino, union inode_buf *b);
bool fsd_inode_in_use(ext2_filsys fs, ext2_ino_t ino,
		      const union inode_buf *b);
/* May the inode differ between K and M? */
bool fsd_inode_maybe_changed(const struct ctx *c, ext2_ino_t ino);
/* On error m is left empty; running out of memory also stops c. */
errcode_t fsd_get_map(struct ctx *c, ext2_filsys fs, ext2_ino_t ino,
		      union inode_buf *b, struct fmap *m);
void fsd_map_free(struct fmap *m);
int fsd_mode_type(uint16_t mode);
/* Inode tables, inode size, groups and block size equal in both. */
bool fsd_same_geometry(ext2_filsys a, ext2_filsys b);

/*
 * The fields (F_*) that differ between inode kino of K (a) and inode mino
 * of M (b); *blocks gets the blocks whose content differs within the
 * common length plus the blocks past the old end.
 */
unsigned fsd_inode_diff(struct ctx *c, ext2_ino_t kino, ext2_ino_t mino,
			union inode_buf *a, union inode_buf *b,
			uint64_t *blocks);

/*
 * Accounting for the blocks the COW holds, in this order: metadata,
 * reserved inodes (journal...), blocks free in M, blocks of inodes whose
 * inode-table block was written; then fsd_find_owners() for what is left,
 * which adds the owners to c->force.
 */
void fsd_mark_metadata(struct ctx *c);
void fsd_mark_reserved_inodes(struct ctx *c);
void fsd_mark_free(struct ctx *c);
void fsd_mark_changed_inodes(struct ctx *c);
void fsd_find_owners(struct ctx *c);

#endif /* IMGSTAT_FSDIFF_H */
