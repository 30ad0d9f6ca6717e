/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * backup.c - `uml_backup [--incremental] GUEST|--offline COW... DEST`: a
 * backup run (run/run.h), live through the guest's session
 * (guest/live.c) or offline from files nobody uses, then written
 * (run/writer.c), verified if asked, summed up on stderr.
 */
#define _GNU_SOURCE
#include "cmd/backup.h"
#include "cmd/verify.h"
#include "guest/live.h"
#include "run/run.h"
#include "run/writer.h"
#include "cli.h"
#include "quote.h"
#include "format/stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The one-line summary on stderr. */
static void summary(const struct backup *b)
{
	uint64_t data = 0, stored = 0, paused = 0;

	if (b->o->quiet)
		return;
	for (int i = 0; i < b->ndev; i++) {
		data += b->dev[i].data_bytes;
		stored += b->dev[i].pipe.stored_bytes;
		paused += b->dev[i].pipe.paused_bytes;
	}
	if (b->o->incremental) {
		uint64_t chunks = 0, rd = 0;
		char pause[64] = "";

		for (int i = 0; i < b->ndev; i++) {
			chunks += b->dev[i].pipe.er.chunks_stored;
			rd += b->dev[i].pipe.scanning ? b->dev[i].pipe.scan.read : b->dev[i].pipe.er.read_bytes;
		}
		char source[sizeof(b->cs.changes.note) + 40] = "";

		if (b->live)
			snprintf(pause, sizeof(pause), "; paused %.1f ms (%s)", b->pause_ms,
				 method_names[b->method]);
		/* The source, and why not tracking when it is not. */
		if (b->chain.has_parent)
			snprintf(source, sizeof(source), ", changes: %s%s%s%s",
				 changes_names[b->cs.changes.kind],
				 b->cs.changes.kind == CHANGES_COMPARISON ? " (" : "",
				 b->cs.changes.kind == CHANGES_COMPARISON ? b->cs.changes.note : "",
				 b->cs.changes.kind == CHANGES_COMPARISON ? ")" : "");
		fprintf(stderr, "%s: %s: %s point %s in %s (%s%s%s): %llu chunk%s stored, "
			"%s%s%.1f MiB; %.1f MiB of COW data read%s\n", cli_prog,
			b->live ? quote_name(b->gs.g.umid) : "offline", b->chain.has_parent ?
			"incremental" : "full (the chain had no point)", b->chain.point_name,
			quote_name(b->o->dest), b->chain.has_parent ? "parent " : "new chain",
			b->chain.has_parent ? b->chain.parent.name : "", source, (unsigned long long)chunks,
			chunks == 1 ? "" : "s", b->o->compress ? pack_name(b->o->compress) : "",
			b->o->compress ? " " : "", (double)stored / 1048576.0,
			(double)rd / 1048576.0, pause);
		return;
	}
	if (b->live)
		fprintf(stderr, "%s: %s: %d device%s, %.1f MiB of COW data backed up into "
			"%s (stored: %s%s%.1f MiB); paused %.1f ms (%s, %.1f MiB copied "
			"while stopped)\n", cli_prog, quote_name(b->gs.g.umid), b->ndev,
			b->ndev == 1 ? "" : "s",
			(double)data / 1048576.0, quote_name(b->dest), b->o->compress ?
			pack_name(b->o->compress) : "", b->o->compress ? " " : "",
			(double)stored / 1048576.0, b->pause_ms, method_names[b->method],
			(double)paused / 1048576.0);
	else
		fprintf(stderr, "%s: %d COW file%s, %.1f MiB of data backed up into %s "
			"(stored: %s%s%.1f MiB)\n", cli_prog, b->ndev, b->ndev == 1 ? "" : "s",
			(double)data / 1048576.0, quote_name(b->dest), b->o->compress ?
			pack_name(b->o->compress) : "", b->o->compress ? " " : "",
			(double)stored / 1048576.0);
}

/* --- offline ---------------------------------------------------------------- */

