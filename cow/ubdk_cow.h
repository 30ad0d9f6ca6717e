/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ubdk_cow.h - the UML copy-on-write (COW) disk format.
 *
 * A COW file holds a header naming a read-only backing file, a bitmap with
 * one bit per sector, and a data area where the sectors whose bit is set
 * live.  This library reads every layout the UML kernel has ever written
 * (v1, v2, v3 and the "broken" 64-bit v3), writes v1, v2 and v3 exactly as
 * the kernel and uml_mkcow do, answers bitmap questions a word at a time,
 * and reads and writes the merged view of a COW and its backing file.
 *
 * Conventions: every function that can fail returns 0 (or a count) on
 * success and a negative errno on failure, and, when given a non-NULL
 * struct ubdk_err, fills in a distinct error code and a one-line message
 * naming the file and the field.  The library keeps no global state,
 * never prints and never exits.  All OS access goes through ubdk_os.h.
 */
#ifndef UBDK_COW_H
#define UBDK_COW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UBDK_VERSION_MAJOR 0
#define UBDK_VERSION_MINOR 3
#define UBDK_VERSION_PATCH 0
#define UBDK_VERSION_STRING "0.3.0"

/* Runtime version of the library actually linked, as "MAJOR.MINOR.PATCH". */
const char *ubdk_version(void);
/* The same as MAJOR * 10000 + MINOR * 100 + PATCH. */
int ubdk_version_number(void);

#define UBDK_COW_MAGIC 0x4f4f4f4dU

/* Sizes of the on-disk header structures (all packed except v3-broken). */
#define UBDK_HDR_V1_SIZE 280U
#define UBDK_HDR_V2_SIZE 4120U
#define UBDK_HDR_V3_SIZE 4128U
#define UBDK_HDR_V3_BROKEN_SIZE 4136U
/* Enough to decode any layout. */
#define UBDK_HDR_MAX_SIZE UBDK_HDR_V3_BROKEN_SIZE

/* Room for a backing path, terminating NUL included. */
#define UBDK_PATH_V1_MAX 256U
#define UBDK_PATH_MAX 4096U

/* What the kernel and uml_mkcow use for new files. */
#define UBDK_DEFAULT_SECTORSIZE 512U
#define UBDK_DEFAULT_ALIGNMENT 4096U

/*
 * Error codes.  Functions return a negative errno; the code says exactly
 * which check failed, so that tools can map it to a message and exit code.
 */
enum ubdk_errcode {
	UBDK_OK = 0,
	UBDK_E_SYS,               /* an OS call failed: see errnum */
	UBDK_E_NOMEM,             /* allocation failed */
	UBDK_E_INVALID_ARG,       /* caller passed something impossible */
	UBDK_E_SHORT_HEADER,      /* file shorter than its header */
	UBDK_E_BAD_MAGIC,         /* not a COW file */
	UBDK_E_BAD_VERSION,       /* version not 1, 2 or 3 */
	UBDK_E_COW_FORMAT,        /* v3 cow_format is not the bitmap format */
	UBDK_E_SECTORSIZE,        /* sector size zero or not a power of two */
	UBDK_E_ALIGNMENT,         /* alignment zero */
	UBDK_E_OVERFLOW,          /* bitmap or data region overflows 64 bits */
	UBDK_E_BACKING_UNTERMINATED, /* backing path fills its field, no NUL */
	UBDK_E_BACKING_EMPTY,     /* backing path is the empty string */
	UBDK_E_SHORT_BITMAP,      /* file ends inside the bitmap */
	UBDK_E_SHORT_DATA,        /* a sector marked present lies past EOF */
	UBDK_E_SIZE_MISMATCH,     /* backing size differs from the header */
	UBDK_E_MTIME_MISMATCH,    /* backing mtime differs from the header */
	UBDK_E_LOCKED,            /* another process holds a conflicting lock */
	UBDK_E_PATH_TOO_LONG,     /* backing path does not fit the header */
	UBDK_E_RANGE,             /* I/O outside the device */
	UBDK_E_READ_ONLY,         /* write through a handle opened read-only */
	UBDK_E_NOT_REGULAR,       /* backing is not a regular file or device */
	UBDK_E_EMPTY_BACKING,     /* backing file has size zero */
	UBDK_E_CHECKSUM,          /* a CBT file's checksum does not match */
	UBDK_E_CBT_FIELD,         /* a CBT file's header or runs are invalid */
	UBDK_E__COUNT
};

