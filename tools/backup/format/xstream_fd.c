/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xstream_fd.c - extent streams to and from file descriptors: the sink
 * for raw streams (files, stdout) and xs_read_fd, which finds the
 * container (raw, LZ4, gzip) and feeds the parser.
 */
#include "format/xstream.h"
#include "codec/unpack.h"
#include "ubdk_endian.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int xs_fd_sink(void *ctx, const uint8_t *data, size_t len)
{
	return stream_write_all(*(int *)ctx, data, len, -1);
}

/* Raw bytes from fd, the first n already read into first. */
static int read_raw(int fd, struct xs_parser *p, const uint8_t *first, size_t n,
		    volatile sig_atomic_t *intr)
{
	uint8_t *buf = malloc(PACK_UNIT);
	int ret = n ? xs_parser_feed(p, first, n) : 0;

	if (!buf)
		return -ENOMEM;
	while (ret == 0) {
		ssize_t got;

		if (intr && *intr) {
			ret = -EINTR;
			break;
		}
		got = read(fd, buf, PACK_UNIT);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			ret = -errno;
		else if (got == 0)
			break;
		else
			ret = xs_parser_feed(p, buf, (size_t)got);
	}
	free(buf);
	return ret;
}

int xs_read_fd_ex(int fd, xs_record_fn fn, void *ctx, struct xs_header *h_out,
		  int *fmt_out, uint8_t digest_out[16], volatile sig_atomic_t *intr,
		  char *msg, size_t msglen)
{
	struct xs_parser p;
	uint8_t first[8];
	size_t n = 0;
	int fmt, ret;
	char zmsg[200] = "";

	msg[0] = '\0';
	ret = xs_parser_init(&p, fn, ctx);
	if (ret < 0)
		return ret;
	/* A pipe cannot be looked at twice: its first bytes decide. */
	if (lseek(fd, 0, SEEK_CUR) < 0 && errno == ESPIPE) {
		while (n < sizeof(first)) {
			ssize_t got = read(fd, first + n, sizeof(first) - n);

			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				break;
			n += (size_t)got;
		}
		fmt = PACK_NONE;
		if ((n >= 4 && ubdk_get_le32(first) == 0x184D2204U) ||
		    (n >= 2 && first[0] == 0x1f && first[1] == 0x8b)) {
			snprintf(msg, msglen, "a compressed stream on a pipe: decompress it "
				 "first (lz4 -dc or gzip -dc)");
			xs_parser_free(&p);
			return -EBADMSG;
		}
		ret = read_raw(fd, &p, first, n, intr);
	} else {
		fmt = pack_detect(fd);
		if (fmt < 0) {
			fmt = PACK_NONE;
			ret = read_raw(fd, &p, NULL, 0, intr);
		} else {
			ret = pack_decompress(fd, fmt, xs_parser_feed, &p, NULL, intr, zmsg,
					      sizeof(zmsg));
		}
	}
	if (fmt_out)
		*fmt_out = fmt;
	/* The parser's message first: the decompressor only passed its error on. */
	if (ret == -EBADMSG && p.err == -EBADMSG) {
		snprintf(msg, msglen, "%s", p.msg);
	} else if (ret == -EBADMSG) {
		snprintf(msg, msglen, "%s", zmsg);
	} else if (ret == 0) {
		ret = xs_parser_end(&p, msg, msglen);
		if (ret == 0 && h_out)
			*h_out = p.h;
		if (ret == 0 && digest_out)
			memcpy(digest_out, p.digest, 16);
	}
	xs_parser_free(&p);
	return ret;
}

int xs_read_fd(int fd, xs_record_fn fn, void *ctx, struct xs_header *h_out, char *msg,
	       size_t msglen)
{
	return xs_read_fd_ex(fd, fn, ctx, h_out, NULL, NULL, NULL, msg, msglen);
}