/* --offline: COW files of a guest that is not running. */
static int backup_offline(struct backup *b)
{
	const struct options *o = b->o;
	struct snap_ctx c = { .intr = &tool_interrupted };
	struct ubdk_cow *locks[MAX_DEV] = { 0 };
	int st = 0, ret;

	for (int i = 0; i < o->nfiles && st == 0; i++) {
		struct device *d = backup_device_new(b, -1);
		struct ubdk_err err = { 0 };
		struct ubdk_backing_check chk;
		char abs[PATH_MAX];

		snprintf(d->name, sizeof(d->name), "ubd%d", i);
		if (!realpath(o->files[i], abs)) {
			cli_error("%s: cannot open: %s", quote_name(o->files[i]), strerror(errno));
			st = EXIT_DEVICE;
			break;
		}
		snprintf(d->cow, sizeof(d->cow), "%s", abs);
		st = backup_open_source(d);
		if (st == 0)
			st = backup_read_header(d, "not made by uml_mkcow or the kernel");
		if (st)
			break;
		/* The kernel write-locks the COW of an open device. */
		if (ubdk_cow_open(d->cow, NULL, UBDK_OPEN_LOCK | UBDK_OPEN_NO_CHECK,
				  &locks[i], &err) < 0) {
			if (err.code == UBDK_E_LOCKED) {
				char prog[256];

				/* A command to paste into a shell: quoted. */
				cli_error("%s: in use by a running guest (locked); back it "
					  "up live: %s UMID DESTDIR", quote_name(d->cow),
					  quote_shell(prog, sizeof(prog),
						      cli_prog) ? prog : "uml_backup");
				st = EXIT_LOCKED;
			} else {
				cli_error("%s", tool_lib_msg(&err, d->cow));
				st = EXIT_DEVICE;
			}
			break;
		}
		if (ubdk_backing_check(&d->hdr, d->hdr.backing, &chk, &err) < 0 && !o->quiet)
			cli_error("%s: warning: %s", quote_name(d->cow), tool_lib_msg(&err,
										 d->hdr.backing));
		b->ndev++;
	}
	if (st == 0)
		st = backup_prepare_dest(b);
	if (st == 0)
		st = backup_try_reflink(b);
	/* Nobody writes: a plain copy is a point in time. */
	if (st == 0 && b->method != M_REFLINK)
		b->method = M_COPY;
	if (st == 0)
		st = backup_check_space(b);
	backup_utc_now(b->created, sizeof(b->created));
	for (int i = 0; st == 0 && i < b->ndev; i++) {
		struct snap_file f;

		backup_snap_of(&b->dev[i], &f);
		/*
		 * A stream (chain point, compressed backup) is written from the
		 * COW itself: nothing writes it, a copy would only be read once.
		 */
		ret = b->method == M_REFLINK || o->incremental || o->compress ? 0 :
		      snap_copy(&f, &c);
		if (ret < 0)
			st = backup_dest_error(&c, ret);
	}
	if (st == 0)
		st = writer_finish(b);
	for (int i = 0; i < MAX_DEV; i++)
		if (locks[i])
			ubdk_cow_close(locks[i]);
	return st;
}

int backup_command(struct options *o)
{
	struct backup b;
	struct stat st;
	int status;

	/* A COW file given as GUEST: a guest that is not running. */
	if (!o->offline && stat(o->guest, &st) == 0 && S_ISREG(st.st_mode)) {
		o->offline = true;
		o->files[o->nfiles++] = o->guest;
	}
	backup_init(&b, o, !o->offline);
	status = b.live ? backup_live(&b) : backup_offline(&b);
	if (status == 0 && o->verify)
		status = verify_path(o, b.dest, o->incremental);
	if (status == 0)
		summary(&b);
	backup_end(&b, status);
	if (status == EXIT_INTERRUPTED)
		cli_error("interrupted by signal %d%s%s", (int)tool_interrupted,
			  b.live && b.gs.g.umid[0] ? "; " : "", !b.live || !b.gs.g.umid[0] ? "" :
			  b.gs.after ? b.gs.after : "the guest is running");
	return status;
}