#define UBDK_ERR_MSG_MAX 512

/* Which file an error is about, so that callers can pick an exit code. */
enum ubdk_err_file {
	UBDK_FILE_NONE = 0,       /* no file, or not known */
	UBDK_FILE_COW,            /* the COW file */
	UBDK_FILE_BACKING,        /* the backing file */
};

struct ubdk_err {
	int code;                 /* enum ubdk_errcode */
	int errnum;               /* positive errno matching the return value */
	int file;                 /* enum ubdk_err_file */
	char msg[UBDK_ERR_MSG_MAX];
};

/* Short stable name of a code, e.g. "bad-magic"; "unknown" if out of range. */
const char *ubdk_errcode_name(int code);

/* The layouts a COW header can have. */
enum ubdk_layout {
	UBDK_LAYOUT_V1 = 1,
	UBDK_LAYOUT_V2 = 2,
	UBDK_LAYOUT_V3 = 3,
	UBDK_LAYOUT_V3_BROKEN = 4, /* unpacked 64-bit v3, read-only support */
};

/* Name of a layout: "v1", "v2", "v3", "v3-broken". */
const char *ubdk_layout_name(int layout);

/* A decoded header, independent of the on-disk layout. */
struct ubdk_header {
	int layout;               /* enum ubdk_layout */
	uint32_t version;         /* 1, 2 or 3 as stored */
	bool v1_swapped;          /* v1 written by a host of the other endianness */
	bool magic_le;            /* as decoded: the magic (and a v1 header's
	                             fields) stored little-endian; encoding
	                             goes by v1_swapped */
	uint32_t mtime;           /* backing mtime, seconds, low 32 bits */
	uint64_t size;            /* backing (= device) size in bytes */
	uint32_t sectorsize;
	uint32_t alignment;       /* v1/v2: equal to sectorsize */
	uint32_t cow_format;      /* v3: 0 = bitmap */
	char backing[UBDK_PATH_MAX];
};

/* Where everything lives in the COW file. */
struct ubdk_geometry {
	uint64_t header_len;      /* bytes of the on-disk header structure */
	uint64_t sectors;         /* ceil(size / sectorsize) */
	uint64_t bitmap_offset;
	uint64_t bitmap_len;      /* as the kernel computes it (v1/v2 under-count) */
	uint64_t bitmap_used;     /* bytes holding bits for sectors: ceil(sectors/8),
	                             for v1/v2 capped at data_offset - bitmap_offset */
	uint64_t covered;         /* sectors whose bit fits in bitmap_used bytes */
	uint64_t data_offset;
	uint64_t file_size;       /* apparent size of a new COW: data_offset + size */
};

/*
 * Read and decode the header of an open file (COW or not: UBDK_E_BAD_MAGIC
 * says it is not one) and compute its geometry.  `name` is for messages.
 */
int ubdk_header_read_fd(int fd, const char *name, struct ubdk_header *hdr,
			struct ubdk_geometry *geo, struct ubdk_err *err);

/* Set bits a scan found: how many, the first and the last (UINT64_MAX
 * when none). */
struct ubdk_scan_bits {
	uint64_t count, first, last;
};

/* What a COW file holds that its reads never use, or that they miss. */
struct ubdk_scan {
	uint64_t file_size;
	uint64_t bitmap_present;  /* bytes of [bitmap_offset, data_offset)
	                             before the end of the file */
	uint64_t bits;            /* sectors whose bit is in the file (at
	                             most geometry.covered) */
	uint64_t bitmap_end;      /* where the bitmap the kernel reads ends */
	bool short_bitmap;        /* the file ends before bitmap_end (the
	                             kernel and ubdk_cow_open refuse it) */
	struct ubdk_scan_bits past;       /* bits set for sectors the device
	                                     does not have */
	uint64_t past_byte;               /* the file offset of the first */
	struct ubdk_scan_bits short_data; /* sectors marked present whose
	                                     data lies (partly) past the end
	                                     of the file: in a file cut inside
	                                     its bitmap, every bit set */
};

