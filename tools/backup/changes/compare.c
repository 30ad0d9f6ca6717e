/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * compare.c - the source of changes without tracking (changes.h): an
 * incremental's every candidate chunk hashed against the parent's table,
 * a plain copy compared with its COW while the guest is stopped.
 */
#include "changes/changes.h"
#include "run/run.h"
#include "guest/snap.h"

#include <stdio.h>
#include <stdlib.h>

const char *const changes_names[2] = { "tracking", "comparison" };

void changes_compare_all(struct backup *b)
{
	b->cs.changes.kind = CHANGES_COMPARISON;
	b->cs.changes.all = true;
	for (int i = 0; i < b->ndev; i++) {
		free(b->dev[i].cbt.bits);
		b->dev[i].cbt.bits = NULL;
	}
	b->cs.src = &changes_compare;
}

const struct changes *changes_of(struct backup *b, struct device *d)
{
	static struct changes c;

	c = b->cs.changes;
	if (!c.all)
		c.bits = d->cbt.bits;
	return &c;
}

int changes_rescan(struct backup *b, int i, const uint64_t *bits, uint64_t nb, uint32_t blk,
		   char *msg, size_t msglen)
{
	struct device *d = &b->dev[i];
	uint64_t before = d->pipe.scan.written;
	int ret = bits ? scan_blocks(&d->pipe.scan, bits, nb, blk) : scan_changes(&d->pipe.scan, &b->cs.changes);

	d->pipe.paused_bytes = d->pipe.scan.written - before;
	if (ret < 0)
		snprintf(msg, msglen, "%s", d->pipe.scan.msg);
	return ret;
}

static int compare_begin(struct backup *b, bool *serves, char *why, size_t whylen)
{
	(void)b;
	(void)why;
	(void)whylen;
	*serves = true;
	return 0;
}

static int compare_finish(struct backup *b, struct snap_ctx *c)
{
	int ret;

	if (b->chain.has_parent) {
		/* Every chunk compared again, while stopped. */
		for (int i = 0; i < b->ndev; i++) {
			ret = changes_rescan(b, i, NULL, 0, 0, c->msg, sizeof(c->msg));
			if (ret < 0)
				return ret;
		}
		return 0;
	}
	for (int i = 0; i < b->ndev; i++) {
		struct snap_file f;
		uint64_t before = c->written;

		backup_snap_of(&b->dev[i], &f);
		ret = snap_compare(&f, c);
		b->dev[i].pipe.paused_bytes = c->written - before;
		if (ret < 0)
			return ret;
	}
	return 0;
}

const struct change_source changes_compare = {
	.begin = compare_begin,
	.finish = compare_finish,
};
