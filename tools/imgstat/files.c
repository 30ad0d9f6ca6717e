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
#include "fsdiff.h"
#include "imgstat.h"
#include "pairio.h"
#include "probe.h"

/* --- recording ------------------------------------------------------ */

static struct change *record(struct ctx *c, int kind, const char *path,
			     const char *from, int type, ext2_ino_t ino)
{
	struct change *x, *v = grow_array(c->ch, &c->capch, c->nch, sizeof(*c->ch), FSD_GROW_FIRST);
	char *p = NULL, *f = NULL;

	if (v)
		c->ch = v;
	if (!v || !(p = fsd_strdup(c, path)) ||
	    (from && !(f = fsd_strdup(c, from)))) {
		free(p);
		fsd_stop(c, FSD_FAILED, "out of memory");
		return NULL;
	}
	x = &c->ch[c->nch++];
	memset(x, 0, sizeof(*x));
	x->kind = kind;
	x->path = p;
	x->from = f;
	x->type = type;
	x->ino = ino;
	return x;
}

/* A NULL path (memory ran out making it, c->stop says so) is skipped. */
static void orphan_add(struct ctx *c, struct orphans *o, const char *path,
		       ext2_ino_t ino, int type)
{
	struct orphan *v;
	char *p;

	if (!path || c->stop)
		return;
	v = grow_array(o->v, &o->cap, o->n, sizeof(*o->v), FSD_GROW_FIRST);
	if (!v) {
		fsd_stop(c, FSD_FAILED, "out of memory");
		return;
	}
	o->v = v;
	p = fsd_strdup(c, path);
	if (p)
		o->v[o->n++] = (struct orphan){ p, ino, type, false, false };
}

/* Errors that say the filesystem's bytes are wrong, not that reading them
 * failed: errno values are small, com_err codes are not. */
static bool damage_code(long ret)
{
	return ret >= 256 && ret != EXT2_ET_NO_MEMORY &&
	       ret != EXT2_ET_UNSUPP_FEATURE && ret != EXT2_ET_RO_UNSUPP_FEATURE &&
	       ret != EXT2_ET_CANCEL_REQUESTED;
}

/* --- directories ---------------------------------------------------- */

struct dirit {
	struct entlist *l;
	ext2_filsys fs;
	struct ctx *c;
	const char *path, *side;
	ext2_ino_t dir;
};

