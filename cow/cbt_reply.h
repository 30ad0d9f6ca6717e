/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cbt_reply.h - the one-line reply of the mconsole `cbt` command
 * (docs/cbt.md): formatted by the driver, parsed by uml_backup, with one
 * codec so that the two cannot drift apart.  Not installed: the reply is
 * between our driver and our tools.
 *
 * An error reply starts with a code ("error=busy ...", cbt_reply_codes.h)
 * so that a client tells a busy driver from a closed device without
 * reading the message.
 */
#ifndef UBDK_CBT_REPLY_H
#define UBDK_CBT_REPLY_H

#include "cbt_reply_codes.h"

#include <stddef.h>
#include <stdint.h>

#include "ubdk_cbt.h"

enum ubdk_cbt_reply_kind {
	UBDK_CBT_REPLY_STATUS = 1,     /* `cbt ubdN` */
	UBDK_CBT_REPLY_CHECKPOINT = 2, /* `cbt ubdN checkpoint NAME` */
	UBDK_CBT_REPLY_ERROR = 3,
};

/* The codes of an error reply, in the order of the prefixes above. */
enum ubdk_cbt_reply_error {
	UBDK_CBT_REPLY_OK = 0,
	UBDK_CBT_REPLY_USAGE,
	UBDK_CBT_REPLY_BAD_DEVICE,
	UBDK_CBT_REPLY_NOT_CONFIGURED,
	UBDK_CBT_REPLY_NOT_OPEN,       /* the tracker lives while it is open */
	UBDK_CBT_REPLY_NO_TRACKING,    /* read-only, or not a COW */
	UBDK_CBT_REPLY_BUSY,           /* a driver lock is held: try again */
	UBDK_CBT_REPLY_NO_MEMORY,
	UBDK_CBT_REPLY_BAD_NAME,
	UBDK_CBT_REPLY_FAILED,         /* the library's message follows */
	UBDK_CBT_REPLY__COUNT
};

struct ubdk_cbt_reply {
	int kind;                      /* enum ubdk_cbt_reply_kind */
	int error;                     /* ERROR: enum ubdk_cbt_reply_error */
	const char *msg;               /* ERROR: the words after the code,
	                                  msg_len bytes */
	size_t msg_len;
	char name[UBDK_CBT_NAME_MAX];  /* STATUS: the checkpoint tracked
	                                  since; CHECKPOINT: the new one */
	char from[UBDK_CBT_NAME_MAX];  /* CHECKPOINT: the previous one */
	uint32_t reason;               /* enum ubdk_cbt_reason, 0 consistent */
	uint32_t granularity;
	uint64_t blocks, size, generation;
	uint64_t mem;                  /* STATUS */
	const char *map;               /* CHECKPOINT: the map's path,
	                                  map_len bytes */
	size_t map_len;
};

/*
 * Write r as one line (no newline) into out: snprintf's return, the
 * length the whole line needs.
 */
int ubdk_cbt_reply_format(char *out, size_t outlen,
			  const struct ubdk_cbt_reply *r);
/*
 * Parse a reply (a trailing newline is ignored).  msg and map point into
 * text.  Keys the parser does not know are skipped: fields may be added.
 * -EINVAL when text is not a `cbt` reply (a kernel without the command
 * answers in words of its own) or a field is malformed.
 */
int ubdk_cbt_reply_parse(const char *text, struct ubdk_cbt_reply *r);

#endif
