/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * live.c - the backup of a running guest.
 *
 * The devices and their files come from the guest's mconsole (`config
 * ubdN`).  Each COW is copied while the guest runs, with a tracer on the
 * guest's ubd I/O thread noting the blocks written meanwhile; the guest is
 * synced (`sysrq s`, then `proc meminfo` until dirty data drained), stopped,
 * left until its I/O thread has nothing in flight, and only the blocks
 * written since the copy began are copied again before `go`.  With a
 * filesystem that shares extents the whole pause is one FICLONE; without a
 * tracer, the pause compares the copy with the COW.  A watchdog process
 * resumes the guest if we die.
 */
#define _GNU_SOURCE
#include "guest/live.h"
#include "run/run.h"
#include "run/writer.h"
#include "cli.h"
#include "changes/kernel_cbt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- the test hook ------------------------------------------------------ */

/*
 * UBDK_BACKUP_TEST_STALL=FILE: once the guest is stopped and the copy is
 * under way, create FILE and wait while it exists (tests kill us there).
 */
static void stall_hook(void)
{
	static bool done;
	const char *path = getenv("UBDK_BACKUP_TEST_STALL");
	int fd;

	if (done || !path || !*path)
		return;
	done = true;
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < 12000 && !tool_interrupted && access(path, F_OK) == 0; i++)
		usleep(10000);
}

static void tick(void *arg)
{
	bool *paused = arg;

	if (*paused)
		stall_hook();
}

/* --- mconsole ----------------------------------------------------------- */

static int guest_error(struct backup *b, int ret, const char *cmd)
{
	if (ret == -EINTR)
		return EXIT_INTERRUPTED;
	if (ret == -ECONNREFUSED || ret == -ENOENT)
		cli_error("%s: the guest exited (during '%s')", quote_name(b->gs.g.umid),
			  quote_name(cmd));
	else if (ret == -ETIMEDOUT)
		cli_error("%s: mconsole not answering: no reply to '%s' in %g s (%s)",
			  quote_name(b->gs.g.umid), quote_name(cmd), b->o->timeout_ms / 1000.0,
			  quote_name(b->gs.g.sock));
	else
		cli_error("%s: '%s': %s", quote_name(b->gs.g.umid), quote_name(cmd), mc_strerror(ret));
	return EXIT_GUEST;
}

static int command(struct backup *b, const char *cmd, struct mc_reply *r)
{
	return mc_command(&b->gs.mc, cmd, r);
}

/* --- devices ------------------------------------------------------------ */

/* Ask the guest about ubdN; 1 if not configured (and not required). */
static int query_device(struct backup *b, int unit, bool required)
{
	struct device *d = backup_device_new(b, unit);
	struct mc_reply r;
	char cmd[32], *comma;
	int ret, st;

	snprintf(d->name, sizeof(d->name), "ubd%d", unit);
	snprintf(cmd, sizeof(cmd), "config %s", d->name);
	ret = command(b, cmd, &r);
	if (ret < 0)
		return guest_error(b, ret, cmd);
	if (r.err) {
		cli_error("%s: no such device in guest %s (%s)", d->name, quote_name(b->gs.g.umid),
			  quote_name(r.text));
		mc_reply_free(&r);
		return EXIT_DEVICE;
	}
	if (!r.text[0]) {
		mc_reply_free(&r);
		if (!required)
			return 1;
		cli_error("%s: not configured in guest %s", d->name, quote_name(b->gs.g.umid));
		return EXIT_DEVICE;
	}
	comma = strchr(r.text, ',');
	if (comma)
		*comma = '\0';
	ret = guest_abspath(&b->gs.g, r.text, d->cow, sizeof(d->cow));
	if (ret < 0) {
		cli_error("%s: %s: a relative path, and the guest's working directory "
			  "is unknown", d->name, quote_name(r.text));
		mc_reply_free(&r);
		return EXIT_DEVICE;
	}
	mc_reply_free(&r);
	st = backup_open_source(d);
	if (st)
		return st;
	ret = guest_has_open(&b->gs.g, d->cow, d->st.st_dev, d->st.st_ino);
	if (ret == 2) {
		cli_error("%s: %s is not the file the guest has open (renamed or "
			  "replaced?)", d->name, quote_name(d->cow));
		return EXIT_DEVICE;
	}
	st = backup_read_header(d, "the device has no COW file");
	if (st)
		return st;
	b->ndev++;
	return 0;
}

static int find_devices(struct backup *b)
{
	const struct options *o = b->o;
	int st;

	if (o->ndevices) {
		for (int i = 0; i < o->ndevices; i++) {
			int unit = tool_parse_unit(o->devices[i]);

			for (int j = 0; j < b->ndev; j++)
				if (b->dev[j].unit == unit)
					unit = -1;
			if (unit < 0)
				continue;
			st = query_device(b, unit, true);
			if (st)
				return st;
		}
		return 0;
	}
	for (int unit = 0; unit < MAX_DEV; unit++) {
		st = query_device(b, unit, false);
		if (st == 1)
			continue;
		if (st)
			return st;
	}
	if (b->ndev == 0) {
		cli_error("%s: the guest has no ubd devices", quote_name(b->gs.g.umid));
		return EXIT_DEVICE;
	}
	return 0;
}

/* --- sync --------------------------------------------------------------- */

static long long meminfo_kb(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

/* Dirty + Writeback in kB from `proc meminfo`; -1 if not shown. */
static int meminfo(struct backup *b, long long *dirty, long long *wb)
{
	struct mc_reply r;
	int ret = command(b, "proc meminfo", &r);

	if (ret < 0)
		return guest_error(b, ret, "proc meminfo");
	*dirty = meminfo_kb(r.text, "\nDirty:");
	*wb = meminfo_kb(r.text, "\nWriteback:");
	mc_reply_free(&r);
	return 0;
}

/*
 * `sysrq s`, then wait until the sync has written out what was dirty: no
 * writeback left, and dirty data down to a few pages or to a quarter of
 * what it was (a guest that keeps writing dirties new pages meanwhile).
 */
static int sync_guest(struct backup *b)
{
	const struct options *o = b->o;
	double t0 = tool_now(), deadline = t0 + o->sync_timeout_ms / 1000.0;
	long long dirty, wb, before;
	struct mc_reply r;
	int ret, st;

	st = meminfo(b, &dirty, &wb);
	if (st)
		return st;
	before = dirty + wb;
	ret = command(b, "sysrq s", &r);
	if (ret < 0)
		return guest_error(b, ret, "sysrq s");
	if (r.err && !o->quiet)
		cli_error("%s: warning: 'sysrq s' failed: %s", quote_name(b->gs.g.umid),
			  quote_name(r.text));
	b->gs.synced = !r.err;
	mc_reply_free(&r);
	for (;;) {
		usleep(20000);
		if (tool_interrupted)
			return EXIT_INTERRUPTED;
		st = meminfo(b, &dirty, &wb);
		if (st)
			return st;
		if (dirty < 0 || wb < 0) {
			if (!o->quiet)
				cli_error("%s: warning: 'proc meminfo' shows no Dirty or "
					  "Writeback; not waiting for the sync",
					  quote_name(b->gs.g.umid));
			break;
		}
		b->gs.dirty_kb = dirty + wb;
		if (wb == 0 && (dirty <= 256 || dirty * 4 <= before)) {
			b->gs.drained = true;
			break;
		}
		if (tool_now() > deadline) {
			if (!o->quiet)
				cli_error("%s: warning: the guest still had %lld kB dirty "
					  "after %g s of syncing; the backup is "
					  "crash-consistent without them", quote_name(b->gs.g.umid),
					  b->gs.dirty_kb, o->sync_timeout_ms / 1000.0);
			break;
		}
	}
	b->t_sync = tool_now() - t0;
	return 0;
}

/* --- the copy ----------------------------------------------------------- */

/*
 * After backup_try_reflink(): the source of changes (changes.h).  The
 * kernel's tracking of an incremental's chunks, else the tracer if it can
 * start, else comparing; --method reflink and copy need none.
 */
static int choose_source(struct backup *b)
{
	char why[256] = "";
	bool serves;
	int st;

	/* Asked in any case: the pause's checkpoint is the next point's base. */
	st = changes_kernel_cbt.begin(b, &serves, why, sizeof(why));
	if (st)
		return st;
	if (serves) {
		b->cs.src = &changes_kernel_cbt;
		if (b->method == M_AUTO || b->method == M_TRACK) {
			/* The kernel's checkpoints tell what the tracer would. */
			b->method = M_TRACK;
			snprintf(b->method_note, sizeof(b->method_note),
				 "the guest kernel's changed-block tracking");
		}
		return 0;
	}
	if (b->method != M_AUTO && b->method != M_TRACK) {
		/* An incremental's chunks are compared whatever the copy's method. */
		b->cs.src = b->method == M_COMPARE || b->chain.has_parent ? &changes_compare : NULL;
		return 0;
	}
	st = changes_io_tracer.begin(b, &serves, why, sizeof(why));
	if (st)
		return st;
	if (serves) {
		b->cs.src = &changes_io_tracer;
		b->method = M_TRACK;
		return 0;
	}
	if (b->method == M_TRACK) {
		cli_error("%s: %s; use --method compare", quote_name(b->gs.g.umid), quote_name(why));
		return EXIT_FAILED;
	}
	snprintf(b->method_note, sizeof(b->method_note), "not tracked: %s", why);
	b->method = M_COMPARE;
	b->cs.src = &changes_compare;
	return 0;
}

/* Copy everything while the guest runs, then catch up with its writes. */
static int precopy(struct backup *b)
{
	/* No writeback here: it would hold the copy to the disk's speed. */
	struct snap_ctx c = { .intr = &tool_interrupted };
	double t0 = tool_now();
	int ret;

	if (b->method == M_REFLINK || b->method == M_COPY)
		return 0;
	if (b->chain.has_parent)
		return writer_precopy(b);
	for (int i = 0; i < b->ndev; i++) {
		struct snap_file f;

		backup_snap_of(&b->dev[i], &f);
		ret = snap_copy(&f, &c);
		if (ret < 0)
			return backup_dest_error(&c, ret);
	}
	b->t_precopy = tool_now() - t0;
	return 0;
}

/* While the guest runs: what it wrote meanwhile, copied again. */
static int catch_up_running(struct backup *b)
{
	return b->cs.src && b->cs.src->next ? b->cs.src->next(b) : 0;
}

/* While the guest is stopped: make the copies equal to the COW files. */
static int paused_copy(struct backup *b, struct snap_ctx *c)
{
	int ret;

	stall_hook();
	if (b->cs.src)
		return b->cs.src->finish(b, c);
	/* --method reflink or copy: the whole file, while stopped. */
	for (int i = 0; i < b->ndev; i++) {
		struct snap_file f;
		uint64_t before = c->written;

		backup_snap_of(&b->dev[i], &f);
		if (b->method == M_REFLINK) {
			ret = snap_reflink(&f, c);
			if (ret < 0 && !c->msg[0])
				snprintf(c->msg, sizeof(c->msg), "%s: cloning: %s", f.dst_name,
					 strerror(-ret));
		} else {
			ret = snap_copy(&f, c);
		}
		b->dev[i].pipe.paused_bytes = c->written - before;
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * Send `go` until the guest answers; the signal flag must not stop this.
 * Returns 0 or the mconsole error (the caller words the message) and sets
 * b->gs.after, what the guest is doing now.
 */
static int resume_guest(struct backup *b)
{
	struct mc_reply r;
	int ret = -ETIMEDOUT;

	b->gs.mc.interrupt = NULL;
	for (int attempt = 0; attempt < 3 && ret == -ETIMEDOUT; attempt++)
		ret = command(b, "go", &r);
	b->gs.mc.interrupt = &tool_interrupted;
	if (ret == 0) {
		mc_reply_free(&r);
		watchdog_release(&b->gs.wd);
		b->gs.after = "the guest is running";
	} else if (ret == -ECONNREFUSED || ret == -ENOENT) {
		watchdog_release(&b->gs.wd);
		b->gs.after = "the guest exited";
	} else {
		/* The watchdog keeps trying for a minute. */
		watchdog_abandon(&b->gs.wd);
		b->gs.after = "the guest may still be stopped: it does not answer 'go'; "
			   "the watchdog keeps trying for 60 s";
	}
	return ret;
}

static int pause_and_copy(struct backup *b)
{
	bool paused = false, already = false, gone = false, stop_lost = false;
	struct snap_ctx c = { .intr = &tool_interrupted, .tick = tick, .arg = &paused };
	struct mc_reply r;
	double t0;
	int ret, status = 0;

	t0 = tool_now();
	backup_utc_now(b->created, sizeof(b->created));
	ret = command(b, "stop", &r);
	if (ret == 0) {
		if (r.err && strstr(r.text, "Already stopped")) {
			/* Somebody else stopped it: leave it as we found it. */
			already = true;
			watchdog_release(&b->gs.wd);
			b->gs.after = "the guest was already stopped and is left stopped";
			if (!b->o->quiet)
				cli_error("%s: note: the guest was already stopped; it is "
					  "left stopped", quote_name(b->gs.g.umid));
		} else if (r.err) {
			cli_error("%s: 'stop' failed: %s", quote_name(b->gs.g.umid),
				  quote_name(r.text));
			status = EXIT_GUEST;
		}
		mc_reply_free(&r);
	} else if (ret == -ETIMEDOUT) {
		/* Stopped or not, `go` follows; one message once we know. */
		stop_lost = true;
		status = EXIT_GUEST;
	} else {
		status = guest_error(b, ret, "stop");
		gone = ret == -ECONNREFUSED || ret == -ENOENT;
		if (gone)
			b->gs.after = "the guest exited";
	}
	if (status == 0) {
		paused = true;
		ret = guest_wait_io_idle(&b->gs.g, 10000, &tool_interrupted, &b->gs.io_idle);
		if (ret == -ESRCH) {
			cli_error("%s: the guest exited during the backup", quote_name(b->gs.g.umid));
			status = EXIT_GUEST;
			gone = true;
			b->gs.after = "the guest exited";
		} else if (ret == -ETIMEDOUT) {
			cli_error("%s: the guest's I/O thread still had work in flight "
				  "after 10 s", quote_name(b->gs.g.umid));
			status = EXIT_FAILED;
		} else if (ret == -EINTR) {
			status = EXIT_INTERRUPTED;
		}
	}
	if (status == 0) {
		/* First: its write-back makes the COW file what the guest sees. */
		ret = kernel_cbt_pause(b, c.msg, sizeof(c.msg));
		if (ret < 0)
			status = ret == -EINTR ? EXIT_INTERRUPTED : ret == -EIO ? EXIT_GUEST :
				 backup_dest_error(&c, ret);
	}
	if (status == 0) {
		ret = paused_copy(b, &c);
		if (ret < 0)
			status = backup_dest_error(&c, ret);
	}
	if (already || gone) {
		watchdog_release(&b->gs.wd);
		b->pause_ms = 0;
		return status;
	}
	/* Whatever happened: resume.  (`go` on a running guest is harmless.) */
	ret = resume_guest(b);
	b->pause_ms = (tool_now() - t0) * 1000.0;
	if (ret == 0 && !stop_lost)
		return status;
	/* Interrupted: main() reports the signal and b->gs.after in one line. */
	if (status == EXIT_INTERRUPTED)
		return status;
	if (stop_lost)
		cli_error("%s: mconsole not answering: no reply to 'stop' in %g s (%s); %s",
			  quote_name(b->gs.g.umid), b->o->timeout_ms / 1000.0,
			  quote_name(b->gs.g.sock), b->gs.after);
	else if (ret == -ECONNREFUSED || ret == -ENOENT)
		cli_error("%s: the guest exited during the backup", quote_name(b->gs.g.umid));
	else
		cli_error("%s: mconsole not answering 'go' (%s); %s", quote_name(b->gs.g.umid),
			  mc_strerror(ret), b->gs.after);
	return status ? status : EXIT_GUEST;
}

/* --- the run ------------------------------------------------------------ */

int backup_live(struct backup *b)
{
	const struct options *o = b->o;
	struct mc_reply r;
	int ret, st;

	ret = guest_locate(o->guest, o->uml_dir, &b->gs.g);
	if (ret == -ENAMETOOLONG) {
		cli_error("%s: path too long for a socket", quote_name(o->guest));
		return EXIT_GUEST;
	}
	if (ret < 0) {
		cli_error("%s: no such guest (no mconsole socket %s)", quote_name(o->guest),
			  quote_name(b->gs.g.sock));
		return EXIT_GUEST;
	}
	ret = mc_open(&b->gs.mc, b->gs.g.sock, o->timeout_ms);
	if (ret < 0) {
		if (ret == -ECONNREFUSED)
			cli_error("%s: the guest is not running (nobody listens on %s)",
				  quote_name(b->gs.g.umid), quote_name(b->gs.g.sock));
		else
			cli_error("%s: %s: %s", quote_name(b->gs.g.umid), quote_name(b->gs.g.sock),
				  mc_strerror(ret));
		return EXIT_GUEST;
	}
	b->gs.mc.interrupt = &tool_interrupted;
	ret = command(b, "version", &r);
	if (ret < 0)
		return guest_error(b, ret, "version");
	snprintf(b->gs.kernel, sizeof(b->gs.kernel), "%s", r.text);
	mc_reply_free(&r);
	st = find_devices(b);
	if (st)
		return st;
	st = backup_prepare_dest(b);
	if (st)
		return st;
	/* Before any thread: the watchdog is a forked process. */
	ret = watchdog_start(&b->gs.wd, b->gs.g.sock, b->gs.g.umid, 2000, 60);
	if (ret < 0) {
		cli_error("cannot start the watchdog: %s", strerror(-ret));
		return EXIT_FAILED;
	}
	st = backup_try_reflink(b);
	if (st == 0)
		st = choose_source(b);
	if (st == 0)
		st = backup_check_space(b);
	if (st == 0)
		st = precopy(b);
	if (st == 0)
		st = catch_up_running(b);
	if (st == 0 && !o->no_sync)
		st = sync_guest(b);
	if (st == 0)
		st = catch_up_running(b);
	if (st == 0)
		st = pause_and_copy(b);
	else
		watchdog_release(&b->gs.wd);       /* never stopped */
	if (b->cs.src && b->cs.src->end)
		b->cs.src->end(b);
	if (st == 0 && tool_interrupted)
		st = EXIT_INTERRUPTED;
	if (st == 0)
		st = writer_finish(b);
	return st;
}
