/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * watchdog.h - make sure a stopped guest is resumed, whatever happens to us.
 *
 * A detached process (double fork, own session, ignoring SIGINT, SIGTERM
 * and SIGHUP) holds the read end of a pipe whose write end only the backup
 * holds.  When the backup releases it, it exits quietly.  When the pipe
 * closes without that - the backup crashed, was killed with SIGKILL, or
 * could not get an answer to `go` - it sends `go` itself, retrying for a
 * while if the guest does not answer.  Start it before any thread.
 */
#ifndef UBDK_WATCHDOG_H
#define UBDK_WATCHDOG_H

struct watchdog {
	int fd;                 /* write end, -1 when not running */
};

/* 0 or -errno.  retry_s: how long it keeps trying to resume. */
int watchdog_start(struct watchdog *w, const char *sock, const char *umid,
		   int timeout_ms, int retry_s);
/* The guest is running (or was never stopped): the watchdog exits. */
void watchdog_release(struct watchdog *w);
/* Leave resuming to the watchdog (it starts at once). */
void watchdog_abandon(struct watchdog *w);

#endif
