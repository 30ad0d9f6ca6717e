/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xstream.h - the extent stream (.ubdx) of docs/backup-format.md: a COW
 * file's allocated, non-zero data as records, so that a backup's size and
 * the time to write it follow the data, not the device.
 *
 * Writer: records go out as bytes to a unit_fn (stream.h), in pieces of
 * at most PACK_UNIT bytes, never NULL: a packer (pack.h) for .ubdx.lz4 and
 * .ubdx.gz, or a sink writing to a file or stdout (xs_fd_sink).  The
 * stream depends only on the bytes given, not on how the caller cuts its
 * calls (a block given in parts by contiguous calls is judged whole):
 * contiguous non-zero data is merged into one DATA record, cut at every
 * multiple of XS_MAX_DATA of the offset (so that a change moves no record
 * boundary elsewhere, which keeps restic's deduplication working).
 *
 * Reader: push style, so that it can sit behind the decompressors
 * (unpack.h) as their unit_fn; xs_read_fd does a whole file.
 */
#ifndef UBDK_XSTREAM_H
#define UBDK_XSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/stream.h"

#define XS_MAGIC "UBDKXST1"
#define XS_VERSION 1
#define XS_HEADER_SIZE 80
#define XS_HEAD_SIZE 16                 /* a record's head */
#define XS_END_SIZE 40                  /* the end record, digest included */
#define XS_MAX_DATA (4U << 20)          /* a DATA record's payload, at most */
#define XS_ZERO_BIT (1ULL << 63)        /* in a head's length: a ZERO record */
#define XS_END_OFFSET UINT64_MAX        /* a head with this offset is the end */
#define XS_BLOCK 4096                   /* all-zero pieces are cut at these */
#define XS_FLAG_INCREMENTAL 1U
#define XS_CHUNK_SIZE 65536             /* the chunk grid's default unit */

/*
 * The header's fields (magic, version and the reserved zeros aside).
 * parent: the point an incremental stream applies over (not all zeros);
 * all zeros in a full stream.  It lets a reader of streams concatenated
 * on a pipe (restic dump ... | uml_backup restore -) refuse a stream that
 * does not follow the previous one.
 */
struct xs_header {
	uint32_t flags, chunk_size;
	uint64_t file_size, data_offset;
	uint8_t point[16];
	uint8_t parent[16];
};

/* --- writer -------------------------------------------------------------- */

struct xs_writer;

/*
 * A writer of a stream with header h, its bytes to sink(sink_ctx, ...).
 * 0, -ENOMEM, -EINVAL (h has unknown flags, a chunk_size that is not a
 * power of two, or a parent that does not fit the flags), or the sink's
 * error.
 */
int xs_writer_open(struct xs_writer **w, const struct xs_header *h, unit_fn sink,
		   void *sink_ctx);
/*
 * len bytes of the COW file at off.  Pieces that are all zeros, cut at
 * every XS_BLOCK of the offset, are not stored: left out of a full stream
 * (its base is empty), ZERO records in an incremental one.  Calls go in
 * increasing offset, not overlapping, within file_size: else -EINVAL
 * (and the writer is unusable).  Or the sink's error.
 */
int xs_data(struct xs_writer *w, uint64_t off, const uint8_t *p, size_t len);
/*
 * [off, off + len) becomes zeros: a ZERO record in an incremental stream
 * (merged with adjacent ones), nothing in a full one.  Same order rules.
 */
int xs_zero(struct xs_writer *w, uint64_t off, uint64_t len);
/*
 * The end record; *bytes_out (if not NULL) gets the stream's length and
 * digest (if not NULL) its XXH3-128 as stored (canonical form).  The sink
 * is not flushed or closed: that is its owner's (packer_finish).
 */
int xs_writer_finish(struct xs_writer *w, uint64_t *bytes_out, uint8_t digest[16]);
/* NULL is fine. */
void xs_writer_free(struct xs_writer *w);

/* A unit_fn writing to the file descriptor in *(int *)ctx (stream_write_all). */
int xs_fd_sink(void *ctx, const uint8_t *data, size_t len);

/* --- reader -------------------------------------------------------------- */

/*
 * What a parser calls, in stream order:
 *  - once, after the header is checked: off XS_HEADER_CALL, len 0, data
 *    NULL (h is filled in from then on);
 *  - for each DATA record, one or more calls with consecutive offsets
 *    covering it (its payload is passed as it arrives, not gathered);
 *  - for each ZERO record, one call with data NULL.
 * A negative return stops the parser with that value.  Nothing is known
 * to be right before xs_parser_end returned 0: a consumer publishes its
 * result only then.
 */
typedef int (*xs_record_fn)(void *ctx, const struct xs_header *h, uint64_t off,
			    uint64_t len, const uint8_t *data);
#define XS_HEADER_CALL UINT64_MAX
/*
 * Only with multi set: a stream's valid end record was read (its digest in
 * the parser's digest); a header may follow, starting the next stream.
 */
#define XS_END_CALL (UINT64_MAX - 1)

struct xs_parser {
	xs_record_fn fn;
	void *ctx;
	struct xs_header h;
	void *xxh;                      /* XXH3_state_t, of every byte but the digest */
	uint64_t pos;                   /* bytes consumed */
	int state;
	uint8_t buf[XS_HEADER_SIZE];    /* a header, head or end being gathered */
	size_t have, need;
	uint64_t rec_off, rec_left;     /* the DATA record being read */
	uint64_t next;                  /* records may start here or later */
	uint64_t records, payload;      /* counted, for the end record */
	int err;                        /* first error, sticky */
	uint8_t digest[16];             /* as stored, once the end is read */
	/*
	 * Set by the caller after xs_parser_init: streams may follow each
	 * other (each its own header, records and end; byte offsets in
	 * messages count from the first).  streams: those ended so far.
	 */
	bool multi;
	uint64_t streams;
	char msg[192];
};

/* 0 or -ENOMEM.  xs_parser_end (or xs_parser_free) releases it. */
int xs_parser_init(struct xs_parser *p, xs_record_fn fn, void *ctx);
/*
 * The next len bytes of the stream; a unit_fn (ctx: the parser), so data
 * NULL is len zero bytes as the decompressors pass them.  -EBADMSG on
 * malformed input (p->msg says "stream byte N: problem"), or the
 * callback's error; every later call returns the same.
 */
int xs_parser_feed(void *p, const uint8_t *data, size_t len);
/*
 * The stream ended: 0 if it ended exactly after a valid end record (the
 * counts and digest match; with multi, after one or more streams); else -EBADMSG with the message in msg, or the
 * error that stopped the parser.  Frees the parser's state.
 */
int xs_parser_end(struct xs_parser *p, char *msg, size_t msglen);
/* Free the state of a parser abandoned before its end; idempotent. */
void xs_parser_free(struct xs_parser *p);

/*
 * Read a whole stream from fd: raw, or inside LZ4 frames or gzip members
 * (pack_detect; fd not seekable, e.g. a pipe: raw only, a compressed one
 * is refused with a message).  h_out (if not NULL) gets the header.  0,
 * -EBADMSG with a message ("stream byte N: ..." or the decompressor's
 * problem), -EINTR when *intr is set, or another -errno (reading fd, or
 * the callback's).  *fmt_out (if not NULL) gets the container: PACK_NONE,
 * PACK_LZ4 or PACK_GZIP; *digest_out (if not NULL) the stream's digest.
 */
int xs_read_fd(int fd, xs_record_fn fn, void *ctx, struct xs_header *h_out, char *msg,
	       size_t msglen);
int xs_read_fd_ex(int fd, xs_record_fn fn, void *ctx, struct xs_header *h_out,
		  int *fmt_out, uint8_t digest_out[16], volatile sig_atomic_t *intr,
		  char *msg, size_t msglen);

/* 32 lowercase hex digits and a NUL. */
void xs_hex128(const uint8_t d[16], char out[33]);

#endif
