/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include "guest/mconsole.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* How often a waiting client checks that the guest still listens. */
#define PROBE_MS 100

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int make_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

int mc_probe(const char *path)
{
	struct sockaddr_un sa;
	int fd, ret;

	ret = make_addr(path, &sa);
	if (ret < 0)
		return ret;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* connect() on a datagram socket sends nothing: a pure check. */
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

/* A fresh socket with a kernel-chosen abstract address, connected to path. */
static int connect_socket(const char *path)
{
	struct sockaddr_un sa;
	sa_family_t fam = AF_UNIX;
	int fd, ret;

	ret = make_addr(path, &sa);
	if (ret < 0)
		return ret;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Binding only the family asks for an autobound abstract name. */
	if (bind(fd, (struct sockaddr *)&fam, sizeof(fam)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int mc_open(struct mconsole *mc, const char *path, int timeout_ms)
{
	int fd;

	mc->fd = -1;
	mc->interrupt = NULL;
	mc->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	if (strlen(path) >= sizeof(mc->path))
		return -ENAMETOOLONG;
	strcpy(mc->path, path);
	fd = connect_socket(path);
	if (fd < 0)
		return fd;
	mc->fd = fd;
	return 0;
}

void mc_close(struct mconsole *mc)
{
	if (mc->fd >= 0)
		close(mc->fd);
	mc->fd = -1;
}

void mc_reply_free(struct mc_reply *r)
{
	free(r->text);
	r->text = NULL;
	r->len = 0;
}

/*
 * Wait until fd is ready for events, the deadline passes (-ETIMEDOUT), the
 * guest stops listening (-ECONNREFUSED / -ENOENT) or we are interrupted.
 */
static int wait_ready(struct mconsole *mc, short events, long long deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = mc->fd, .events = events };
		long long left = deadline - now_ms();
		int n, alive;

		if (mc->interrupt && *mc->interrupt)
			return -EINTR;
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)(left < PROBE_MS ? left : PROBE_MS));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n == 0) {
			alive = mc_probe(mc->path);
			if (alive == -ECONNREFUSED || alive == -ENOENT)
				return alive;
		}
	}
}

static int send_request(struct mconsole *mc, const char *cmd, long long deadline)
{
	struct mc_request req;
	size_t len = strlen(cmd);
	char junk[sizeof(struct mc_reply_packet)];
	int ret;

	if (len >= MC_MAX_DATA)
		return -EMSGSIZE;
	memset(&req, 0, sizeof(req));
	req.magic = MC_MAGIC;
	req.version = MC_VERSION;
	req.len = (uint32_t)len;
	memcpy(req.data, cmd, len);
	/* Drop anything left over from an earlier exchange. */
	while (recv(mc->fd, junk, sizeof(junk), MSG_DONTWAIT) >= 0)
		;
	for (;;) {
		ssize_t n = send(mc->fd, &req, offsetof(struct mc_request, data) + len,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n >= 0)
			return 0;
		if (errno == ECONNREFUSED || errno == ENOENT)
			return -ECONNREFUSED;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		/* The guest's queue is full: it is not reading. */
		ret = wait_ready(mc, POLLOUT, deadline);
		if (ret < 0)
			return ret;
	}
}

static int append(struct mc_reply *r, const char *s, size_t n)
{
	char *p;

	if (r->len + n + 1 > MC_MAX_REPLY)
		return -EMSGSIZE;
	p = realloc(r->text, r->len + n + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p + r->len, s, n);
	r->len += n;
	p[r->len] = '\0';
	r->text = p;
	return 0;
}

static int read_reply(struct mconsole *mc, struct mc_reply *r, long long deadline)
{
	struct mc_reply_packet pkt;
	const size_t head = offsetof(struct mc_reply_packet, data);
	bool first = true;
	int ret;

	for (;;) {
		ssize_t n;
		size_t len;

		/*
		 * One deadline for all parts: a guest that trickles empty
		 * `more` parts must not keep us waiting forever.
		 */
		ret = wait_ready(mc, POLLIN, deadline);
		if (ret < 0)
			return ret;
		n = recv(mc->fd, &pkt, sizeof(pkt), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return errno == ECONNREFUSED ? -ECONNREFUSED : -errno;
		}
		if ((size_t)n < head || pkt.len > MC_MAX_DATA ||
		    pkt.len > (size_t)n - head || pkt.more > 1)
			return -EPROTO;
		len = pkt.len;
		if (len > 0 && pkt.data[len - 1] == '\0')
			len--;
		if (first)
			r->err = pkt.err != 0;
		first = false;
		ret = append(r, pkt.data, len);
		if (ret < 0)
			return ret;
		if (!pkt.more)
			return 0;
	}
}

int mc_command(struct mconsole *mc, const char *cmd, struct mc_reply *r)
{
	long long deadline;
	int ret, fd;

	r->err = false;
	r->text = NULL;
	r->len = 0;
	if (mc->fd < 0) {
		fd = connect_socket(mc->path);
		if (fd < 0)
			return fd == -ENOENT ? -ENOENT : fd;
		mc->fd = fd;
	}
	deadline = now_ms() + mc->timeout_ms;
	ret = send_request(mc, cmd, deadline);
	if (ret == 0)
		ret = append(r, "", 0);
	if (ret == 0)
		ret = read_reply(mc, r, deadline);
	if (ret < 0) {
		mc_reply_free(r);
		/* A late reply must not answer the next command. */
		if (ret == -ETIMEDOUT || ret == -EINTR || ret == -EPROTO) {
			mc_close(mc);
			fd = connect_socket(mc->path);
			if (fd >= 0)
				mc->fd = fd;
		}
	}
	return ret;
}

const char *mc_strerror(int err)
{
	switch (err) {
	case -ENOENT:
		return "no mconsole socket";
	case -ECONNREFUSED:
		return "nobody listens on the mconsole socket (the guest is gone)";
	case -ETIMEDOUT:
		return "mconsole not answering";
	case -EPROTO:
		return "malformed mconsole reply";
	case -EMSGSIZE:
		return "mconsole message too long";
	case -EINTR:
		return "interrupted";
	default:
		return strerror(-err);
	}
}
