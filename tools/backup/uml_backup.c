/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * uml_backup - point-in-time backups of a running UML guest's COW files.
 *
 *   uml_backup [OPTIONS] GUEST DESTDIR           live, GUEST = umid or socket
 *   uml_backup [OPTIONS] --offline COW... DESTDIR  a guest that is not running
 *   uml_backup restore [OPTIONS] FILE [OUTPUT]   a compressed copy to a COW
 *   uml_backup verify [OPTIONS] DESTDIR          check a backup (also --verify)
 *   uml_backup --incremental GUEST CHAINDIR      a new point in a chain
 *   uml_backup prune --keep N CHAINDIR           merge old points into a full one
 *   uml_backup export [-d DEV] POINTDIR           a device as an extent stream on stdout
 *
 * This file is the command line: options, dispatch to one file per
 * command (cmd/backup.c, restore.c, verify.c, export.c, prune.c), exit
 * statuses.  A backup's data flows:
 *
 *   guest/    the running guest's session: mconsole, sync, stop/go, the
 *             watchdog, the snapshot copies (none offline)
 *   changes/  what changed: the kernel's tracking, the I/O-thread tracer,
 *             or comparing (changes.h)
 *   chain/    the chunk scan against the parent's table
 *   run/      the run's devices and destination; writer.c: chunk tables
 *             and extent streams (format/, codec/), then the manifest
 *
 * Files appear under their names only when complete, the manifest last.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/backup.h"
#include "cli.h"
#include "cmd/export.h"
#include "cmd/prune.h"
#include "cmd/restore.h"
#include "format/stream.h"
#include "tool.h"
#include "cmd/verify.h"

static void on_signal(int sig)
{
	tool_interrupted = sig;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [OPTIONS] GUEST DESTDIR\n"
		"       %s [OPTIONS] --offline COW... DESTDIR\n"
		"       %s restore [-f] [-q] [-j] FILE [OUTPUT]   (FILE - : a stream on stdin)\n"
		"       %s restore [-f] [-q] [-j] [-d DEV] POINTDIR OUTPUT\n"
		"       %s verify [-q] [-j] DESTDIR|CHAINDIR|POINTDIR   (or: %s --verify DESTDIR)\n"
		"       %s export [-q] [--own] [-d DEV] POINTDIR   (an extent stream on stdout)\n"
		"       %s [OPTIONS] --incremental GUEST|--offline COW... CHAINDIR\n"
		"       %s prune --keep N [-q] CHAINDIR\n"
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
		"  -i, --incremental     DEST is a chain: a new point holding only the\n"
		"                        chunks changed since the newest one (the first\n"
		"                        point is full)\n"
		"  -k, --keep N          prune: keep the N newest points\n"
		"      --own             export: the point's own stream (an incremental's\n"
		"                        changed chunks), not its whole device\n"
		"  -f, --force           replace an existing backup or output file\n"
		"  -j, --json            print the manifest (or result) as JSON on stdout\n"
		"  -q, --quiet           no summary on stderr\n"
		"  -h, --help            show this help\n"
		"      --version         show the version\n\n"
		"Exit status: 0 done; 1 I/O error or verification failed; 2 usage;\n"
		"3 no such guest, guest not answering or gone; 4 no such device, device\n"
		"without COW, COW unusable; 5 destination exists, unwritable or full;\n"
		"6 files in use by a running guest (--offline) or OUTPUT in use by a guest\n"
		"or server (restore -f); 7 tool_interrupted; 8 the chain cannot take the point\n"
		"(missing or damaged link, another guest or master), or prune refused a\n"
		"damaged chain or a symbolic link in it.\n",
		cli_prog, cli_prog, cli_prog, cli_prog, cli_prog, cli_prog, cli_prog, cli_prog, cli_prog);
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

