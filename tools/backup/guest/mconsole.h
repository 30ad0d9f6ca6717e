/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mconsole.h - a small client for the UML management console.
 *
 * The guest listens on a Unix datagram socket ($uml_dir/UMID/mconsole).
 * A request is {u32 magic 0xcafebabe, u32 version 2, u32 len, data[512]};
 * a reply is {u32 err, u32 more, u32 len, data[512]}, with len counting the
 * NUL that ends data, and a long reply comes as several datagrams while
 * `more` is 1.  Everything is host-endian.
 *
 * The client binds an abstract, kernel-chosen address (nothing to clean up
 * after a crash) and never blocks longer than its timeout: one deadline
 * per command, for sending it and for all the parts of its reply.  While it waits
 * it checks, every 100 ms, that somebody still listens on the guest's
 * socket, so a guest that exits is reported at once, not after the timeout.
 * Functions return 0 or a negative errno:
 *   -ENOENT        no socket at that path
 *   -ECONNREFUSED  the socket exists but nobody listens: the guest is gone
 *   -ETIMEDOUT     no complete reply within the timeout
 *   -EPROTO        a malformed reply
 *   -EMSGSIZE      command longer than 511 bytes, or a reply over 1 MiB
 *   -EINTR         *interrupt became non-zero while waiting
 */
#ifndef UBDK_MCONSOLE_H
#define UBDK_MCONSOLE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MC_MAGIC 0xcafebabeU
#define MC_VERSION 2U
#define MC_MAX_DATA 512U
/* Largest reply accepted, all parts together. */
#define MC_MAX_REPLY (1U << 20)

struct mc_request {
	uint32_t magic;
	uint32_t version;
	uint32_t len;
	char data[MC_MAX_DATA];
};

struct mc_reply_packet {
	uint32_t err;
	uint32_t more;
	uint32_t len;
	char data[MC_MAX_DATA];
};

struct mconsole {
	int fd;                 /* our socket, -1 when closed */
	char path[108];         /* the guest's socket */
	int timeout_ms;         /* per command, all reply parts together */
	/* When non-NULL and set while waiting, give up with -EINTR. */
	volatile sig_atomic_t *interrupt;
};

struct mc_reply {
	bool err;               /* the guest flagged an error */
	char *text;             /* all parts, NUL-terminated (malloc'ed) */
	size_t len;
};

/* Connect to the guest's socket.  Returns 0, -ENOENT, -ECONNREFUSED... */
int mc_open(struct mconsole *mc, const char *path, int timeout_ms);
void mc_close(struct mconsole *mc);
/*
 * Send one command and collect the whole reply into r (free it with
 * mc_reply_free).  After a timeout the socket is replaced by a new one, so
 * that a late reply cannot be taken for the answer to the next command.
 */
int mc_command(struct mconsole *mc, const char *cmd, struct mc_reply *r);
void mc_reply_free(struct mc_reply *r);
/* Is somebody listening on path?  0 yes, else -ENOENT/-ECONNREFUSED/... */
int mc_probe(const char *path);
/* A short description of an mc_* error, for messages. */
const char *mc_strerror(int err);

#endif