/*
 * Scan the bitmap of the COW file open on fd, whose header and geometry
 * are valid (ubdk_header_read_fd), as the file stores it, for a
 * consistency check: unlike ubdk_cow_open this works on a file cut inside
 * its bitmap.  Reads only the bitmap's slack and the bits of sectors
 * whose data is past the end of the file, through its data extents.
 */
int ubdk_scan_fd(int fd, const char *name, const struct ubdk_header *hdr,
		 const struct ubdk_geometry *geo, struct ubdk_scan *scan,
		 struct ubdk_err *err);

/* An open COW file and (optionally) its backing file. */
struct ubdk_cow;

enum ubdk_open_flags {
	UBDK_OPEN_RDWR = 1 << 0,       /* COW writable (merged writes, rebase) */
	UBDK_OPEN_LOCK = 1 << 1,       /* take the kernel's fcntl locks */
	UBDK_OPEN_NO_BACKING = 1 << 2, /* do not open the backing file */
	UBDK_OPEN_NO_CHECK = 1 << 3,   /* skip the size and mtime check */
	UBDK_OPEN_BACKING_RDWR = 1 << 4, /* backing writable (in-place merge);
	                                  with LOCK, a write lock on it */
	UBDK_OPEN_SYNC = 1 << 5,       /* every write is durable when it
	                                  returns, bitmap included (the
	                                  kernel's 's' flag) */
};

/*
 * Open a COW file.  backing_override, when non-NULL, replaces the path in
 * the header (like uml_moo -b).  Unless NO_CHECK, the backing file's size
 * and mtime must match the header (UBDK_E_SIZE_MISMATCH,
 * UBDK_E_MTIME_MISMATCH), checked on the descriptor held.  Both files must
 * be regular files or block devices (UBDK_E_NOT_REGULAR).
 *
 * The bitmap is not read at open: chunks of it are read when first used,
 * holes in its region are known to be zero without reading, and only
 * chunks with set bits are kept in memory.  Memory and time therefore
 * follow the sectors written, not the device size.
 *
 * A handle is not safe for concurrent use: callers serialize.
 */
int ubdk_cow_open(const char *path, const char *backing_override, int flags,
		  struct ubdk_cow **out, struct ubdk_err *err);
/*
 * Write back the bitmap (ubdk_cow_writeback) and close.  Returns the first
 * error as a negative errno; the files are closed either way.  Callers
 * that want a message for a failed write-back call ubdk_cow_flush first.
 */
int ubdk_cow_close(struct ubdk_cow *cow);

/*
 * Check that the data of every sector marked present lies inside the COW
 * file: UBDK_E_SHORT_DATA (-EIO) naming the first sector that does not.
 * Reads of such sectors fail the same way (never zeros); tools that write
 * (merges) check first so that they refuse before writing anything.
 */
int ubdk_cow_check_data(struct ubdk_cow *cow, struct ubdk_err *err);

const struct ubdk_header *ubdk_cow_header(const struct ubdk_cow *cow);
const struct ubdk_geometry *ubdk_cow_geometry(const struct ubdk_cow *cow);
const char *ubdk_cow_path(const struct ubdk_cow *cow);
/* The backing path in use (override or header), NULL with NO_BACKING. */
const char *ubdk_cow_backing_path(const struct ubdk_cow *cow);
/* The backing file's descriptor, for callers that do their own bulk I/O
 * (sparse copies); -1 if none. */
int ubdk_cow_backing_fd(const struct ubdk_cow *cow);
/* Bytes of the backing file (as opened), 0 with NO_BACKING. */
uint64_t ubdk_cow_backing_size(const struct ubdk_cow *cow);
/* Bytes of memory the handle holds for the bitmap. */
uint64_t ubdk_cow_mem(const struct ubdk_cow *cow);

/*
 * Is sector n stored in the COW file?  1 or 0, or a negative errno when the
 * bitmap cannot be read there.
 */
int ubdk_cow_test(struct ubdk_cow *cow, uint64_t n, struct ubdk_err *err);
/* Number of sectors in [start, end) stored in the COW file. */
int ubdk_cow_count(struct ubdk_cow *cow, uint64_t start, uint64_t end,
		   uint64_t *count, struct ubdk_err *err);

/* Where the sectors of a run read from. */
enum ubdk_run_src {
	UBDK_RUN_BACKING = 0,     /* the backing file */
	UBDK_RUN_COW = 1,         /* the COW's data area */
	UBDK_RUN_ZERO = 2,        /* past the backing's end, or no backing:
	                             zeros */
};

