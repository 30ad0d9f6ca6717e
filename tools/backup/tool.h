/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tool.h - what the parts of uml_backup share: the options, the exit
 * statuses, the signal flag and message helpers.
 */
#ifndef UBDK_BACKUP_TOOL_H
#define UBDK_BACKUP_TOOL_H

#include <signal.h>
#include <stdbool.h>

#include "quote.h"
#include "ubdk_cow.h"

/* Documented in uml_backup(1). */
enum {
	EXIT_FAILED = 1,        /* I/O error, verification failed */
	EXIT_USAGE = 2,
	EXIT_GUEST = 3,         /* no such guest, not answering, exited */
	EXIT_DEVICE = 4,        /* no such device, no COW, unreadable COW */
	EXIT_DEST = 5,          /* destination exists, unwritable, full */
	EXIT_LOCKED = 6,        /* --offline: a running guest holds the files;
	                           restore -f: a guest or server holds OUTPUT */
	EXIT_INTERRUPTED = 7,   /* SIGINT, SIGTERM or SIGHUP */
	EXIT_CHAIN = 8,         /* --incremental, prune: the chain cannot take it */
};

enum method { M_AUTO, M_REFLINK, M_TRACK, M_COMPARE, M_COPY, M_COUNT };
extern const char *const method_names[M_COUNT];

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
	bool incremental;               /* DEST is a chain directory */
	int keep;                       /* prune --keep N */
	bool own;                       /* export --own: the point's own stream */
	int timeout_ms, sync_timeout_ms;
	/* restore */
	const char *input, *output;
};

/* "ubd3", "ubdd", "3", "d" -> 3; -1 if not a device name. */
int tool_parse_unit(const char *s);

/* The signal that asked us to stop (SIGINT, SIGTERM, SIGHUP), or 0. */
extern volatile sig_atomic_t tool_interrupted;

/* Seconds on the monotonic clock. */
double tool_now(void);

/* The time now in UTC to the millisecond, ISO 8601: extended
 * (2026-12-07T14:12:34.567Z) or basic (20261207T141234.567Z, a point's name). */
void tool_utc_stamp(char *buf, size_t len, bool basic);

/*
 * The library's message, for cli_error().  Its buffer is cut at UBDK_ERR_MSG_MAX
 * when a long path fills it: then a message of ours that keeps the reason.
 */
const char *tool_lib_msg(const struct ubdk_err *err, const char *path);

#endif