static int dir_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *d,
		  int offset, int blocksize, char *buf, void *priv)
{
	struct dirit *it = priv;
	int len = ext2fs_dirent_name_len(d);
	struct ent *e;
	char *name;

	(void)dir, (void)offset, (void)blocksize, (void)buf;
	if (entry == DIRENT_DOT_FILE || entry == DIRENT_DOT_DOT_FILE || !d->inode)
		return 0;
	if ((len == 1 && d->name[0] == '.') ||
	    (len == 2 && d->name[0] == '.' && d->name[1] == '.'))
		return 0;
	/* Every later use of the number (inode table, bitmaps) trusts it. */
	if (!fsd_ino_valid(it->fs, d->inode)) {
		fsd_stop(it->c, FSD_DAMAGED, "directory %s (inode %u) %s has an "
			 "entry for inode %u, past the last inode (%u)",
			 it->path, it->dir, it->side, d->inode,
			 it->fs->super->s_inodes_count);
		return DIRENT_ABORT;
	}
	e = grow_array(it->l->v, &it->l->cap, it->l->n, sizeof(*it->l->v), FSD_GROW_FIRST);
	name = malloc((size_t)len + 1);
	if (e)
		it->l->v = e;
	if (!e || !name) {
		free(name);
		fsd_stop(it->c, FSD_FAILED, "out of memory");
		return DIRENT_ABORT;
	}
	e = &it->l->v[it->l->n++];
	e->name = name;
	memcpy(e->name, d->name, (size_t)len);
	e->name[len] = 0;
	e->ino = d->inode;
	e->type = ext2fs_has_feature_filetype(it->fs->super) ?
		  ext2fs_dirent_file_type(d) : EXT2_FT_UNKNOWN;
	if (e->type == EXT2_FT_UNKNOWN) {
		union inode_buf b;

		if (fsd_read_inode(it->fs, e->ino, &b) == 0)
			e->type = fsd_mode_type(b.l.i_mode);
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
	const char *side = fs == c->k.fs ? "in the backing file" :
			   "in the merged view";
	struct dirit it = { l, fs, c, path, side, dir };
	union inode_buf b;
	errcode_t ret;
	int flags = 0;

	memset(l, 0, sizeof(*l));
	if (c->stop)
		return EXT2_ET_CANCEL_REQUESTED;
	/* The flag is for inline directories only: others fail with it. */
	ret = fsd_read_inode(fs, dir, &b);
	if (!ret && (b.l.i_flags & EXT4_INLINE_DATA_FL))
		flags = DIRENT_FLAG_INCLUDE_INLINE_DATA;
	if (!ret)
		ret = ext2fs_dir_iterate2(fs, dir, flags, NULL, dir_cb, &it);
	if (ret && !c->err && !c->stop) {
		c->err = ret;
		snprintf(c->errwhere, sizeof(c->errwhere), "%sreading directory "
			 "%s (inode %u) %s", damage_code(ret) ?
			 "filesystem damaged: " : "", path, dir, side);
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

	if (!fsd_inode_maybe_changed(c, ino))
		return false;
	if (fsd_iset_has(&c->force, ino))
		return true;
	if (fsd_read_inode(c->k.fs, ino, &a) || fsd_read_inode(c->m.fs, ino, &b))
		return true;
	if (memcmp(a.raw, b.raw, c->isz))
		return true;
	/* Same inode: the same blocks, unless one of them was written. */
	if (fsd_get_map(c, c->m.fs, ino, &b, &m))
		return true;
	for (size_t i = 0; i < m.n && !changed; i++)
		changed = fsd_in_changed(c, m.v[i].pblk, m.v[i].len);
	for (size_t i = 0; i < m.nmeta && !changed; i++)
		changed = fsd_in_changed(c, m.meta[i].start, 1);
	fsd_map_free(&m);
	return changed;
}

static void walk(struct ctx *c, const char *kpath, const char *mpath,
		 ext2_ino_t kino, ext2_ino_t mino);

/* Does inode ino live on the other side with the same generation? */
static bool lives_on(struct ctx *c, ext2_filsys other, ext2_filsys self,
		     ext2_ino_t ino, int type)
{
	union inode_buf a, b;

	if (!c->same_fs || fsd_read_inode(self, ino, &a) || fsd_read_inode(other, ino, &b))
		return false;
	return fsd_inode_in_use(other, ino, &b) &&
	       a.l.i_generation == b.l.i_generation &&
	       fsd_mode_type(b.l.i_mode) == type;
}

/* An entry with the same name and inode number in K and M. */
static void same_entry(struct ctx *c, const char *kpath, const char *mpath,
		       ext2_ino_t ino, int type)
{
	if (c->stop)
		return;
	if (fsd_inode_maybe_changed(c, ino)) {
		union inode_buf a, b;
		uint64_t blocks;
		unsigned f;

		if (fsd_read_inode(c->k.fs, ino, &a) || fsd_read_inode(c->m.fs, ino, &b))
			return;
		if (a.l.i_generation != b.l.i_generation ||
		    !fsd_inode_in_use(c->k.fs, ino, &a) ||
		    (a.l.i_mode & LINUX_S_IFMT) != (b.l.i_mode & LINUX_S_IFMT)) {
			/* Another file under the same inode number. */
			orphan_add(c, &c->del, kpath, ino, fsd_mode_type(a.l.i_mode));
			orphan_add(c, &c->add, mpath, ino, type);
			return;
		}
		if (type != EXT2_FT_DIR) {
			f = fsd_inode_diff(c, ino, ino, &a, &b, &blocks);
			if (f) {
				struct change *x = record(c, CH_MODIFIED, mpath,
							  NULL, type, ino);

				if (!x)
					return;
				x->fields = f;
				x->changed_blocks = blocks;
				x->size = EXT2_I_SIZE(EXT2_INODE(&b.l));
				x->size_before = EXT2_I_SIZE(EXT2_INODE(&a.l));
			}
		} else {
			/* A directory's entries speak for it: only report
			 * what entries do not explain. */
			f = fsd_inode_diff(c, ino, ino, &a, &b, &blocks) &
			    (F_MODE | F_OWNER | F_FLAGS | F_XATTR);
			if (f) {
				struct change *x = record(c, CH_MODIFIED, mpath,
							  NULL, type, ino);

				if (!x)
					return;
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
	if (c->stop || c->depth >= MAX_DEPTH || fsd_iset_has(&c->walked, mino) ||
	    !fsd_iset_add(c, &c->walked, mino))
		return;
	c->depth++;
	if (c->same_fs && kino == mino && !dir_changed(c, kino)) {
		read_dir(c, c->m.fs, mino, mpath, &em);
		for (i = 0; i < em.n && !c->stop; i++) {
			char *kp = fsd_join(c, kpath, em.v[i].name);
			char *mp = fsd_join(c, mpath, em.v[i].name);

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
	while (!c->stop && (i < ek.n || j < em.n)) {
		int cmp = i == ek.n ? 1 : j == em.n ? -1 :
			  strcmp(ek.v[i].name, em.v[j].name);

		if (cmp == 0) {
			char *kp = fsd_join(c, kpath, ek.v[i].name);
			char *mp = fsd_join(c, mpath, em.v[j].name);

			if (ek.v[i].ino == em.v[j].ino && c->same_fs &&
			    ek.v[i].type == em.v[j].type) {
				same_entry(c, kp, mp, em.v[j].ino, em.v[j].type);
			} else {
				orphan_add(c, &c->del, kp, ek.v[i].ino, ek.v[i].type);
				orphan_add(c, &c->add, mp, em.v[j].ino, em.v[j].type);
			}
			free(kp);
			free(mp);
			i++;
			j++;
		} else if (cmp < 0) {
			char *kp = fsd_join(c, kpath, ek.v[i].name);

			orphan_add(c, &c->del, kp, ek.v[i].ino, ek.v[i].type);
			free(kp);
			i++;
		} else {
			char *mp = fsd_join(c, mpath, em.v[j].name);

			orphan_add(c, &c->add, mp, em.v[j].ino, em.v[j].type);
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
	if (!x)
		return;
	if (fsd_read_inode(c->k.fs, d->ino, &ib_k) == 0 &&
	    fsd_read_inode(c->m.fs, a->ino, &ib_m) == 0) {
		/* Renaming changes the ctime (and a directory's ".."). */
		f = fsd_inode_diff(c, d->ino, a->ino, &ib_k, &ib_m, &blocks) &
		    ~(unsigned)F_CTIME;
		if (a->type == EXT2_FT_DIR)
			f &= F_MODE | F_OWNER | F_FLAGS | F_XATTR;
		x->size = EXT2_I_SIZE(EXT2_INODE(&ib_m.l));
		x->size_before = EXT2_I_SIZE(EXT2_INODE(&ib_k.l));
	}
	x->fields = f;
	x->changed_blocks = blocks;
	if (a->type == EXT2_FT_DIR) {
		char *kp = fsd_strdup(c, d->path), *mp = fsd_strdup(c, a->path);

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
		free(ds);
		free(as);
		fsd_stop(c, FSD_FAILED, "out of memory");
		return false;
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
			free(ds);
			free(as);
			fsd_stop(c, FSD_FAILED, "out of memory");
			return false;
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
		for (size_t k = 0; k < np && !c->stop; k += 2) {
			size_t di = (size_t)(uintptr_t)pairs[k];
			size_t ai = (size_t)(uintptr_t)pairs[k + 1];
			union inode_buf a, b;

			if (c->del.v[di].type != c->add.v[ai].type ||
			    fsd_read_inode(c->k.fs, c->del.v[di].ino, &a) ||
			    fsd_read_inode(c->m.fs, c->add.v[ai].ino, &b) ||
			    a.l.i_generation != b.l.i_generation ||
			    !fsd_inode_in_use(c->k.fs, c->del.v[di].ino, &a) ||
			    !fsd_inode_in_use(c->m.fs, c->add.v[ai].ino, &b))
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

	for (size_t i = 0; i < n && !c->stop; i++) {
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
		if (fsd_iset_has(deleted ? &c->expanded_k : &c->expanded_m, ino))
			continue;
		if (!fsd_iset_add(c, deleted ? &c->expanded_k : &c->expanded_m, ino))
			break;
		any = true;
		path = fsd_strdup(c, o->v[i].path);
		if (read_dir(c, self, ino, path, &l) == 0) {
			for (size_t k = 0; k < l.n; k++) {
				char *p = fsd_join(c, path, l.v[k].name);

				orphan_add(c, o, p, l.v[k].ino, l.v[k].type);
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
		fsd_stop(c, FSD_FAILED, "out of memory");
		return;
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
		if (!x)
			break;
		if (fsd_read_inode(c->k.fs, d->ino, &ib_k) == 0 &&
		    fsd_read_inode(c->m.fs, (*hit)->ino, &ib_m) == 0) {
			f |= fsd_inode_diff(c, d->ino, (*hit)->ino, &ib_k, &ib_m, &blocks);
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
	for (int round = 0; round < 1000000 && !c->stop; round++) {
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
		if (!x)
			return;
		if (fsd_read_inode(c->k.fs, d->ino, &b) == 0)
			x->size_before = x->size = EXT2_I_SIZE(EXT2_INODE(&b.l));
	}
	for (size_t i = 0; i < c->add.n; i++) {
		struct orphan *a = &c->add.v[i];
		union inode_buf b;
		struct change *x;

		if (a->matched)
			continue;
		x = record(c, CH_ADDED, a->path, NULL, a->type, a->ino);
		if (!x)
			return;
		if (fsd_read_inode(c->m.fs, a->ino, &b) == 0)
			x->size = EXT2_I_SIZE(EXT2_INODE(&b.l));
	}
}

void fsd_ctx_free(struct ctx *c)
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
	if (c->k.fs)
		extfs_close(&c->k);
	if (c->m.fs)
		extfs_close(&c->m);
	memset(c, 0, sizeof(*c));
}

/*
 * Open one view and check the fields libext2fs trusts.  Returns 1, 0 for a
 * backing file without an ext2/3/4 superblock (the guest made a new
 * filesystem), -1 with c->stop set.
 */
static int open_view(struct ctx *c, struct extfs *x, int source, unsigned flags)
{
	const char *what = source == PIO_VIEW ? "the merged view" :
			   "the backing file";
	char why[256];
	long ret;

	ret = extfs_open(x, c->im, source, c->off,
			 flags & FSD_IGNORE_CSUM ? EXTFS_IGNORE_CSUM : 0);
	if (ret == EXT2_ET_BAD_MAGIC && source == PIO_BACKING)
		return 0;
	if (ret && damage_code(ret)) {
		fsd_stop(c, FSD_DAMAGED, "%s: %s", what, error_message(ret));
		return -1;
	}
	if (ret) {
		fsd_stop(c, FSD_FAILED, "opening the filesystem of %s: %s", what,
			 error_message(ret));
		return -1;
	}
	if (extfs_validate(x->fs, why, sizeof(why))) {
		fsd_stop(c, FSD_DAMAGED, "%s: %s", what, why);
		return -1;
	}
	return 1;
}

/* Read the bitmaps the comparison uses. */
static int read_bitmaps(struct ctx *c)
{
	errcode_t ret = ext2fs_read_bitmaps(c->m.fs);
	const char *what = "the merged view";

	if (!ret && c->have_k) {
		ret = ext2fs_read_inode_bitmap(c->k.fs);
		what = "the backing file";
	}
	if (!ret)
		return 0;
	fsd_stop(c, damage_code(ret) ? FSD_DAMAGED : FSD_FAILED,
		 "%s: reading the bitmaps: %s", what, error_message(ret));
	return -1;
}

/* With another filesystem in M, the roots themselves are not changes. */
static void drop_roots(struct ctx *c)
{
	size_t w = 0;

	for (size_t i = 0; i < c->nch; i++) {
		if (!strcmp(c->ch[i].path, "/")) {
			free(c->ch[i].path);
			free(c->ch[i].from);
			continue;
		}
		c->ch[w++] = c->ch[i];
	}
	c->nch = w;
}

int fsd_files(struct ctx *c, struct img *im, uint64_t off, unsigned flags)
{
	int k;

	memset(c, 0, sizeof(*c));
	c->im = im;
	c->off = off;
	c->budget = READ_BUDGET;
	if (open_view(c, &c->m, PIO_VIEW, flags) < 0 ||
	    (k = open_view(c, &c->k, PIO_BACKING, flags)) < 0)
		return c->stop;
	c->have_k = k > 0;
	c->bs = c->m.fs->blocksize;
	c->isz = EXT2_INODE_SIZE(c->m.fs->super);
	c->same_fs = c->have_k && !memcmp(c->k.fs->super->s_uuid,
					  c->m.fs->super->s_uuid, 16);
	c->same_geo = c->same_fs && fsd_same_geometry(c->k.fs, c->m.fs);
	c->buf_k = malloc(256 * (size_t)c->bs);
	c->buf_m = malloc(256 * (size_t)c->bs);
	if (!c->buf_k || !c->buf_m || (k = fsd_changed_blocks(c)) < 0) {
		if (!c->buf_k || !c->buf_m || k == -ENOMEM)
			fsd_stop(c, FSD_FAILED, "out of memory");
		else
			fsd_stop(c, FSD_FAILED, "cannot read the bitmap: %s",
				 strerror(-k));
		return c->stop;
	}
	if (read_bitmaps(c) < 0)
		return c->stop;

	/* Account for the blocks the guest wrote; find data-only changes. */
	fsd_mark_metadata(c);
	fsd_mark_reserved_inodes(c);
	fsd_mark_free(c);
	if (c->same_geo) {
		fsd_mark_changed_inodes(c);
		if (c->unexplained)
			fsd_find_owners(c);
	}

	if (c->same_fs) {
		walk(c, "/", "/", EXT2_ROOT_INO, EXT2_ROOT_INO);
	} else {
		/* A new filesystem: everything in it is new. */
		if (c->have_k)
			orphan_add(c, &c->del, "/", EXT2_ROOT_INO, EXT2_FT_DIR);
		orphan_add(c, &c->add, "/", EXT2_ROOT_INO, EXT2_FT_DIR);
	}
	settle_orphans(c);
	if (!c->same_fs)
		drop_roots(c);
	return c->stop;
}