/* A maximal run of sectors that all read from the same place. */
struct ubdk_run {
	uint64_t start;           /* first sector */
	uint64_t count;           /* number of sectors */
	int src;                  /* enum ubdk_run_src */
};

/*
 * Iterate runs over [*pos, end): fills run, advances *pos, returns 1; 0 when
 * *pos reached end; a negative errno when the bitmap cannot be read.  end
 * is clamped to the device's sector count.  A sector that straddles the
 * backing's end is a backing sector (its tail reads as zeros).
 */
int ubdk_cow_next_run(struct ubdk_cow *cow, uint64_t *pos, uint64_t end,
		      struct ubdk_run *run, struct ubdk_err *err);

/*
 * The same, with the backing file's holes (SEEK_HOLE) as UBDK_RUN_ZERO
 * runs: sectors wholly inside a hole read as zeros, so callers that map or
 * copy the device (NBD extents, sparse copies) can skip them.  Where the
 * file system cannot tell, backing runs stay backing runs.
 */
int ubdk_cow_next_extent(struct ubdk_cow *cow, uint64_t *pos, uint64_t end,
			 struct ubdk_run *run, struct ubdk_err *err);

/*
 * Stray data: bytes of the COW's data area that the file stores (not
 * holes) for sectors whose bit is clear, which no read uses (a write
 * interrupted before its bitmap update, a copy that did not keep holes,
 * the byte that sets a new COW's size).  The next range at or after file
 * offset *pos (0 to start): 1 with [*off, *off + *len) and *pos moved past
 * it, 0 at the end.  Where the file system cannot tell holes, everything
 * counts as stored.
 */
int ubdk_cow_next_stray(struct ubdk_cow *cow, uint64_t *pos, uint64_t *off,
			uint64_t *len, struct ubdk_err *err);

/* A piece of caller memory, laid out as struct iovec. */
struct ubdk_iov {
	void *base;
	size_t len;
};

/*
 * Read len bytes at byte offset off of the merged view: COW data where the
 * bit is set, backing elsewhere, zeros past the end of a short backing (or
 * with NO_BACKING).  Reading past the device size fails with UBDK_E_RANGE;
 * a present sector whose data lies past the COW's end with
 * UBDK_E_SHORT_DATA.
 */
int ubdk_cow_pread(struct ubdk_cow *cow, void *buf, size_t len, uint64_t off,
		   struct ubdk_err *err);
int ubdk_cow_preadv(struct ubdk_cow *cow, const struct ubdk_iov *iov,
		    int iovcnt, uint64_t off, struct ubdk_err *err);

/*
 * The same read in two steps, for callers that serve reads from several
 * threads.  ubdk_cow_plan_read() looks at the bitmap (it may load chunks
 * of it: callers hold their lock) and fills at most max runs covering
 * [off, off + len) from the start; *end is where they stop (off + len
 * when they cover it all).  ubdk_cow_read_planned() then reads [off, end)
 * of those runs into buf touching nothing in the handle but its
 * descriptors, so several may run at once, and beside writes to other
 * ranges.
 */
int ubdk_cow_plan_read(struct ubdk_cow *cow, uint64_t off, uint64_t len,
		       struct ubdk_run *runs, size_t max, size_t *n,
		       uint64_t *end, struct ubdk_err *err);
int ubdk_cow_read_planned(const struct ubdk_cow *cow,
			  const struct ubdk_run *runs, size_t n, void *buf,
			  uint64_t off, uint64_t end, struct ubdk_err *err);

/*
 * Write through the pair in the kernel's order: the data to the COW's data
 * area, then the sectors' bits are set in memory.  The bitmap chunks that
 * changed reach the file at ubdk_cow_writeback(), ubdk_cow_flush(),
 * ubdk_cow_close() or, with UBDK_OPEN_SYNC, before the write returns: never
 * before the data they describe.  If the data write fails no bit is set.
 * off must be a multiple of the sector size, and so must len unless the
 * write ends at the device's end (a short last sector).  Requires RDWR.
 */
int ubdk_cow_pwrite(struct ubdk_cow *cow, const void *buf, size_t len,
		    uint64_t off, struct ubdk_err *err);
