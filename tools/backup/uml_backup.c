/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * uml_backup - point-in-time backups of a running UML guest's COW files.
 *
 *   uml_backup [OPTIONS] GUEST DESTDIR           live, GUEST = umid or socket
 *   uml_backup [OPTIONS] --offline COW... DESTDIR  a guest that is not running
 *   uml_backup restore [OPTIONS] FILE [OUTPUT]   a compressed copy to a COW
 *   uml_backup verify [OPTIONS] DESTDIR          check a backup (also --verify)
 *
 * Live: the devices and their files come from the guest's mconsole (`config
 * ubdN`).  Each COW is copied while the guest runs, with a tracer on the
 * guest's ubd I/O thread noting the blocks written meanwhile; the guest is
 * synced (`sysrq s`, then `proc meminfo` until dirty data drained), stopped,
 * left until its I/O thread has nothing in flight, and only the blocks
 * written since the copy began are copied again before `go`.  With a
 * filesystem that shares extents the whole pause is one FICLONE; without a
 * tracer, the pause compares the copy with the COW.  A watchdog process
 * resumes the guest if we die.  Files appear under their names only when
 * complete, the manifest last.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "atomic.h"
#include "cli.h"
#include "extent.h"
#include "guest.h"
#include "input.h"
#include "iotrack.h"
#include "json.h"
#include "mconsole.h"
#include "pack.h"
#include "quote.h"
#include "snap.h"
#include "ubdk_cow.h"
#include "watchdog.h"

/* Documented in uml_backup(1). */
enum {
	EXIT_FAILED = 1,        /* I/O error, verification failed */
	EXIT_USAGE = 2,
	EXIT_GUEST = 3,         /* no such guest, not answering, exited */
	EXIT_DEVICE = 4,        /* no such device, no COW, unreadable COW */
	EXIT_DEST = 5,          /* destination exists, unwritable, full */
	EXIT_LOCKED = 6,        /* --offline: a running guest holds the files */
	EXIT_INTERRUPTED = 7,   /* SIGINT, SIGTERM or SIGHUP */
};

enum method { M_AUTO, M_REFLINK, M_TRACK, M_COMPARE, M_COPY };
static const char *const method_names[] = { "auto", "reflink", "tracked", "compare", "copy" };

#define MAX_DEV 16
#define MANIFEST "manifest.json"

struct options {
	const char *guest, *dest, *uml_dir;
	const char *devices[MAX_DEV];
	int ndevices;
	const char *files[MAX_DEV];     /* --offline */
	int nfiles;
	int compress, level, method;
	bool offline, no_sync, verify, force, json, quiet;
	int timeout_ms, sync_timeout_ms;
	/* restore */
	const char *input, *output;
};

struct device {
	char name[16];
	int unit;
	char cow[PATH_MAX];
	struct ubdk_header hdr;
	int src;
	struct stat st;
	uint64_t data_bytes;            /* allocated in the COW */
	struct atomic_file af;          /* the copy */
	struct atomic_file zf;          /* its compressed form */
	char file[64];                  /* name in DESTDIR */
	bool published;
	uint64_t paused_bytes, stored_bytes, cow_sectors;
	struct pack_sums sums;
};

struct backup {
	const struct options *o;
	struct guest g;
	struct mconsole mc;
	bool live;
	char kernel[256];
	struct device dev[MAX_DEV];
	int ndev;
	int dirfd;
	char dest[PATH_MAX];
	bool made_dest;                 /* we created DESTDIR */
	int method;
	char method_note[300];
	const char *io_idle;
	bool synced, drained;
	long long dirty_kb;
	double t_start, t_precopy, t_sync, pause_ms, t_post, t_compress, t_fsync;
	char created[32];
	uint64_t tracked_writes;
	struct watchdog wd;
	struct iotrack *track;
	const char *after;              /* once stopped: what the guest does now */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * s (a file name, a guest's reply) made fit for a one-line message:
 * control characters escaped, and a very long one cut in the middle so
 * that what follows it in the message survives.  A message names a few,
 * so a few buffers take turns.
 */
static const char *qm(const char *s)
{
	static char buf[8][1536];
	static unsigned next;

	return quote_msg(buf[next++ % 8], sizeof(buf[0]), s);
}

/*
 * The library's message, for qm().  Its buffer is cut at UBDK_ERR_MSG_MAX
 * when a long path fills it: then a message of ours that keeps the reason.
 */
static const char *lib_msg(const struct ubdk_err *err, const char *path)
{
	static char buf[2048];
	char reason[64], name[256];

	if (strlen(err->msg) + 1 < sizeof(err->msg))
		return err->msg;
	if (err->code == UBDK_E_SYS)
		snprintf(reason, sizeof(reason), "%s", strerror(err->errnum));
	else
		snprintf(reason, sizeof(reason), "%s", ubdk_errcode_name(err->code));
	for (char *p = reason; *p; p++)
		*p = *p == '-' ? ' ' : *p;
	snprintf(buf, sizeof(buf), "%s: %s", quote_elide(name, sizeof(name), path), reason);
	return buf;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [OPTIONS] GUEST DESTDIR\n"
		"       %s [OPTIONS] --offline COW... DESTDIR\n"
		"       %s restore [-f] [-q] [-j] FILE [OUTPUT]\n"
		"       %s verify [-q] [-j] DESTDIR   (or: %s --verify DESTDIR)\n"
		"Back up the COW files of a UML guest, running or not, into DESTDIR.\n"
		"GUEST is a umid (in --uml-dir, default ~/.uml) or the path of the\n"
		"guest's mconsole socket.\n\n"
		"  -d, --device DEV      only this ubd device (ubd0..ubd15 or ubda..ubdp);\n"
		"                        repeat or separate with commas; default: all\n"
		"  -u, --uml-dir DIR     where the umid directories are\n"
		"  -c, --compress[=FMT]  compress after the guest resumed: lz4 (default)\n"
		"                        or gzip\n"
		"  -l, --level N         compression level (lz4: 1-12, gzip: 1-9)\n"
		"  -m, --method M        auto (default), reflink, tracked, compare, copy\n"
		"      --no-sync         do not sync the guest before stopping it\n"
		"      --sync-timeout S  wait at most S seconds for dirty data (default 5)\n"
		"  -t, --timeout S       seconds to wait for an mconsole reply (default 5)\n"
		"      --offline         back up COW files of a guest that is not running\n"
		"      --verify          check the backup against its manifest afterwards\n"
		"  -f, --force           replace an existing backup or output file\n"
		"  -j, --json            print the manifest (or result) as JSON on stdout\n"
		"  -q, --quiet           no summary on stderr\n"
		"  -h, --help            show this help\n"
		"      --version         show the version\n\n"
		"Exit status: 0 done; 1 I/O error or verification failed; 2 usage;\n"
		"3 no such guest, guest not answering or gone; 4 no such device, device\n"
		"without COW, COW unusable; 5 destination exists, unwritable or full;\n"
		"6 files in use by a running guest (--offline); 7 interrupted.\n",
		cli_prog, cli_prog, cli_prog, cli_prog, cli_prog);
}

static bool parse_seconds(const char *s, int *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v <= 0 || v > 86400)
		return false;
	*ms = (int)(v * 1000);
	return *ms > 0;
}

/* "ubd3", "ubdd", "3", "d" -> 3; -1 if not a device name. */
static int parse_unit(const char *s)
{
	char *end;
	long n;

	if (!strncmp(s, "ubd", 3))
		s += 3;
	if (s[0] >= 'a' && s[0] <= 'p' && s[1] == '\0')
		return s[0] - 'a';
	if (s[0] < '0' || s[0] > '9')
		return -1;
	n = strtol(s, &end, 10);
	return *end || n < 0 || n >= MAX_DEV ? -1 : (int)n;
}

static int parse_args(int argc, char **argv, struct options *o, int *mode)
{
	enum { OPT_VERSION = 256, OPT_NOSYNC, OPT_SYNCTO, OPT_OFFLINE, OPT_VERIFY };
	static const struct option longopts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "uml-dir", required_argument, NULL, 'u' },
		{ "compress", optional_argument, NULL, 'c' },
		{ "level", required_argument, NULL, 'l' },
		{ "method", required_argument, NULL, 'm' },
		{ "no-sync", no_argument, NULL, OPT_NOSYNC },
		{ "sync-timeout", required_argument, NULL, OPT_SYNCTO },
		{ "timeout", required_argument, NULL, 't' },
		{ "offline", no_argument, NULL, OPT_OFFLINE },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "force", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c, nargs;
	unsigned v;

	o->timeout_ms = 5000;
	o->sync_timeout_ms = 5000;
	*mode = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "d:u:c::l:m:t:fjqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': {
			/* Cut in place: argv outlives the options (no copy to free). */
			char *save = NULL, *tok;

			for (tok = strtok_r(optarg, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				if (o->ndevices == MAX_DEV) {
					cli_error("too many devices (at most %d)", MAX_DEV);
					return -1;
				}
				if (parse_unit(tok) < 0) {
					cli_error("%s: not a ubd device name (ubd0..ubd15, "
						  "ubda..ubdp)", qm(tok));
					return -1;
				}
				o->devices[o->ndevices++] = tok;
			}
			break;
		}
		case 'u':
			o->uml_dir = optarg;
			break;
		case 'c':
			/* "-c gzip" as well as "-cgzip" and "--compress=gzip". */
			if (!optarg && optind < argc && pack_parse(argv[optind]) > 0)
				optarg = argv[optind++];
			o->compress = optarg ? pack_parse(optarg) : PACK_LZ4;
			if (o->compress < 0) {
				cli_error("--compress: unknown format '%s' (lz4 or gzip)", qm(optarg));
				return -1;
			}
			break;
		case 'l':
			if (!cli_parse_u32(optarg, &v) || v < 1 || v > 12) {
				cli_error("--level: '%s' is not a level from 1 to 12", qm(optarg));
				return -1;
			}
			o->level = (int)v;
			break;
		case 'm':
			o->method = -1;
			for (int i = 0; i < 5; i++)
				if (!strcmp(optarg, method_names[i]) ||
				    (i == M_TRACK && !strcmp(optarg, "track")))
					o->method = i;
			if (o->method < 0) {
				cli_error("--method: unknown method '%s' (auto, reflink, "
					  "tracked, compare or copy)", qm(optarg));
				return -1;
			}
			break;
		case 't':
			if (!parse_seconds(optarg, &o->timeout_ms)) {
				cli_error("--timeout: '%s' is not a number of seconds", qm(optarg));
				return -1;
			}
			break;
		case OPT_SYNCTO:
			if (!parse_seconds(optarg, &o->sync_timeout_ms)) {
				cli_error("--sync-timeout: '%s' is not a number of seconds", qm(optarg));
				return -1;
			}
			break;
		case OPT_NOSYNC:
			o->no_sync = true;
			break;
		case OPT_OFFLINE:
			o->offline = true;
			break;
		case OPT_VERIFY:
			o->verify = true;
			break;
		case 'f':
			o->force = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case OPT_VERSION:
			cli_version();
			exit(0);
		default:
			cli_bad_option(argv, optopt);
			return -1;
		}
	}
	nargs = argc - optind;
	/* The subcommand is the first word that is not an option. */
	if (nargs > 0 && (!strcmp(argv[optind], "restore") || !strcmp(argv[optind], "verify"))) {
		*mode = argv[optind][0];
		optind++;
		nargs--;
	}
	if (*mode == 0 && o->verify && nargs == 1)
		*mode = 'v';
	if (*mode == 'r') {
		if (nargs < 1 || nargs > 2) {
			cli_error("restore takes FILE and an optional OUTPUT (see --help)");
			return -1;
		}
		o->input = argv[optind];
		o->output = nargs == 2 ? argv[optind + 1] : NULL;
		if (o->output && !*o->output) {
			cli_error("restore: OUTPUT is an empty name");
			return -1;
		}
		return 0;
	}
	if (*mode == 'v') {
		if (nargs != 1) {
			cli_error("verify takes one DESTDIR (see --help)");
			return -1;
		}
		o->dest = argv[optind];
		return 0;
	}
	if (o->offline) {
		if (nargs < 2) {
			cli_error("--offline takes COW files and a DESTDIR (see --help)");
			return -1;
		}
		if (nargs - 1 > MAX_DEV) {
			cli_error("too many COW files (at most %d)", MAX_DEV);
			return -1;
		}
		for (int i = 0; i < nargs - 1; i++)
			o->files[o->nfiles++] = argv[optind + i];
		o->dest = argv[argc - 1];
		return 0;
	}
	if (nargs != 2) {
		cli_error("expected GUEST and DESTDIR (see --help)");
		return -1;
	}
	o->guest = argv[optind];
	o->dest = argv[optind + 1];
	return 0;
}

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
	for (int i = 0; i < 12000 && !interrupted && access(path, F_OK) == 0; i++)
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
		cli_error("%s: the guest exited (during '%s')", qm(b->g.umid), qm(cmd));
	else if (ret == -ETIMEDOUT)
		cli_error("%s: mconsole not answering: no reply to '%s' in %g s (%s)",
			  qm(b->g.umid), qm(cmd), b->o->timeout_ms / 1000.0, qm(b->g.sock));
	else
		cli_error("%s: '%s': %s", qm(b->g.umid), qm(cmd), mc_strerror(ret));
	return EXIT_GUEST;
}

static int command(struct backup *b, const char *cmd, struct mc_reply *r)
{
	return mc_command(&b->mc, cmd, r);
}

/* --- devices ------------------------------------------------------------ */

static int read_header(struct device *d, const char *what)
{
	struct ubdk_err err = { 0 };
	struct ubdk_geometry geo;
	char name[256];

	/* The name is only for messages: short enough to leave room for why. */
	quote_elide(name, sizeof(name), d->cow);
	if (ubdk_header_read_fd(d->src, name, &d->hdr, &geo, &err) < 0) {
		if (err.code == UBDK_E_SYS)
			cli_error("%s: %s: cannot read: %s", d->name, qm(d->cow),
				  strerror(err.errnum));
		else if (err.code == UBDK_E_BAD_MAGIC || err.code == UBDK_E_SHORT_HEADER)
			cli_error("%s: %s is not a COW file (%s); uml_backup copies "
				  "COW files%s", d->name, qm(d->cow), what,
				  d->unit >= 0 ? ": choose devices with -d" : "");
		else
			cli_error("%s", qm(err.msg));
		return EXIT_DEVICE;
	}
	return 0;
}

static int open_source(struct device *d)
{
	/* The name comes from the user or the guest: it may be a FIFO. */
	int fd = input_open(d->cow, &d->st);

	if (fd < 0) {
		cli_error("%s: %s: %s%s", d->name, qm(d->cow), fd == INPUT_E_TYPE ||
			  fd == -EISDIR ? "" : "cannot open: ", input_strerror(fd));
		return EXIT_DEVICE;
	}
	d->src = fd;
	if (!S_ISREG(d->st.st_mode)) {
		cli_error("%s: %s: a block device, not a COW file", d->name, qm(d->cow));
		return EXIT_DEVICE;
	}
	return 0;
}

/* Ask the guest about ubdN; 1 if not configured (and not required). */
static int query_device(struct backup *b, int unit, bool required)
{
	struct device *d = &b->dev[b->ndev];
	struct mc_reply r;
	char cmd[32], *comma;
	int ret, st;

	memset(d, 0, sizeof(*d));
	d->src = -1;
	d->af.fd = d->zf.fd = -1;
	d->unit = unit;
	snprintf(d->name, sizeof(d->name), "ubd%d", unit);
	snprintf(cmd, sizeof(cmd), "config %s", d->name);
	ret = command(b, cmd, &r);
	if (ret < 0)
		return guest_error(b, ret, cmd);
	if (r.err) {
		cli_error("%s: no such device in guest %s (%s)", d->name, qm(b->g.umid), qm(r.text));
		mc_reply_free(&r);
		return EXIT_DEVICE;
	}
	if (!r.text[0]) {
		mc_reply_free(&r);
		if (!required)
			return 1;
		cli_error("%s: not configured in guest %s", d->name, qm(b->g.umid));
		return EXIT_DEVICE;
	}
	comma = strchr(r.text, ',');
	if (comma)
		*comma = '\0';
	ret = guest_abspath(&b->g, r.text, d->cow, sizeof(d->cow));
	if (ret < 0) {
		cli_error("%s: %s: a relative path, and the guest's working directory "
			  "is unknown", d->name, qm(r.text));
		mc_reply_free(&r);
		return EXIT_DEVICE;
	}
	mc_reply_free(&r);
	st = open_source(d);
	if (st)
		return st;
	ret = guest_has_open(&b->g, d->cow, d->st.st_dev, d->st.st_ino);
	if (ret == 2) {
		cli_error("%s: %s is not the file the guest has open (renamed or "
			  "replaced?)", d->name, qm(d->cow));
		return EXIT_DEVICE;
	}
	st = read_header(d, "the device has no COW file");
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
			int unit = parse_unit(o->devices[i]);

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
		cli_error("%s: the guest has no ubd devices", qm(b->g.umid));
		return EXIT_DEVICE;
	}
	return 0;
}

/* --- destination -------------------------------------------------------- */

static int prepare_dest(struct backup *b)
{
	const struct options *o = b->o;
	struct stat st;

	snprintf(b->dest, sizeof(b->dest), "%s", o->dest);
	if (mkdir(o->dest, 0755) == 0)
		b->made_dest = true;
	else if (errno != EEXIST) {
		cli_error("%s: cannot create the directory: %s", qm(o->dest), strerror(errno));
		return EXIT_DEST;
	}
	b->dirfd = open(o->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->dirfd < 0) {
		cli_error("%s: %s", qm(o->dest), errno == ENOTDIR ? "not a directory" :
			  strerror(errno));
		return EXIT_DEST;
	}
	if (!o->force && fstatat(b->dirfd, MANIFEST, &st, 0) == 0) {
		cli_error("%s: already holds a backup (%s); use -f to replace it",
			  qm(o->dest), MANIFEST);
		return EXIT_DEST;
	}
	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];
		char path[PATH_MAX + 80];
		int ret;

		char file[sizeof(d->file)];

		/*
		 * Through a local: gcc's -Wrestrict cannot tell that the suffix
		 * (a string constant) is not inside *b, which holds d->file.
		 */
		snprintf(file, sizeof(file), "%s.cow%s", d->name, pack_suffix(o->compress));
		memcpy(d->file, file, sizeof(file));
		if (!o->force && fstatat(b->dirfd, d->file, &st, 0) == 0) {
			cli_error("%s/%s: already exists; use -f to replace it", qm(o->dest), qm(d->file));
			return EXIT_DEST;
		}
		snprintf(path, sizeof(path), "%s/%s.cow", o->dest, d->name);
		ret = atomic_open(&d->af, b->dirfd, path, 0644, true);
		if (ret < 0) {
			cli_error("%s: cannot create files: %s", qm(o->dest), strerror(-ret));
			return EXIT_DEST;
		}
		d->data_bytes = extent_data_bytes(d->src, (uint64_t)d->st.st_size);
	}
	return 0;
}

/* A copy that cannot fit is refused before the guest is touched. */
static int check_space(struct backup *b)
{
	struct statvfs vfs;
	uint64_t need = 0, avail;

	if (b->method == M_REFLINK || fstatvfs(b->dirfd, &vfs) < 0)
		return 0;
	for (int i = 0; i < b->ndev; i++)
		need += b->dev[i].data_bytes;
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (avail < need + need / 64) {
		cli_error("%s: not enough space: the copy needs %.1f MiB, %.1f MiB free",
			  qm(b->o->dest), (double)need / 1048576.0, (double)avail / 1048576.0);
		return EXIT_DEST;
	}
	return 0;
}

static int dest_error(struct backup *b, const struct snap_ctx *c, int ret)
{
	(void)b;
	if (ret == -EINTR)
		return EXIT_INTERRUPTED;
	cli_error("%s", qm(c->msg[0] ? c->msg : strerror(-ret)));
	return ret == -ENOSPC || ret == -EFBIG || ret == -EDQUOT || ret == -EROFS ||
	       ret == -EACCES ? EXIT_DEST : EXIT_FAILED;
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
	double t0 = now(), deadline = t0 + o->sync_timeout_ms / 1000.0;
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
		cli_error("%s: warning: 'sysrq s' failed: %s", qm(b->g.umid), qm(r.text));
	b->synced = !r.err;
	mc_reply_free(&r);
	for (;;) {
		usleep(20000);
		if (interrupted)
			return EXIT_INTERRUPTED;
		st = meminfo(b, &dirty, &wb);
		if (st)
			return st;
		if (dirty < 0 || wb < 0) {
			if (!o->quiet)
				cli_error("%s: warning: 'proc meminfo' shows no Dirty or "
					  "Writeback; not waiting for the sync", qm(b->g.umid));
			break;
		}
		b->dirty_kb = dirty + wb;
		if (wb == 0 && (dirty <= 256 || dirty * 4 <= before)) {
			b->drained = true;
			break;
		}
		if (now() > deadline) {
			if (!o->quiet)
				cli_error("%s: warning: the guest still had %lld kB dirty "
					  "after %g s of syncing; the backup is "
					  "crash-consistent without them", qm(b->g.umid),
					  b->dirty_kb, o->sync_timeout_ms / 1000.0);
			break;
		}
	}
	b->t_sync = now() - t0;
	return 0;
}

/* --- the copy ----------------------------------------------------------- */

static void snap_of(struct device *d, struct snap_file *f)
{
	f->src = d->src;
	f->dst = d->af.fd;
	f->src_name = d->cow;
	f->dst_name = d->file;
	f->size = (uint64_t)d->st.st_size;
}

static int choose_method(struct backup *b)
{
	const struct options *o = b->o;
	struct snap_ctx c = { .intr = &interrupted };
	char why[256];
	int ret;

	b->method = o->method;
	if (o->method == M_AUTO || o->method == M_REFLINK) {
		bool ok = true;

		for (int i = 0; i < b->ndev && ok; i++) {
			struct snap_file f;

			snap_of(&b->dev[i], &f);
			ret = snap_reflink(&f, &c);
			if (ret < 0 && !snap_no_reflink(ret))
				return dest_error(b, &c, ret);
			ok = ret == 0;
			if (!ok && o->method == M_REFLINK) {
				cli_error("%s: the filesystem cannot share extents with %s "
					  "(FICLONE: %s); use another --method", qm(o->dest),
					  qm(b->dev[i].cow), strerror(-ret));
				return EXIT_DEST;
			}
		}
		if (ok) {
			b->method = M_REFLINK;
			return 0;
		}
		b->method = M_AUTO;
	}
	if (!b->live) {
		b->method = M_COPY;
		return 0;
	}
	if (b->method == M_AUTO || b->method == M_TRACK) {
		struct iotrack_file files[MAX_DEV];

		for (int i = 0; i < b->ndev; i++)
			files[i] = (struct iotrack_file){ b->dev[i].st.st_dev, b->dev[i].st.st_ino,
							   (uint64_t)b->dev[i].st.st_size };
		ret = b->g.pid ? iotrack_start(&b->track, b->g.pid, files, b->ndev, why,
					      sizeof(why)) : -ESRCH;
		if (ret == 0) {
			b->method = M_TRACK;
			return 0;
		}
		if (!b->g.pid)
			snprintf(why, sizeof(why), "the guest's pid is unknown (no %.180s/pid)",
				 b->g.dir);
		if (b->method == M_TRACK) {
			cli_error("%s: %s; use --method compare", qm(b->g.umid), qm(why));
			return EXIT_FAILED;
		}
		snprintf(b->method_note, sizeof(b->method_note), "not tracked: %s", why);
		b->method = M_COMPARE;
	}
	return 0;
}

/* Copy everything while the guest runs, then catch up with its writes. */
static int precopy(struct backup *b)
{
	/* No writeback here: it would hold the copy to the disk's speed. */
	struct snap_ctx c = { .intr = &interrupted };
	double t0 = now();
	int ret;

	if (b->method == M_REFLINK || b->method == M_COPY)
		return 0;
	for (int i = 0; i < b->ndev; i++) {
		struct snap_file f;

		snap_of(&b->dev[i], &f);
		ret = snap_copy(&f, &c);
		if (ret < 0)
			return dest_error(b, &c, ret);
	}
	b->t_precopy = now() - t0;
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
		uint64_t nb, n = 0, *bits = iotrack_take(b->track, i, &nb);

		if (!bits) {
			snprintf(c->msg, sizeof(c->msg), "out of memory");
			return -ENOMEM;
		}
		for (uint64_t w = 0; w < (nb + 63) / 64; w++)
			n += (uint64_t)__builtin_popcountll(bits[w]);
		*dirty_bytes += n * IOTRACK_BLOCK;
		snap_of(&b->dev[i], &f);
		ret = snap_ranges(&f, bits, nb, IOTRACK_BLOCK, c);
		free(bits);
		b->dev[i].paused_bytes = c->written - before;
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int catch_up_running(struct backup *b)
{
	struct snap_ctx c = { .intr = &interrupted };
	uint64_t dirty;
	int ret;

	if (b->method != M_TRACK)
		return 0;
	/* Like live migration: a few rounds, until little is left. */
	for (int round = 0; round < 4; round++) {
		if (!iotrack_ok(b->track, NULL, 0))
			return 0;
		ret = catch_up(b, &c, &dirty);
		if (ret < 0)
			return dest_error(b, &c, ret);
		if (dirty <= (8U << 20))
			break;
	}
	return 0;
}

/* While the guest is stopped: make the copies equal to the COW files. */
static int paused_copy(struct backup *b, struct snap_ctx *c)
{
	char why[256];
	uint64_t dirty;
	int ret;

	if (b->method == M_TRACK && !iotrack_ok(b->track, why, sizeof(why))) {
		snprintf(b->method_note, sizeof(b->method_note),
			 "tracking lost (%s): compared everything", why);
		b->method = M_COMPARE;
	}
	if (b->method == M_TRACK) {
		stall_hook();
		return catch_up(b, c, &dirty);
	}
	for (int i = 0; i < b->ndev; i++) {
		struct snap_file f;
		uint64_t before = c->written;

		snap_of(&b->dev[i], &f);
		stall_hook();
		switch (b->method) {
		case M_REFLINK:
			ret = snap_reflink(&f, c);
			if (ret < 0 && !c->msg[0])
				snprintf(c->msg, sizeof(c->msg), "%s: cloning: %s", f.dst_name,
					 strerror(-ret));
			break;
		case M_COMPARE:
			ret = snap_compare(&f, c);
			break;
		default:
			ret = snap_copy(&f, c);
			break;
		}
		b->dev[i].paused_bytes = c->written - before;
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void utc_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	char day[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%.20s.%03dZ", day, (int)(ts.tv_nsec / 1000000));
}

/*
 * Send `go` until the guest answers; the signal flag must not stop this.
 * Returns 0 or the mconsole error (the caller words the message) and sets
 * b->after, what the guest is doing now.
 */
static int resume_guest(struct backup *b)
{
	struct mc_reply r;
	int ret = -ETIMEDOUT;

	b->mc.interrupt = NULL;
	for (int attempt = 0; attempt < 3 && ret == -ETIMEDOUT; attempt++)
		ret = command(b, "go", &r);
	b->mc.interrupt = &interrupted;
	if (ret == 0) {
		mc_reply_free(&r);
		watchdog_release(&b->wd);
		b->after = "the guest is running";
	} else if (ret == -ECONNREFUSED || ret == -ENOENT) {
		watchdog_release(&b->wd);
		b->after = "the guest exited";
	} else {
		/* The watchdog keeps trying for a minute. */
		watchdog_abandon(&b->wd);
		b->after = "the guest may still be stopped: it does not answer 'go'; "
			   "the watchdog keeps trying for 60 s";
	}
	return ret;
}

static int pause_and_copy(struct backup *b)
{
	bool paused = false, already = false, gone = false, stop_lost = false;
	struct snap_ctx c = { .intr = &interrupted, .tick = tick, .arg = &paused };
	struct mc_reply r;
	double t0;
	int ret, status = 0;

	t0 = now();
	utc_now(b->created, sizeof(b->created));
	ret = command(b, "stop", &r);
	if (ret == 0) {
		if (r.err && strstr(r.text, "Already stopped")) {
			/* Somebody else stopped it: leave it as we found it. */
			already = true;
			watchdog_release(&b->wd);
			b->after = "the guest was already stopped and is left stopped";
			if (!b->o->quiet)
				cli_error("%s: note: the guest was already stopped; it is "
					  "left stopped", qm(b->g.umid));
		} else if (r.err) {
			cli_error("%s: 'stop' failed: %s", qm(b->g.umid), qm(r.text));
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
			b->after = "the guest exited";
	}
	if (status == 0) {
		paused = true;
		ret = guest_wait_io_idle(&b->g, 10000, &interrupted, &b->io_idle);
		if (ret == -ESRCH) {
			cli_error("%s: the guest exited during the backup", qm(b->g.umid));
			status = EXIT_GUEST;
			gone = true;
			b->after = "the guest exited";
		} else if (ret == -ETIMEDOUT) {
			cli_error("%s: the guest's I/O thread still had work in flight "
				  "after 10 s", qm(b->g.umid));
			status = EXIT_FAILED;
		} else if (ret == -EINTR) {
			status = EXIT_INTERRUPTED;
		}
	}
	if (status == 0) {
		ret = paused_copy(b, &c);
		if (ret < 0)
			status = dest_error(b, &c, ret);
	}
	if (already || gone) {
		watchdog_release(&b->wd);
		b->pause_ms = 0;
		return status;
	}
	/* Whatever happened: resume.  (`go` on a running guest is harmless.) */
	ret = resume_guest(b);
	b->pause_ms = (now() - t0) * 1000.0;
	if (ret == 0 && !stop_lost)
		return status;
	/* Interrupted: main() reports the signal and b->after in one line. */
	if (status == EXIT_INTERRUPTED)
		return status;
	if (stop_lost)
		cli_error("%s: mconsole not answering: no reply to 'stop' in %g s (%s); %s",
			  qm(b->g.umid), b->o->timeout_ms / 1000.0, qm(b->g.sock), b->after);
	else if (ret == -ECONNREFUSED || ret == -ENOENT)
		cli_error("%s: the guest exited during the backup", qm(b->g.umid));
	else
		cli_error("%s: mconsole not answering 'go' (%s); %s", qm(b->g.umid),
			  mc_strerror(ret), b->after);
	return status ? status : EXIT_GUEST;
}

/* --- after the pause: checksums, compression, manifest ------------------ */

struct post_ctx {
	struct pack_sums *sums;
	struct packer *packer;
};

static int post_unit(void *ctx, const uint8_t *data, size_t len)
{
	struct post_ctx *p = ctx;

	sums_unit(p->sums, data, len);
	return p->packer ? packer_unit(p->packer, data, len) : 0;
}

static int fsync_error(const char *name, int err)
{
	cli_error("%s: %s", qm(name), strerror(err));
	return err == ENOSPC || err == EDQUOT || err == EFBIG ? EXIT_DEST : EXIT_FAILED;
}

static int finish_device(struct backup *b, struct device *d)
{
	const struct options *o = b->o;
	struct post_ctx pc = { .sums = &d->sums };
	struct ubdk_err err = { 0 };
	struct ubdk_cow *cow;
	char path[PATH_MAX + 80], proc[64];
	double t0;
	int ret;

	/* The copy is a COW in its own right: count its sectors. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", d->af.fd);
	if (ubdk_cow_open(d->af.tmp ? d->af.tmp : proc, NULL,
			  UBDK_OPEN_NO_BACKING | UBDK_OPEN_NO_CHECK, &cow, &err) == 0) {
		ret = ubdk_cow_count(cow, 0, ubdk_cow_geometry(cow)->sectors,
				     &d->cow_sectors, &err);
		ubdk_cow_close(cow);
		if (ret < 0) {
			cli_error("%s: the copy's bitmap cannot be read: %s",
				  d->file, err.msg);
			return EXIT_FAILED;
		}
	} else {
		cli_error("%s: the copy is not a valid COW file: %s", qm(d->file),
			  qm(lib_msg(&err, d->af.tmp ? d->af.tmp : proc)));
		return EXIT_FAILED;
	}
	d->data_bytes = extent_data_bytes(d->af.fd, (uint64_t)d->st.st_size);
	sums_init(&d->sums);
	if (o->compress) {
		snprintf(path, sizeof(path), "%s/%s", b->dest, d->file);
		ret = atomic_open(&d->zf, b->dirfd, path, 0644, false);
		if (ret < 0) {
			cli_error("%s: cannot create: %s", qm(path), strerror(-ret));
			return EXIT_DEST;
		}
		ret = packer_open(&pc.packer, o->compress, o->level, d->zf.fd,
				  (uint64_t)d->st.st_size);
		if (ret < 0)
			return fsync_error(d->file, -ret);
	}
	t0 = now();
	ret = pack_stream_fd(d->af.fd, (uint64_t)d->st.st_size, post_unit, &pc, &interrupted);
	if (ret == 0 && pc.packer)
		ret = packer_finish(pc.packer, &d->stored_bytes);
	packer_free(pc.packer);
	b->t_compress += now() - t0;
	if (ret == -EINTR)
		return EXIT_INTERRUPTED;
	if (ret < 0)
		return fsync_error(d->file, -ret);
	sums_final(&d->sums);
	t0 = now();
	/* An uncompressed copy that only fed the compressor is not synced. */
	if (o->compress) {
		if (fsync(d->zf.fd) < 0)
			return fsync_error(d->file, errno);
		atomic_discard(&d->af);
	} else {
		/* finish() syncs it, in a thread started before the checksums. */
		d->stored_bytes = d->data_bytes;
	}
	b->t_fsync += now() - t0;
	return 0;
}

static int publish_device(struct backup *b, struct device *d)
{
	struct atomic_file *af = b->o->compress ? &d->zf : &d->af;
	char path[PATH_MAX + 80];
	int ret;

	snprintf(path, sizeof(path), "%s/%s", b->dest, d->file);
	ret = atomic_publish(af, path, b->o->force);
	if (ret < 0) {
		cli_error("%s: %s", qm(path), ret == -EEXIST ? "already exists; use -f to "
			  "replace it" : strerror(-ret));
		return ret == -EEXIST || ret == -ENOSPC || ret == -EROFS ? EXIT_DEST : EXIT_FAILED;
	}
	d->published = true;
	return 0;
}

static void json_kv_str(FILE *f, const char *key, const char *val, bool comma)
{
	fprintf(f, "%s\n  \"%s\": ", comma ? "," : "", key);
	if (val)
		quote_json(f, val);
	else
		fputs("null", f);
}

static char *manifest_text(struct backup *b, size_t *len)
{
	char *buf = NULL, tool[64];
	FILE *f = open_memstream(&buf, len);

	if (!f)
		return NULL;
	snprintf(tool, sizeof(tool), "uml_backup (ubdkit) %s", ubdk_version());
	fprintf(f, "{\n  \"format\": \"ubdkit-backup\",\n  \"version\": 1");
	json_kv_str(f, "tool", tool, true);
	json_kv_str(f, "guest", b->live ? b->g.umid : NULL, true);
	json_kv_str(f, "mconsole", b->live ? b->g.sock : NULL, true);
	json_kv_str(f, "kernel", b->live ? b->kernel : NULL, true);
	fprintf(f, ",\n  \"live\": %s", b->live ? "true" : "false");
	json_kv_str(f, "created", b->created, true);
	json_kv_str(f, "method", method_names[b->method], true);
	if (b->method_note[0])
		json_kv_str(f, "method_note", b->method_note, true);
	fprintf(f, ",\n  \"synced\": %s,\n  \"drained\": %s,\n  \"dirty_kb\": %lld",
		b->synced ? "true" : "false", b->drained ? "true" : "false", b->dirty_kb);
	json_kv_str(f, "io_idle", b->io_idle, true);
	fprintf(f, ",\n  \"pause_ms\": %.3f", b->pause_ms);
	fprintf(f, ",\n  \"timing_ms\": {\"precopy\": %.1f, \"sync\": %.1f, "
		"\"pause\": %.3f, \"checksum_compress\": %.1f, \"fsync\": %.1f, \"total\": %.1f}",
		b->t_precopy * 1000, b->t_sync * 1000, b->pause_ms,
		b->t_compress * 1000, b->t_fsync * 1000, (b->t_post - b->t_start) * 1000);
	if (b->method == M_TRACK)
		fprintf(f, ",\n  \"tracked_writes\": %llu", (unsigned long long)b->tracked_writes);
	fprintf(f, ",\n  \"devices\": [");
	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];

		fprintf(f, "%s\n    {\"device\": ", i ? "," : "");
		quote_json(f, d->name);
		fprintf(f, ", \"cow\": ");
		quote_json(f, d->cow);
		fprintf(f, ", \"backing\": ");
		quote_json(f, d->hdr.backing);
		fprintf(f, ",\n     \"size\": %llu, \"mtime\": %u, \"layout\": \"%s\", "
			"\"sectorsize\": %u,\n     \"file\": ",
			(unsigned long long)d->hdr.size, d->hdr.mtime,
			ubdk_layout_name(d->hdr.layout), d->hdr.sectorsize);
		quote_json(f, d->file);
		fprintf(f, ", \"compression\": \"%s\", \"stored_bytes\": %llu,\n"
			"     \"cow_bytes\": %llu, \"data_bytes\": %llu, \"cow_sectors\": %llu, "
			"\"paused_copy_bytes\": %llu,\n"
			"     \"checksums\": {\"crc32\": \"%s\", \"sha256_tree\": \"%s\"}}",
			pack_name(b->o->compress), (unsigned long long)d->stored_bytes,
			(unsigned long long)d->st.st_size, (unsigned long long)d->data_bytes,
			(unsigned long long)d->cow_sectors,
			(unsigned long long)d->paused_bytes, d->sums.crc_hex, d->sums.sha_hex);
	}
	fprintf(f, "\n  ]\n}\n");
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int write_manifest(struct backup *b, const char *text, size_t len)
{
	struct atomic_file af;
	char path[PATH_MAX + 32];
	int ret;

	snprintf(path, sizeof(path), "%s/%s", b->dest, MANIFEST);
	ret = atomic_open(&af, b->dirfd, path, 0644, false);
	if (ret == 0 && write(af.fd, text, len) != (ssize_t)len)
		ret = errno ? -errno : -ENOSPC;
	if (ret == 0 && fsync(af.fd) < 0)
		ret = -errno;
	if (ret == 0)
		ret = atomic_publish(&af, path, b->o->force);
	atomic_discard(&af);
	if (ret == 0 && fsync(b->dirfd) < 0)
		ret = -errno;
	if (ret < 0) {
		cli_error("%s: %s", qm(path), strerror(-ret));
		return ret == -ENOSPC || ret == -EDQUOT || ret == -EROFS ? EXIT_DEST : EXIT_FAILED;
	}
	return 0;
}

static int verify_dir(const struct options *o, const char *dir, bool print);

struct syncer {
	pthread_t thread;
	int fd, err;
	bool running;
};

static void *sync_thread(void *arg)
{
	struct syncer *s = arg;

	s->err = fsync(s->fd) < 0 ? errno : 0;
	return NULL;
}

static int finish(struct backup *b)
{
	struct syncer sync[MAX_DEV];
	char *text;
	size_t len;
	double t0;
	int st = 0;

	/*
	 * The copies go to disk (fsync, in threads) while they are read back
	 * from the page cache for their checksums: one costs I/O, the other
	 * CPU.
	 */
	memset(sync, 0, sizeof(sync));
	for (int i = 0; i < b->ndev && !b->o->compress; i++) {
		sync[i].fd = b->dev[i].af.fd;
		sync[i].running = pthread_create(&sync[i].thread, NULL, sync_thread,
						 &sync[i]) == 0;
		if (!sync[i].running)
			sync[i].err = fsync(sync[i].fd) < 0 ? errno : 0;
	}
	for (int i = 0; i < b->ndev && st == 0; i++)
		st = finish_device(b, &b->dev[i]);
	t0 = now();
	for (int i = 0; i < b->ndev && !b->o->compress; i++) {
		if (sync[i].running)
			pthread_join(sync[i].thread, NULL);
		if (st == 0 && sync[i].err)
			st = fsync_error(b->dev[i].file, sync[i].err);
	}
	b->t_fsync += now() - t0;
	if (st)
		return st;
	for (int i = 0; i < b->ndev; i++) {
		st = publish_device(b, &b->dev[i]);
		if (st)
			return st;
	}
	b->t_post = now();
	text = manifest_text(b, &len);
	if (!text) {
		cli_error("out of memory");
		return EXIT_FAILED;
	}
	st = write_manifest(b, text, len);
	if (st == 0 && b->o->json)
		fwrite(text, 1, len, stdout);
	free(text);
	return st;
}

/* Remove what this run published: without a manifest it is no backup. */
static void cleanup(struct backup *b)
{
	for (int i = 0; i < b->ndev; i++) {
		struct device *d = &b->dev[i];

		if (d->published)
			unlinkat(b->dirfd, d->file, 0);
		d->published = false;
		atomic_discard(&d->af);
		atomic_discard(&d->zf);
	}
	/* A directory we made for nothing goes too (only if empty). */
	if (b->made_dest)
		rmdir(b->dest);
}

static void summary(struct backup *b)
{
	uint64_t data = 0, stored = 0, paused = 0;

	if (b->o->quiet)
		return;
	for (int i = 0; i < b->ndev; i++) {
		data += b->dev[i].data_bytes;
		stored += b->dev[i].stored_bytes;
		paused += b->dev[i].paused_bytes;
	}
	if (b->live)
		fprintf(stderr, "%s: %s: %d device%s, %.1f MiB of COW data backed up into "
			"%s (stored: %s%s%.1f MiB); paused %.1f ms (%s, %.1f MiB copied "
			"while stopped)\n", cli_prog, qm(b->g.umid), b->ndev, b->ndev == 1 ? "" : "s",
			(double)data / 1048576.0, qm(b->dest), b->o->compress ?
			pack_name(b->o->compress) : "", b->o->compress ? " " : "",
			(double)stored / 1048576.0, b->pause_ms, method_names[b->method],
			(double)paused / 1048576.0);
	else
		fprintf(stderr, "%s: %d COW file%s, %.1f MiB of data backed up into %s "
			"(stored: %s%s%.1f MiB)\n", cli_prog, b->ndev, b->ndev == 1 ? "" : "s",
			(double)data / 1048576.0, qm(b->dest), b->o->compress ?
			pack_name(b->o->compress) : "", b->o->compress ? " " : "",
			(double)stored / 1048576.0);
}

static int backup_live(struct backup *b)
{
	const struct options *o = b->o;
	struct mc_reply r;
	int ret, st;

	ret = guest_locate(o->guest, o->uml_dir, &b->g);
	if (ret == -ENAMETOOLONG) {
		cli_error("%s: path too long for a socket", qm(o->guest));
		return EXIT_GUEST;
	}
	if (ret < 0) {
		cli_error("%s: no such guest (no mconsole socket %s)", qm(o->guest), qm(b->g.sock));
		return EXIT_GUEST;
	}
	ret = mc_open(&b->mc, b->g.sock, o->timeout_ms);
	if (ret < 0) {
		if (ret == -ECONNREFUSED)
			cli_error("%s: the guest is not running (nobody listens on %s)",
				  qm(b->g.umid), qm(b->g.sock));
		else
			cli_error("%s: %s: %s", qm(b->g.umid), qm(b->g.sock), mc_strerror(ret));
		return EXIT_GUEST;
	}
	b->mc.interrupt = &interrupted;
	ret = command(b, "version", &r);
	if (ret < 0)
		return guest_error(b, ret, "version");
	snprintf(b->kernel, sizeof(b->kernel), "%s", r.text);
	mc_reply_free(&r);
	st = find_devices(b);
	if (st)
		return st;
	st = prepare_dest(b);
	if (st)
		return st;
	/* Before any thread: the watchdog is a forked process. */
	ret = watchdog_start(&b->wd, b->g.sock, b->g.umid, 2000, 60);
	if (ret < 0) {
		cli_error("cannot start the watchdog: %s", strerror(-ret));
		return EXIT_FAILED;
	}
	st = choose_method(b);
	if (st == 0)
		st = check_space(b);
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
		watchdog_release(&b->wd);       /* never stopped */
	if (b->track) {
		b->tracked_writes = iotrack_writes(b->track);
		iotrack_stop(b->track);
		b->track = NULL;
	}
	if (st == 0 && interrupted)
		st = EXIT_INTERRUPTED;
	if (st == 0)
		st = finish(b);
	return st;
}

static int backup_offline(struct backup *b)
{
	const struct options *o = b->o;
	struct snap_ctx c = { .intr = &interrupted };
	struct ubdk_cow *locks[MAX_DEV] = { 0 };
	int st = 0, ret;

	for (int i = 0; i < o->nfiles && st == 0; i++) {
		struct device *d = &b->dev[b->ndev];
		struct ubdk_err err = { 0 };
		struct ubdk_backing_check chk;
		char abs[PATH_MAX];

		memset(d, 0, sizeof(*d));
		d->src = -1;
		d->af.fd = d->zf.fd = -1;
		d->unit = -1;
		snprintf(d->name, sizeof(d->name), "ubd%d", i);
		if (!realpath(o->files[i], abs)) {
			cli_error("%s: cannot open: %s", qm(o->files[i]), strerror(errno));
			st = EXIT_DEVICE;
			break;
		}
		snprintf(d->cow, sizeof(d->cow), "%s", abs);
		st = open_source(d);
		if (st == 0)
			st = read_header(d, "not made by uml_mkcow or the kernel");
		if (st)
			break;
		/* The kernel write-locks the COW of an open device. */
		if (ubdk_cow_open(d->cow, NULL, UBDK_OPEN_LOCK | UBDK_OPEN_NO_CHECK,
				  &locks[i], &err) < 0) {
			if (err.code == UBDK_E_LOCKED) {
				char prog[256];

				/* A command to paste into a shell: quoted. */
				cli_error("%s: in use by a running guest (locked); back it "
					  "up live: %s UMID DESTDIR", qm(d->cow),
					  qm(quote_shell(prog, sizeof(prog), cli_prog) ? prog : "uml_backup"));
				st = EXIT_LOCKED;
			} else {
				cli_error("%s", qm(lib_msg(&err, d->cow)));
				st = EXIT_DEVICE;
			}
			break;
		}
		if (ubdk_backing_check(&d->hdr, d->hdr.backing, &chk, &err) < 0 && !o->quiet)
			cli_error("%s: warning: %s", qm(d->cow), qm(lib_msg(&err, d->hdr.backing)));
		b->ndev++;
	}
	if (st == 0)
		st = prepare_dest(b);
	if (st == 0)
		st = choose_method(b);
	if (st == 0)
		st = check_space(b);
	utc_now(b->created, sizeof(b->created));
	for (int i = 0; st == 0 && i < b->ndev; i++) {
		struct snap_file f;

		snap_of(&b->dev[i], &f);
		ret = b->method == M_REFLINK ? 0 : snap_copy(&f, &c);
		if (ret < 0)
			st = dest_error(b, &c, ret);
	}
	if (st == 0)
		st = finish(b);
	for (int i = 0; i < MAX_DEV; i++)
		if (locks[i])
			ubdk_cow_close(locks[i]);
	return st;
}

/* --- verify --------------------------------------------------------------- */

struct verify_ctx {
	struct pack_sums sums;
	uint8_t head[UBDK_HDR_MAX_SIZE];
	size_t headlen;
};

static int verify_unit(void *ctx, const uint8_t *data, size_t len)
{
	struct verify_ctx *v = ctx;

	if (v->headlen < sizeof(v->head)) {
		size_t n = sizeof(v->head) - v->headlen < len ? sizeof(v->head) - v->headlen : len;

		if (data)
			memcpy(v->head + v->headlen, data, n);
		else
			memset(v->head + v->headlen, 0, n);
		v->headlen += n;
	}
	sums_unit(&v->sums, data, len);
	return 0;
}

/* Read the manifest of dir; NULL after a message. */
static struct json *read_manifest(const char *dir)
{
	char path[PATH_MAX + 32], err[128], *text;
	struct json *j;
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, MANIFEST);
	fd = input_open(path, &st);
	if (fd >= 0 && !S_ISREG(st.st_mode)) {
		close(fd);
		fd = INPUT_E_TYPE;
	}
	if (fd < 0) {
		cli_error("%s: %s", qm(path), fd == -ENOENT ? "no manifest: not a complete "
			  "backup" : input_strerror(fd));
		return NULL;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text || read(fd, text, (size_t)st.st_size) != st.st_size) {
		cli_error("%s: cannot read", qm(path));
		free(text);
		close(fd);
		return NULL;
	}
	close(fd);
	j = json_parse(text, (size_t)st.st_size, err, sizeof(err));
	free(text);
	if (!j || !json_get(j, "devices") || json_get(j, "devices")->type != JSON_ARRAY) {
		cli_error("%s: not a uml_backup manifest%s%s", qm(path), j ? "" : ": ", j ? "" : err);
		json_free(j);
		return NULL;
	}
	/* Every backup has a device: an empty list would check nothing. */
	if (json_get(j, "devices")->n == 0) {
		cli_error("%s: the manifest lists no devices", qm(path));
		json_free(j);
		return NULL;
	}
	return j;
}

/* Check one device's file; NULL if fine, else what is wrong (static buffer). */
static const char *verify_device(const char *dir, const struct json *dv, bool *io_error)
{
	static char problem[600];
	const char *file = json_str(dv, "file"), *comp = json_str(dv, "compression");
	const struct json *sums = json_get(dv, "checksums");
	const char *crc = json_str(sums, "crc32"), *sha = json_str(sums, "sha256_tree");
	const char *backing = json_str(dv, "backing");
	struct verify_ctx v;
	struct ubdk_backing_check chk;
	struct ubdk_header h;
	struct ubdk_err err = { 0 };
	struct stat st;
	uint64_t size = 0, mtime = 0, cow_bytes = 0, total = 0;
	char path[PATH_MAX + 80], msg[200];
	int fd, ret, fmt;

	*io_error = false;
	if (!file || !comp || !crc || !sha || !backing || strchr(file, '/') ||
	    !json_u64(dv, "size", &size) || !json_u64(dv, "mtime", &mtime) ||
	    !json_u64(dv, "cow_bytes", &cow_bytes) || (fmt = pack_parse(comp)) < 0)
		return "incomplete entry in the manifest";
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = input_open(path, &st);
	if (fd >= 0 && !S_ISREG(st.st_mode)) {
		close(fd);
		fd = INPUT_E_TYPE;
	}
	if (fd < 0) {
		snprintf(problem, sizeof(problem), "%s%s", fd == INPUT_E_TYPE ||
			 fd == -EISDIR ? "" : "cannot open: ", input_strerror(fd));
		return problem;
	}
	memset(&v, 0, sizeof(v));
	sums_init(&v.sums);
	if (fmt == PACK_NONE) {
		ret = pack_stream_fd(fd, (uint64_t)st.st_size, verify_unit, &v, &interrupted);
		total = (uint64_t)st.st_size;
		msg[0] = '\0';
	} else {
		ret = pack_decompress(fd, fmt, verify_unit, &v, &total, &interrupted, msg,
				      sizeof(msg));
	}
	close(fd);
	if (ret < 0) {
		*io_error = ret != -EBADMSG;
		snprintf(problem, sizeof(problem), "%s", msg[0] ? msg : strerror(-ret));
		return problem;
	}
	sums_final(&v.sums);
	if (total != cow_bytes) {
		snprintf(problem, sizeof(problem), "holds %llu bytes, the manifest says %llu",
			 (unsigned long long)total, (unsigned long long)cow_bytes);
		return problem;
	}
	if (strcmp(v.sums.crc_hex, crc) || strcmp(v.sums.sha_hex, sha)) {
		snprintf(problem, sizeof(problem), "checksum mismatch (crc32 %s, manifest %s)",
			 v.sums.crc_hex, crc);
		return problem;
	}
	if (ubdk_header_decode(v.head, v.headlen, file, &h, &err) < 0)
		return "not a COW file";
	/* The manifest holds the header's name as quote_json() wrote it. */
	if (!quote_json_matches(h.backing, backing) || h.size != size ||
	    h.mtime != (uint32_t)mtime)
		return "its COW header differs from the manifest";
	/* Bootable as it is: the backing file must still match the header. */
	if (ubdk_backing_check(&h, h.backing, &chk, &err) < 0) {
		snprintf(problem, sizeof(problem), "the backing file changed: %s",
			 lib_msg(&err, h.backing));
		return problem;
	}
	return NULL;
}

static int verify_dir(const struct options *o, const char *dir, bool print)
{
	struct json *j = read_manifest(dir);
	const struct json *devs;
	int bad = 0, io = 0;

	if (!j)
		return EXIT_FAILED;
	devs = json_get(j, "devices");
	if (print && o->json)
		printf("{\"verified\": [");
	for (size_t i = 0; i < devs->n; i++) {
		const char *file = json_str(devs->items[i], "file");
		bool io_error;
		const char *problem = verify_device(dir, devs->items[i], &io_error);

		if (interrupted) {
			json_free(j);
			return EXIT_INTERRUPTED;
		}
		if (problem) {
			cli_error("%s/%s: %s", qm(dir), qm(file ? file : "?"), qm(problem));
			bad++;
			io += io_error;
		} else if (print && !o->quiet && !o->json) {
			fprintf(stderr, "%s: %s/%s: OK\n", cli_prog, qm(dir), qm(file));
		}
		if (print && o->json) {
			printf("%s{\"file\": ", i ? ", " : "");
			quote_json(stdout, file ? file : "");
			printf(", \"ok\": %s, \"problem\": ", problem ? "false" : "true");
			if (problem)
				quote_json(stdout, problem);
			else
				printf("null");
			printf("}");
		}
	}
	if (print && o->json)
		printf("], \"ok\": %s}\n", bad ? "false" : "true");
	json_free(j);
	return bad ? EXIT_FAILED : 0;
}

/* --- restore -------------------------------------------------------------- */

struct restore_ctx {
	struct sparse_out out;
	struct pack_sums sums;
};

static int restore_unit(void *ctx, const uint8_t *data, size_t len)
{
	struct restore_ctx *r = ctx;

	sums_unit(&r->sums, data, len);
	return sparse_unit(&r->out, data, len);
}

static int restore(const struct options *o)
{
	char out[PATH_MAX], dir[PATH_MAX], msg[200], mpath[PATH_MAX + 32];
	const char *base = strrchr(o->input, '/'), *expect_crc = NULL, *expect_sha = NULL;
	struct restore_ctx rc;
	struct atomic_file af = { .fd = -1 };
	struct json *manifest = NULL;
	struct stat st;
	uint64_t total = 0;
	int fd, fmt, ret, dirfd;
	double t0 = now();

	base = base ? base + 1 : o->input;
	fd = input_open(o->input, &st);
	if (fd < 0) {
		cli_error("%s: %s%s", qm(o->input), fd == INPUT_E_TYPE || fd == -EISDIR ? "" :
			  "cannot open: ", input_strerror(fd));
		return EXIT_FAILED;
	}
	fmt = pack_detect(fd);
	if (fmt < 0) {
		cli_error("%s: not an LZ4 or gzip file (an uncompressed backup is a COW "
			  "file already)", qm(o->input));
		close(fd);
		return EXIT_FAILED;
	}
	if (o->output) {
		snprintf(out, sizeof(out), "%s", o->output);
	} else {
		const char *suffix = pack_suffix(fmt);
		size_t l = strlen(o->input), sl = strlen(suffix);

		if (l <= sl || strcmp(o->input + l - sl, suffix)) {
			cli_error("%s: no %s suffix to strip: name the OUTPUT", qm(o->input), suffix);
			close(fd);
			return EXIT_USAGE;
		}
		snprintf(out, sizeof(out), "%.*s", (int)(l - sl), o->input);
	}
	/* -f replaces a file, never a directory or a device node, FIFO, socket. */
	if (lstat(out, &st) == 0 && (!o->force || !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))) {
		cli_error("%s: %s", qm(out), S_ISDIR(st.st_mode) ? "is a directory; name the "
			  "output file" : !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) ?
			  "not a regular file; not replacing it" :
			  "already exists; use -f to replace it");
		close(fd);
		return EXIT_DEST;
	}
	/* The manifest next to the file, if it lists it, has its checksums. */
	atomic_dir_of(o->input, dir, sizeof(dir));
	snprintf(mpath, sizeof(mpath), "%s/%s", dir, MANIFEST);
	if (lstat(mpath, &st) == 0) {
		const struct json *devs, *entry = NULL;

		/* A manifest that cannot be read must not pass as checked. */
		manifest = read_manifest(dir);
		if (!manifest) {
			close(fd);
			return EXIT_FAILED;
		}
		devs = json_get(manifest, "devices");
		for (size_t i = 0; i < devs->n; i++) {
			const char *file = json_str(devs->items[i], "file");

			if (file && quote_json_matches(base, file))
				entry = devs->items[i];
		}
		expect_crc = json_str(json_get(entry, "checksums"), "crc32");
		expect_sha = json_str(json_get(entry, "checksums"), "sha256_tree");
		if (entry && (!expect_crc || !expect_sha)) {
			cli_error("%s: the entry of %s has no checksums", qm(mpath), qm(base));
			close(fd);
			json_free(manifest);
			return EXIT_FAILED;
		}
	}
	atomic_dir_of(out, dir, sizeof(dir));
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = dirfd < 0 ? -errno : atomic_open(&af, dirfd, out, 0644, false);
	if (ret < 0) {
		cli_error("%s: cannot create: %s", qm(out), strerror(-ret));
		close(fd);
		if (dirfd >= 0)
			close(dirfd);
		json_free(manifest);
		return EXIT_DEST;
	}
	memset(&rc, 0, sizeof(rc));
	rc.out.fd = af.fd;
	sums_init(&rc.sums);
	ret = pack_decompress(fd, fmt, restore_unit, &rc, &total, &interrupted, msg, sizeof(msg));
	close(fd);
	if (ret == 0)
		ret = sparse_finish(&rc.out);
	if (ret == 0 && fsync(af.fd) < 0)
		ret = -errno;
	sums_final(&rc.sums);
	if (ret == 0 && expect_crc && expect_sha &&
	    (strcmp(expect_crc, rc.sums.crc_hex) || strcmp(expect_sha, rc.sums.sha_hex))) {
		cli_error("%s: checksum mismatch with %s/%s (crc32 %s, manifest %s)", qm(o->input),
			  qm(dir), MANIFEST, rc.sums.crc_hex, qm(expect_crc));
		ret = -EBADMSG;
		msg[0] = '\0';
	} else if (ret == -EBADMSG) {
		cli_error("%s: %s", qm(o->input), qm(msg));
	} else if (ret < 0 && ret != -EINTR) {
		cli_error("%s: %s", qm(out), strerror(-ret));
	}
	if (ret == 0)
		ret = atomic_publish(&af, out, o->force);
	if (ret == 0)
		fsync(dirfd);
	atomic_discard(&af);
	close(dirfd);
	json_free(manifest);
	if (ret == -EINTR)
		return EXIT_INTERRUPTED;
	if (ret == -EBADMSG)
		return EXIT_FAILED;
	if (ret < 0) {
		if (ret == -EEXIST)
			cli_error("%s: already exists; use -f to replace it", qm(out));
		return ret == -ENOSPC || ret == -EDQUOT || ret == -EFBIG || ret == -EEXIST ?
		       EXIT_DEST : EXIT_FAILED;
	}
	if (o->json) {
		printf("{\"input\": ");
		quote_json(stdout, o->input);
		printf(", \"output\": ");
		quote_json(stdout, out);
		printf(", \"format\": \"%s\", "
		       "\"bytes\": %llu, \"written\": %llu, \"crc32\": \"%s\", "
		       "\"sha256_tree\": \"%s\", \"checked\": %s, \"seconds\": %.3f}\n",
		       pack_name(fmt), (unsigned long long)total,
		       (unsigned long long)rc.out.written, rc.sums.crc_hex, rc.sums.sha_hex,
		       expect_crc ? "true" : "false", now() - t0);
	}
	if (!o->quiet)
		fprintf(stderr, "%s: restored %s to %s (%.1f MiB, %.1f MiB of data)%s\n",
			cli_prog, qm(o->input), qm(out), (double)total / 1048576.0,
			(double)rc.out.written / 1048576.0,
			expect_crc ? ", checksums match the manifest" : "");
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct backup b;
	struct sigaction sa = { .sa_handler = on_signal };
	struct stat st;
	int mode, status;

	cli_init(argv[0]);
	if (parse_args(argc, argv, &o, &mode) < 0)
		return EXIT_USAGE;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: blocking calls return and see the flag. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	if (mode == 'r')
		return restore(&o);
	if (mode == 'v') {
		status = verify_dir(&o, o.dest, true);
		return status;
	}
	memset(&b, 0, sizeof(b));
	b.o = &o;
	b.dirfd = -1;
	b.mc.fd = -1;
	b.wd.fd = -1;
	b.io_idle = "none";
	b.t_start = now();
	/* A COW file given as GUEST: a guest that is not running. */
	if (!o.offline && stat(o.guest, &st) == 0 && S_ISREG(st.st_mode)) {
		o.offline = true;
		o.files[o.nfiles++] = o.guest;
	}
	b.live = !o.offline;
	status = b.live ? backup_live(&b) : backup_offline(&b);
	if (status == 0 && o.verify)
		status = verify_dir(&o, b.dest, false);
	if (status == 0)
		summary(&b);
	else if (status != EXIT_USAGE)
		cleanup(&b);
	if (status == EXIT_INTERRUPTED)
		cli_error("interrupted by signal %d%s%s", (int)interrupted,
			  b.live && b.g.umid[0] ? "; " : "", !b.live || !b.g.umid[0] ? "" :
			  b.after ? b.after : "the guest is running");
	mc_close(&b.mc);
	for (int i = 0; i < b.ndev; i++) {
		if (b.dev[i].src >= 0)
			close(b.dev[i].src);
		atomic_discard(&b.dev[i].af);
		atomic_discard(&b.dev[i].zf);
	}
	if (b.dirfd >= 0)
		close(b.dirfd);
	return status;
}
