/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "guest/watchdog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "guest/mconsole.h"
#include "quote.h"

/* Close every descriptor but keep. */
static void close_others(int keep)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int dfd;

	if (!d) {
		for (int fd = 3; fd < 1024; fd++)
			if (fd != keep)
				close(fd);
		return;
	}
	dfd = dirfd(d);
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);

		if (fd > 2 && fd != keep && fd != dfd && de->d_name[0] != '.')
			close(fd);
	}
	closedir(d);
}

static void resume(const char *sock, const char *umid, int timeout_ms, int retry_s)
{
	struct timespec t0, t;
	struct mconsole mc;
	struct mc_reply r;
	char word[QUOTE_SHELL_SIZE(sizeof(mc.path))];
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		ret = mc_open(&mc, sock, timeout_ms);
		if (ret == 0) {
			ret = mc_command(&mc, "go", &r);
			mc_close(&mc);
		}
		if (ret == 0) {
			/* "Not stopped" (an error reply) means it was running. */
			if (!r.err)
				cli_error("watchdog: the backup ended without resuming "
					  "guest %s; resumed it", quote_name(umid));
			mc_reply_free(&r);
			return;
		}
		if (ret == -ECONNREFUSED || ret == -ENOENT)
			return;         /* the guest is gone: nothing to resume */
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= retry_s) {
			/*
			 * The command is pasted into a shell: the socket as a
			 * shell word, which is one line as it is.
			 */
			quote_shell(word, sizeof(word), sock);
			cli_error("watchdog: guest %s did not answer 'go' for %d s; "
				  "it may still be stopped: uml_mconsole %s go",
				  quote_name(umid), retry_s, word);
			return;
		}
		sleep(1);
	}
}

int watchdog_start(struct watchdog *w, const char *sock, const char *umid,
		   int timeout_ms, int retry_s)
{
	int p[2], null;
	pid_t pid;
	char c;

	w->fd = -1;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (pid == 0) {
		/* Double fork: the watchdog is nobody's child to wait for. */
		if (fork() != 0)
			_exit(0);
		setsid();
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGQUIT, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		close(p[1]);
		close_others(p[0]);
		null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			if (null > 2)
				close(null);
		}
		for (;;) {
			ssize_t n = read(p[0], &c, 1);

			if (n < 0 && errno == EINTR)
				continue;
			if (n == 1 && c == 'D')
				_exit(0);
			if (n == 1)
				continue;
			break;
		}
		resume(sock, umid, timeout_ms, retry_s);
		_exit(0);
	}
	close(p[0]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	w->fd = p[1];
	return 0;
}

void watchdog_release(struct watchdog *w)
{
	if (w->fd < 0)
		return;
	while (write(w->fd, "D", 1) < 0 && errno == EINTR)
		;
	close(w->fd);
	w->fd = -1;
}

void watchdog_abandon(struct watchdog *w)
{
	if (w->fd < 0)
		return;
	close(w->fd);
	w->fd = -1;
}