int ubdk_cow_pwritev(struct ubdk_cow *cow, const struct ubdk_iov *iov,
		     int iovcnt, uint64_t off, struct ubdk_err *err);
/*
 * Discard (zero = false) or write zeroes (zero = true) over whole sectors:
 * the COW's data area is punched (or zeroed in place) and the sectors are
 * marked present, so that they read as zeros, as the ubd driver does.
 */
int ubdk_cow_discard(struct ubdk_cow *cow, uint64_t off, uint64_t len,
		     bool zero, struct ubdk_err *err);

/* Bitmap chunks changed in memory and not yet written back? */
bool ubdk_cow_dirty(const struct ubdk_cow *cow);
/* Write the changed bitmap chunks to the file (no fsync). */
int ubdk_cow_writeback(struct ubdk_cow *cow, struct ubdk_err *err);
/* Write back the bitmap, then fsync the COW file. */
int ubdk_cow_flush(struct ubdk_cow *cow, struct ubdk_err *err);

/* Result of comparing the backing file with the header. */
struct ubdk_backing_check {
	bool size_ok;
	bool mtime_ok;
	uint64_t header_size, actual_size;
	uint32_t header_mtime;
	uint32_t actual_mtime;    /* low 32 bits of the file's mtime */
	int64_t size_delta;       /* actual - header */
	int64_t mtime_delta;      /* actual - header, seconds (32-bit wrap aware) */
};

/*
 * Compare a backing file with hdr.  Returns 0 when both match,
 * -ESTALE with UBDK_E_SIZE_MISMATCH or UBDK_E_MTIME_MISMATCH otherwise (size
 * is reported first, as the kernel does); res is filled in either case.
 */
int ubdk_backing_check(const struct ubdk_header *hdr, const char *backing,
		       struct ubdk_backing_check *res, struct ubdk_err *err);
/*
 * The same for the backing file an open COW holds, checked on its
 * descriptor (a path-based check would reopen a block device and so drop
 * this process's own fcntl lock on it).
 */
int ubdk_cow_backing_check(const struct ubdk_cow *cow,
			   struct ubdk_backing_check *res,
			   struct ubdk_err *err);

/*
 * The backing path as the kernel stores it: the directory part resolved
 * to an absolute physical path, the last component kept as given.
 */
int ubdk_absolutize(const char *path, char *out, size_t outlen,
		    struct ubdk_err *err);

/* How to make a new COW file. */
struct ubdk_create_opts {
	uint32_t version;         /* 1, 2 or 3; 0 means 3 */
	uint32_t sectorsize;      /* 0 means 512 */
	uint32_t alignment;       /* v3 only; 0 means 4096 */
};

/*
 * Fill hdr for a new COW on backing (absolutized path, its size and mtime),
 * ready for ubdk_header_encode.  Fails on an empty or non-regular backing
 * file and on a path that does not fit the layout.
 */
int ubdk_create_header(const char *backing, const struct ubdk_create_opts *o,
		       struct ubdk_header *hdr, struct ubdk_err *err);
enum ubdk_create_flags {
	/*
	 * For many clones of one header: the header without the zeros it
	 * ends in and the size set with ftruncate, so that the file holds
	 * one block (not two) and reads back the same bytes.
	 */
	UBDK_CREATE_FAST = 1 << 0,
};

/*
 * Write a new COW described by hdr to an already open, empty file: header,
 * then one zero byte at data_offset + size - 1 so the file is sparse with
 * the apparent size the kernel gives it (flags: enum ubdk_create_flags).
 * `name` is used in messages.
 */
int ubdk_create_fd(int fd, const char *name, const struct ubdk_header *hdr,
		   int flags, struct ubdk_err *err);
/* Create path (O_EXCL unless overwrite) for backing with opts. */
int ubdk_create(const char *path, const char *backing,
		const struct ubdk_create_opts *o, bool overwrite,
		struct ubdk_err *err);

/*
 * Rewrite the header of an open (RDWR) COW to name new_backing with that
 * file's current size and mtime.  Refuses when the size differs from the
 * header's (the contents must be the same; only path and mtime may move).
 * Only the header bytes are rewritten, then the file is fsynced.
 */
int ubdk_cow_rebase(struct ubdk_cow *cow, const char *new_backing,
		    struct ubdk_err *err);

#ifdef __cplusplus
}
#endif

#endif /* UBDK_COW_H */
