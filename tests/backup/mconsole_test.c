/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mconsole_test - unit tests of tools/backup/guest/mconsole.c against a fake
 * guest: request framing, multi-part replies, error replies, timeouts
 * (also of a reply trickling in parts), late replies, malformed replies, a guest that disappears before or
 * while it answers, and interruption.
 *   mconsole_test [SCRATCH_DIR]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mconsole.h"

static int failures, checks;
static char sock_path[108];

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		checks++;                                                    \
		if (!(cond)) {                                               \
			failures++;                                          \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__,        \
				__LINE__, #cond);                            \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the fake guest ------------------------------------------------------ */

static void reply(int fd, const struct sockaddr_un *to, socklen_t tolen,
		  uint32_t err, uint32_t more, const char *s, size_t n)
{
	struct mc_reply_packet p;

	memset(&p, 0, sizeof(p));
	p.err = err;
	p.more = more;
	memcpy(p.data, s, n);
	p.data[n] = '\0';
	p.len = (uint32_t)n + 1;
	sendto(fd, &p, offsetof(struct mc_reply_packet, data) + p.len, 0,
	       (const struct sockaddr *)to, tolen);
}

/* Like the kernel: parts of at most 511 bytes, `more` on all but the last. */
static void reply_long(int fd, const struct sockaddr_un *to, socklen_t tolen,
		       const char *s, size_t n)
{
	do {
		size_t part = n > MC_MAX_DATA - 1 ? MC_MAX_DATA - 1 : n;

		reply(fd, to, tolen, 0, part < n, s, part);
		s += part;
		n -= part;
	} while (n > 0);
}

static void serve(int fd)
{
	for (;;) {
		struct mc_request req;
		struct sockaddr_un from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(fd, &req, sizeof(req), 0,
				     (struct sockaddr *)&from, &fromlen);
		char *cmd = req.data;

		if (n < 0)
			_exit(1);
		if ((size_t)n < offsetof(struct mc_request, data) ||
		    req.magic != MC_MAGIC || req.version != MC_VERSION ||
		    req.len >= MC_MAX_DATA ||
		    (size_t)n != offsetof(struct mc_request, data) + req.len) {
			reply(fd, &from, fromlen, 1, 0, "bad framing", 11);
			continue;
		}
		req.data[req.len] = '\0';
		if (strcmp(cmd, "version") == 0) {
			reply(fd, &from, fromlen, 0, 0, "fake 1.0", 8);
		} else if (strncmp(cmd, "long ", 5) == 0) {
			size_t len = strtoul(cmd + 5, NULL, 10);
			char *s = malloc(len + 1);

			for (size_t i = 0; i < len; i++)
				s[i] = (char)('a' + i % 26);
			reply_long(fd, &from, fromlen, s, len);
			free(s);
		} else if (strcmp(cmd, "proc") == 0) {
			/* What `proc meminfo` looks like: an empty first part. */
			reply(fd, &from, fromlen, 0, 1, "", 0);
			reply(fd, &from, fromlen, 0, 1, "Dirty: 12 kB\n", 13);
			reply(fd, &from, fromlen, 0, 1, "Writeback: 0 kB\n", 16);
			reply(fd, &from, fromlen, 0, 0, "", 0);
		} else if (strcmp(cmd, "fail") == 0) {
			reply(fd, &from, fromlen, 1, 0, "Unknown command", 15);
		} else if (strcmp(cmd, "silent") == 0) {
			;
		} else if (strcmp(cmd, "late") == 0) {
			usleep(700 * 1000);
			reply(fd, &from, fromlen, 0, 0, "late", 4);
		} else if (strcmp(cmd, "die") == 0) {
			_exit(0);
		} else if (strcmp(cmd, "halfdie") == 0) {
			reply(fd, &from, fromlen, 0, 1, "first part", 10);
			_exit(0);
		} else if (strcmp(cmd, "short") == 0) {
			sendto(fd, "abcde", 5, 0, (struct sockaddr *)&from, fromlen);
		} else if (strcmp(cmd, "badlen") == 0) {
			struct mc_reply_packet p = { .len = 600 };

			sendto(fd, &p, sizeof(p), 0, (struct sockaddr *)&from,
			       fromlen);
		} else if (strcmp(cmd, "trickle") == 0) {
			/* Empty parts, each well within the timeout, for 3 s. */
			for (int i = 0; i < 30; i++) {
				reply(fd, &from, fromlen, 0, 1, "", 0);
				usleep(100 * 1000);
			}
			reply(fd, &from, fromlen, 0, 0, "done", 4);
		} else if (strcmp(cmd, "ping") == 0) {
			reply(fd, &from, fromlen, 0, 0, "pong", 4);
		} else {
			reply(fd, &from, fromlen, 1, 0, "Unknown command", 15);
		}
	}
}

static pid_t start_server(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	pid_t pid;

	unlink(sock_path);
	strcpy(sa.sun_path, sock_path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("fake guest: bind");
		exit(2);
	}
	pid = fork();
	if (pid == 0)
		serve(fd);
	close(fd);
	return pid;
}

static void stop_server(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* --- tests ----------------------------------------------------------------- */

static int run(struct mconsole *mc, const char *cmd, struct mc_reply *r,
	       long long *ms)
{
	long long t0 = now_ms();
	int ret = mc_command(mc, cmd, r);

	if (ms)
		*ms = now_ms() - t0;
	return ret;
}

static void test_framing_and_parts(void)
{
	struct mconsole mc;
	struct mc_reply r;
	pid_t srv = start_server();
	int ret;

	CHECK(mc_open(&mc, sock_path, 300) == 0, "open");
	ret = run(&mc, "version", &r, NULL);
	CHECK(ret == 0 && !r.err && strcmp(r.text, "fake 1.0") == 0,
	      "version: %d %s", ret, r.text ? r.text : "(null)");
	mc_reply_free(&r);

	/* Part boundaries: none, exactly one full part, one byte more, many. */
	static const size_t lens[] = { 0, 1, 510, 511, 512, 1022, 1023, 5000, 70000 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char cmd[32];
		bool ok;

		snprintf(cmd, sizeof(cmd), "long %zu", lens[i]);
		ret = run(&mc, cmd, &r, NULL);
		ok = ret == 0 && r.len == lens[i] && strlen(r.text) == lens[i];
		for (size_t j = 0; ok && j < lens[i]; j++)
			ok = r.text[j] == (char)('a' + j % 26);
		CHECK(ok, "%s: ret %d len %zu", cmd, ret, r.len);
		mc_reply_free(&r);
	}
	ret = run(&mc, "proc", &r, NULL);
	CHECK(ret == 0 && strcmp(r.text, "Dirty: 12 kB\nWriteback: 0 kB\n") == 0,
	      "proc: %d '%s'", ret, r.text ? r.text : "");
	mc_reply_free(&r);

	ret = run(&mc, "fail", &r, NULL);
	CHECK(ret == 0 && r.err && strcmp(r.text, "Unknown command") == 0,
	      "error reply: %d", ret);
	mc_reply_free(&r);

	/* The longest command that fits, and one byte more. */
	char big[600];
	memset(big, 'x', sizeof(big));
	big[MC_MAX_DATA - 1] = '\0';
	ret = run(&mc, big, &r, NULL);
	CHECK(ret == 0 && r.err && strcmp(r.text, "Unknown command") == 0,
	      "511-byte command: %d %s", ret, r.text ? r.text : "");
	mc_reply_free(&r);
	big[MC_MAX_DATA - 1] = 'x';
	big[MC_MAX_DATA] = '\0';
	CHECK(run(&mc, big, &r, NULL) == -EMSGSIZE, "512-byte command accepted");
	mc_close(&mc);
	stop_server(srv);
}

static void test_timeouts(void)
{
	struct mconsole mc;
	struct mc_reply r;
	long long ms;
	pid_t srv = start_server();
	int ret;

	CHECK(mc_open(&mc, sock_path, 300) == 0, "open");
	ret = run(&mc, "silent", &r, &ms);
	CHECK(ret == -ETIMEDOUT && ms >= 280 && ms < 2000,
	      "silent: %d after %lld ms", ret, ms);
	/* The late answer to "late" must not be taken for the next one's. */
	ret = run(&mc, "late", &r, &ms);
	CHECK(ret == -ETIMEDOUT, "late: %d after %lld ms", ret, ms);
	usleep(600 * 1000);
	ret = run(&mc, "ping", &r, NULL);
	CHECK(ret == 0 && strcmp(r.text, "pong") == 0, "after late: %d '%s'",
	      ret, r.text ? r.text : "");
	mc_reply_free(&r);
	CHECK(run(&mc, "short", &r, NULL) == -EPROTO, "short reply accepted");
	CHECK(run(&mc, "badlen", &r, NULL) == -EPROTO, "bad length accepted");
	ret = run(&mc, "ping", &r, NULL);
	CHECK(ret == 0 && strcmp(r.text, "pong") == 0, "after bad replies: %d", ret);
	mc_reply_free(&r);
	/* The timeout is for the whole reply, not for each part. */
	ret = run(&mc, "trickle", &r, &ms);
	CHECK(ret == -ETIMEDOUT && ms >= 280 && ms < 1500, "trickle: %d after %lld ms", ret, ms);
	mc_close(&mc);
	stop_server(srv);
}

static volatile sig_atomic_t stop_flag;
static void on_alarm(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void test_interrupt(void)
{
	struct mconsole mc;
	struct mc_reply r;
	struct sigaction sa = { .sa_handler = on_alarm };
	long long ms;
	pid_t srv = start_server();
	int ret;

	sigaction(SIGALRM, &sa, NULL);
	CHECK(mc_open(&mc, sock_path, 5000) == 0, "open");
	mc.interrupt = &stop_flag;
	ualarm(200 * 1000, 0);
	ret = run(&mc, "silent", &r, &ms);
	CHECK(ret == -EINTR && ms < 1500, "interrupt: %d after %lld ms", ret, ms);
	stop_flag = 0;
	ret = run(&mc, "ping", &r, NULL);
	CHECK(ret == 0 && strcmp(r.text, "pong") == 0, "after interrupt: %d", ret);
	mc_reply_free(&r);
	mc_close(&mc);
	stop_server(srv);
}

static void test_disappearing_guest(void)
{
	struct mconsole mc;
	struct mc_reply r;
	long long ms;
	pid_t srv;
	int ret, fd;

	/* Gone while we wait for the answer: reported long before the timeout. */
	srv = start_server();
	CHECK(mc_open(&mc, sock_path, 5000) == 0, "open");
	ret = run(&mc, "die", &r, &ms);
	CHECK(ret == -ECONNREFUSED && ms < 1500, "die: %d after %lld ms", ret, ms);
	waitpid(srv, NULL, 0);
	/* And the next command fails at once. */
	ret = run(&mc, "ping", &r, &ms);
	CHECK(ret == -ECONNREFUSED && ms < 500, "after death: %d after %lld ms", ret, ms);
	mc_close(&mc);

	/* Gone half-way through a multi-part answer. */
	srv = start_server();
	CHECK(mc_open(&mc, sock_path, 5000) == 0, "open");
	ret = run(&mc, "halfdie", &r, &ms);
	CHECK(ret == -ECONNREFUSED && ms < 1500, "halfdie: %d after %lld ms", ret, ms);
	waitpid(srv, NULL, 0);
	mc_close(&mc);

	/* A stale socket file (guest killed) and no socket at all. */
	CHECK(mc_open(&mc, sock_path, 300) == -ECONNREFUSED, "stale socket");
	CHECK(mc_probe(sock_path) == -ECONNREFUSED, "probe of a stale socket");
	unlink(sock_path);
	CHECK(mc_open(&mc, sock_path, 300) == -ENOENT, "missing socket");
	/* A regular file where the socket should be. */
	fd = creat(sock_path, 0600);
	close(fd);
	ret = mc_open(&mc, sock_path, 300);
	CHECK(ret == -ECONNREFUSED, "regular file: %d", ret);
	unlink(sock_path);
	CHECK(strstr(mc_strerror(-ETIMEDOUT), "not answering") != NULL, "strerror");
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";

	signal(SIGPIPE, SIG_IGN);
	snprintf(sock_path, sizeof(sock_path), "%s/mc-test.%ld", dir, (long)getpid());
	test_framing_and_parts();
	test_timeouts();
	test_interrupt();
	test_disappearing_guest();
	unlink(sock_path);
	printf("mconsole_test: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