static int parse_args(int argc, char **argv, struct options *o, int *mode)
{
	enum { OPT_VERSION = 256, OPT_NOSYNC, OPT_SYNCTO, OPT_OFFLINE, OPT_VERIFY, OPT_OWN };
	bool keep_given = false;
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
		{ "own", no_argument, NULL, OPT_OWN },
		{ "incremental", no_argument, NULL, 'i' },
		{ "keep", required_argument, NULL, 'k' },
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
	while ((c = getopt_long(argc, argv, "d:u:c::l:m:t:fjqhik:", longopts, NULL)) != -1) {
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
				if (tool_parse_unit(tok) < 0) {
					cli_error("%s: not a ubd device name (ubd0..ubd15, "
						  "ubda..ubdp)", quote_name(tok));
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
				cli_error("--compress: unknown format '%s' (lz4 or gzip)",
					  quote_name(optarg));
				return -1;
			}
			break;
		case 'l':
			if (!cli_parse_u32(optarg, &v) || v < 1 || v > 12) {
				cli_error("--level: '%s' is not a level from 1 to 12",
					  quote_name(optarg));
				return -1;
			}
			o->level = (int)v;
			break;
		case 'm':
			o->method = -1;
			for (int i = 0; i < M_COUNT; i++)
				if (!strcmp(optarg, method_names[i]) ||
				    (i == M_TRACK && !strcmp(optarg, "track")))
					o->method = i;
			if (o->method < 0) {
				cli_error("--method: unknown method '%s' (auto, reflink, "
					  "tracked, compare or copy)", quote_name(optarg));
				return -1;
			}
			break;
		case 't':
			if (!parse_seconds(optarg, &o->timeout_ms)) {
				cli_error("--timeout: '%s' is not a number of seconds",
					  quote_name(optarg));
				return -1;
			}
			break;
		case OPT_SYNCTO:
			if (!parse_seconds(optarg, &o->sync_timeout_ms)) {
				cli_error("--sync-timeout: '%s' is not a number of seconds",
					  quote_name(optarg));
				return -1;
			}
			break;
		case OPT_NOSYNC:
			o->no_sync = true;
			break;
		case OPT_OFFLINE:
			o->offline = true;
			break;
		case OPT_OWN:
			o->own = true;
			break;
		case OPT_VERIFY:
			o->verify = true;
			break;
		case 'i':
			o->incremental = true;
			break;
		case 'k':
			if (!cli_parse_u32(optarg, &v) || v < 1 || v > 100000) {
				cli_error("--keep: '%s' is not a number of points from 1",
					  quote_name(optarg));
				return -1;
			}
			o->keep = (int)v;
			keep_given = true;
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
	if (nargs > 0 && (!strcmp(argv[optind], "restore") || !strcmp(argv[optind], "verify") ||
			  !strcmp(argv[optind], "prune") || !strcmp(argv[optind], "export"))) {
		*mode = argv[optind][0];
		optind++;
		nargs--;
	}
	if (o->own && *mode != 'e') {
		cli_error("--own: only with export (see --help)");
		return -1;
	}
	if (*mode == 0 && o->verify && nargs == 1)
		*mode = 'v';
	if (*mode == 'r') {
		if (nargs < 1 || nargs > 2) {
			cli_error("restore takes FILE and an optional OUTPUT (see --help)");
			return -1;
		}
		if (o->ndevices > 1) {
			cli_error("restore: one device at a time (-d)");
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
	if (*mode == 'p') {
		if (nargs != 1 || !keep_given) {
			cli_error("prune takes --keep N and one CHAINDIR (see --help)");
			return -1;
		}
		o->dest = argv[optind];
		return 0;
	}
	if (*mode == 'e') {
		if (nargs != 1) {
			cli_error("export takes one POINTDIR, a backup or a chain's point (see --help)");
			return -1;
		}
		if (o->ndevices > 1) {
			cli_error("export: one device at a time (-d)");
			return -1;
		}
		o->dest = argv[optind];
		return 0;
	}
	if (keep_given) {
		cli_error("--keep: only with prune (see --help)");
		return -1;
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

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	int mode;

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
		return restore_run(&o);
	if (mode == 'p')
		return prune_run(&o);
	if (mode == 'v')
		return verify_command(&o);
	if (mode == 'e')
		return export_point(&o);
	return backup_command(&o);
}
