/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * io_tracer_source.c - the I/O-thread tracer (io_tracer.h) as a source of
 * changes (changes.h): the blocks the guest wrote while its COWs were
 * copied, copied again (a plain backup) or their chunks rescanned (an
 * incremental), in rounds while it runs and once more while it is stopped.
 */
#define _GNU_SOURCE
#include "changes/changes.h"
#include "changes/io_tracer.h"
#include "run/run.h"
#include "guest/snap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static int tracer_begin(struct backup *b, bool *serves, char *why, size_t whylen)
{
	struct iotrack_file files[MAX_DEV];
	int ret;

	for (int i = 0; i < b->ndev; i++)
		files[i] = (struct iotrack_file){ b->dev[i].st.st_dev, b->dev[i].st.st_ino,
						   (uint64_t)b->dev[i].st.st_size };
	ret = b->gs.g.pid ? iotrack_start(&b->cs.track, b->gs.g.pid, files, b->ndev, why,
				      whylen) : -ESRCH;
	if (!b->gs.g.pid)
		snprintf(why, whylen, "the guest's pid is unknown (no %.180s/pid)", b->gs.g.dir);
	*serves = ret == 0;
	return 0;
}

/* Copy the blocks the guest wrote since the last call. */
static int catch_up(struct backup *b, struct snap_ctx *c, uint64_t *dirty_bytes)
{
	int ret;

	*dirty_bytes = 0;
	for (int i = 0; i < b->ndev; i++) {
		uint64_t before = c->written;
		struct snap_file f;
		uint64_t nb, n = 0, *bits = iotrack_take(b->cs.track, i, &nb);

		if (!bits) {
			snprintf(c->msg, sizeof(c->msg), "out of memory");
			return -ENOMEM;
		}
		for (uint64_t w = 0; w < (nb + 63) / 64; w++)
			n += (uint64_t)__builtin_popcountll(bits[w]);
		*dirty_bytes += n * IOTRACK_BLOCK;
		backup_snap_of(&b->dev[i], &f);
		if (b->chain.has_parent) {
			/* The chunks holding those blocks, hashed again. */
			ret = changes_rescan(b, i, bits, nb, IOTRACK_BLOCK, c->msg, sizeof(c->msg));
			free(bits);
			if (ret < 0)
				return ret;
			continue;
		}
		ret = snap_ranges(&f, bits, nb, IOTRACK_BLOCK, c);
		free(bits);
		b->dev[i].pipe.paused_bytes = c->written - before;
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int tracer_next(struct backup *b)
{
	struct snap_ctx c = { .intr = &tool_interrupted };
	uint64_t dirty;
	int ret;

	/* Like live migration: a few rounds, until little is left. */
	for (int round = 0; round < 4; round++) {
		if (!iotrack_ok(b->cs.track, NULL, 0))
			return 0;
		ret = catch_up(b, &c, &dirty);
		if (ret < 0)
			return backup_dest_error(&c, ret);
		if (dirty <= (8U << 20))
			break;
	}
	return 0;
}

static void tracer_end(struct backup *b)
{
	if (b->cs.track) {
		b->cs.tracked_writes = iotrack_writes(b->cs.track);
		iotrack_stop(b->cs.track);
		b->cs.track = NULL;
	}
}

static int tracer_finish(struct backup *b, struct snap_ctx *c)
{
	char why[256];
	uint64_t dirty;

	if (!iotrack_ok(b->cs.track, why, sizeof(why))) {
		snprintf(b->method_note, sizeof(b->method_note),
			 "tracking lost (%s): compared everything", why);
		b->method = M_COMPARE;
		tracer_end(b);
		b->cs.src = &changes_compare;
		return changes_compare.finish(b, c);
	}
	return catch_up(b, c, &dirty);
}

const struct change_source changes_io_tracer = {
	.begin = tracer_begin,
	.next = tracer_next,
	.finish = tracer_finish,
	.end = tracer_end,
};
