/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The files of changed-block tracking (docs/cbt.md): writing the record
 * ("<cow>.cbt") and the map ("<cow>.cbt-map"), reading either back, and
 * loading the record into a tracker, trusted only when it is whole, CLEAN
 * and describes the COW as it is now.  Buffers come from ubdk_os_map(), as
 * in cbt.c: this also runs in the UML I/O thread and mconsole's stop loop.
 */
#include "cbt_internal.h"
#include "internal.h"
#include "ubdk_cbt.h"
#include "ubdk_os.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Bytes written or read at once. */
#define IO_BYTES 65536U

static const char MAGIC_RECORD[8] = { 'U', 'B', 'D', 'K', 'C', 'B', 'T', 'R' };
static const char MAGIC_MAP[8] = { 'U', 'B', 'D', 'K', 'C', 'B', 'T', 'M' };

/* --- files ------------------------------------------------------------- */

/* The 256-byte header (docs/cbt.md). */
static void put_header(uint8_t *h, int kind, const struct ubdk_cbt_info *in)
{
	memset(h, 0, UBDK_CBT_HEADER_LEN);
	memcpy(h, kind == UBDK_CBT_KIND_MAP ? MAGIC_MAP : MAGIC_RECORD, 8);
	ubdk_put_le32(h + 8, UBDK_CBT_VERSION);
	ubdk_put_le32(h + 12, UBDK_CBT_HEADER_LEN);
	ubdk_put_le32(h + 16, in->state);
	ubdk_put_le32(h + 20, in->reason);
	ubdk_put_le32(h + 24, in->granularity);
	ubdk_put_le64(h + 32, in->device_size);
	ubdk_put_le64(h + 40, in->generation);
	ubdk_put_le64(h + 48, in->id.cow_size);
	ubdk_put_le64(h + 56, (uint64_t)in->id.cow_mtime_ns);
	ubdk_put_le64(h + 64, in->id.backing_size);
	ubdk_put_le32(h + 72, in->id.backing_mtime);
	ubdk_put_le64(h + 80, in->blocks);
	ubdk_put_le64(h + 88, in->runs);
	memcpy(h + 96, in->name, strlen(in->name));
	memcpy(h + 160, in->from, strlen(in->from));
}

static uint64_t count_runs(const struct ubdk_cbt *c)
{
	uint64_t pos = 0, s, n, runs = 0;

	while (ubdk_cbt_next(c, &pos, &s, &n))
		runs++;
	return runs;
}

/* "<path><suffix>" in a mapped buffer of UBDK_PATH_MAX + 16 bytes. */
#define NAME_BUF (UBDK_PATH_MAX + 16)

/*
 * Write header and runs of c (NULL: none) to path through path.tmp and a
 * rename; fsync when asked.
 */
static int write_file(const char *path, int kind,
		      const struct ubdk_cbt_info *info,
		      const struct ubdk_cbt *c, bool sync,
		      struct ubdk_err *err)
{
	uint8_t *buf;
	char *tmp;
	uint64_t pos = 0, s, n, off = 0;
	size_t have;
	uint32_t crc;
	int fd = -1, ret;

	if (strlen(path) + 5 > NAME_BUF)
		return ubdk_fail(err, UBDK_E_PATH_TOO_LONG, ENAMETOOLONG,
				 "%s: name too long", path);
	buf = ubdk_os_map(IO_BYTES + NAME_BUF);
	if (!buf)
		return ubdk_fail(err, UBDK_E_NOMEM, ENOMEM,
				 "%s: no memory to write it", path);
	tmp = (char *)buf + IO_BYTES;
	strcpy(tmp, path);
	strcat(tmp, ".tmp");
	ret = ubdk_os_open(tmp, UBDK_OS_RDWR | UBDK_OS_CREATE | UBDK_OS_TRUNC,
			   0644, &fd);
	if (ret < 0) {
		ubdk_fail(err, UBDK_E_SYS, -ret, "%s: cannot create: %s", tmp,
			  strerror(-ret));
		goto out;
	}
	put_header(buf, kind, info);
	crc = ubdk_crc32(0, buf, UBDK_CBT_HEADER_LEN);
	have = UBDK_CBT_HEADER_LEN;
	while (c && ubdk_cbt_next(c, &pos, &s, &n)) {
		if (have + UBDK_CBT_RUN_LEN > IO_BYTES) {
			ret = ubdk_os_pwrite(fd, buf, have, off);
			if (ret < 0)
				goto write_fail;
			off += have;
			have = 0;
		}
		ubdk_put_le64(buf + have, s);
		ubdk_put_le64(buf + have + 8, n);
		crc = ubdk_crc32(crc, buf + have, UBDK_CBT_RUN_LEN);
		have += UBDK_CBT_RUN_LEN;
	}
	if (have + 4 > IO_BYTES) {
		ret = ubdk_os_pwrite(fd, buf, have, off);
		if (ret < 0)
			goto write_fail;
		off += have;
		have = 0;
	}
	ubdk_put_le32(buf + have, crc);
	have += 4;
	ret = ubdk_os_pwrite(fd, buf, have, off);
	if (ret < 0)
		goto write_fail;
	if (sync) {
		ret = ubdk_os_fsync(fd);
		if (ret < 0)
			goto write_fail;
	}
	ret = ubdk_os_close(fd);
	fd = -1;
	if (ret < 0)
		goto write_fail;
	ret = ubdk_os_rename(tmp, path);
	if (ret < 0) {
		ubdk_fail(err, UBDK_E_SYS, -ret, "%s: cannot rename to %s: %s",
			  tmp, path, strerror(-ret));
		goto out;
	}
	goto out;
write_fail:
	ubdk_fail(err, UBDK_E_SYS, -ret, "%s: cannot write: %s", tmp,
		  strerror(-ret));
out:
	if (fd >= 0)
		ubdk_os_close(fd);
	/* Never leave a half-written temporary behind. */
	if (ret < 0)
		ubdk_os_unlink(tmp);
	ubdk_os_unmap(buf, IO_BYTES + NAME_BUF);
	return ret;
}

int ubdk_cbt_save(const struct ubdk_cbt *c, const char *path, int state,
		  const struct ubdk_cbt_identity *id, struct ubdk_err *err)
{
	struct ubdk_cbt_info info;

	if (state != UBDK_CBT_STATE_OPEN && state != UBDK_CBT_STATE_CLEAN)
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "%s: bad record state %d", path, state);
	ubdk_cbt_get_info(c, &info);
	info.state = (uint32_t)state;
	info.id = *id;
	info.runs = count_runs(c);
	return write_file(path, UBDK_CBT_KIND_RECORD, &info, c, true, err);
}

int ubdk_cbt_mark_open(const struct ubdk_cbt *c, const char *path, bool sync)
{
	/* On the stack: the I/O thread may take no memory but mappings, and
	 * this is small (the frame stays well under the kernel's 1 KiB). */
	uint8_t buf[UBDK_CBT_HEADER_LEN + 4];
	struct ubdk_cbt_info info;
	int fd, ret, ret2;

	ubdk_cbt_get_info(c, &info);
	info.state = UBDK_CBT_STATE_OPEN;
	info.blocks = 0;
	put_header(buf, UBDK_CBT_KIND_RECORD, &info);
	ubdk_put_le32(buf + UBDK_CBT_HEADER_LEN,
		      ubdk_crc32(0, buf, UBDK_CBT_HEADER_LEN));
	/* In place: a crash half-way leaves a record that fails its
	 * checksum or is empty, untrusted either way. */
	ret = ubdk_os_open(path, UBDK_OS_RDWR | UBDK_OS_CREATE | UBDK_OS_TRUNC,
			   0644, &fd);
	if (ret < 0)
		return ret;
	ret = ubdk_os_pwrite(fd, buf, sizeof(buf), 0);
	if (!ret && sync)
		ret = ubdk_os_fsync(fd);
	ret2 = ubdk_os_close(fd);
	return ret ? ret : ret2;
}

int ubdk_cbt_write_map(const struct ubdk_cbt *s, const char *to,
		       const char *path, const struct ubdk_cbt_identity *id,
		       struct ubdk_err *err)
{
	struct ubdk_cbt_info info;

	if (!to || !ubdk_cbt_name_ok(to))
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "bad checkpoint name");
	ubdk_cbt_get_info(s, &info);
	strcpy(info.from, info.name);
	strcpy(info.name, to);
	/* The map ends at checkpoint generation + 1. */
	info.generation++;
	info.id = *id;
	info.runs = count_runs(s);
	return write_file(path, UBDK_CBT_KIND_MAP, &info, s, false, err);
}

/* --- reading ------------------------------------------------------------- */

struct ubdk_cbt_file {
	int fd;
	struct ubdk_cbt_info info;
	uint64_t nblocks;
	uint64_t next;             /* runs returned */
	uint64_t buf_off;          /* file offset of buf[0] */
	size_t buf_len;
	uint8_t buf[IO_BYTES];
	char path[];
};

static int file_fail(const struct ubdk_cbt_file *f, struct ubdk_err *err,
		     int code, const char *what)
{
	return ubdk_fail(err, code, code == UBDK_E_SYS ? EIO : EINVAL,
			 "%s: %s", f->path, what);
}

/* A NUL-terminated valid name from a 64-byte field, else false. */
static bool get_name(const uint8_t *p, char *out)
{
	size_t i;

	for (i = 0; i < UBDK_CBT_NAME_MAX; i++)
		if (!p[i])
			break;
	if (i == UBDK_CBT_NAME_MAX)
		return false;
	memcpy(out, p, i);
	out[i] = '\0';
	for (; i < UBDK_CBT_NAME_MAX; i++)
		if (p[i])
			return false;
	return ubdk_cbt_name_ok(out);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* Bytes [off, off + len) of the file into f->buf (len <= IO_BYTES). */
static int fill(struct ubdk_cbt_file *f, uint64_t off, size_t len,
		struct ubdk_err *err)
{
	size_t got;
	int ret = ubdk_os_pread(f->fd, f->buf, len, off, &got);

	if (ret < 0)
		return ubdk_fail(err, UBDK_E_SYS, -ret, "%s: cannot read: %s",
				 f->path, strerror(-ret));
	if (got != len)
		return file_fail(f, err, UBDK_E_CBT_FIELD,
				 "shorter than its header says (changed "
				 "while read?)");
	f->buf_off = off;
	f->buf_len = len;
	return 0;
}

/* Blocks of granularity gran (valid) in size bytes. */
static uint64_t blocks_of(uint64_t size, uint32_t gran)
{
	return (size >> ubdk_cbt_log2(gran)) + ((size & (gran - 1)) != 0);
}

/* Header fields, after the checksum matched. */
static int check_header(struct ubdk_cbt_file *f, const uint8_t *h, int kind,
			struct ubdk_err *err)
{
	struct ubdk_cbt_info *in = &f->info;
	char what[128];

	in->state = ubdk_get_le32(h + 16);
	in->reason = ubdk_get_le32(h + 20);
	in->granularity = ubdk_get_le32(h + 24);
	in->device_size = ubdk_get_le64(h + 32);
	in->generation = ubdk_get_le64(h + 40);
	in->id.cow_size = ubdk_get_le64(h + 48);
	in->id.cow_mtime_ns = (int64_t)ubdk_get_le64(h + 56);
	in->id.backing_size = ubdk_get_le64(h + 64);
	in->id.backing_mtime = ubdk_get_le32(h + 72);
	in->blocks = ubdk_get_le64(h + 80);
	in->runs = ubdk_get_le64(h + 88);
	if (kind == UBDK_CBT_KIND_RECORD ?
	    in->state != UBDK_CBT_STATE_OPEN &&
	    in->state != UBDK_CBT_STATE_CLEAN :
	    in->state != UBDK_CBT_STATE_NONE) {
		snprintf(what, sizeof(what), "bad state %u", in->state);
		return file_fail(f, err, UBDK_E_CBT_FIELD, what);
	}
	if (in->reason >= UBDK_CBT_REASON__COUNT) {
		snprintf(what, sizeof(what), "bad reason %u", in->reason);
		return file_fail(f, err, UBDK_E_CBT_FIELD, what);
	}
	if (!in->device_size)
		return file_fail(f, err, UBDK_E_CBT_FIELD,
				 "device size 0");
	if (!get_name(h + 96, in->name) || !get_name(h + 160, in->from))
		return file_fail(f, err, UBDK_E_CBT_FIELD,
				 "bad checkpoint name");
	if (kind == UBDK_CBT_KIND_RECORD && in->from[0])
		return file_fail(f, err, UBDK_E_CBT_FIELD,
				 "a record with a 'from' name");
	if (!all_zero(h + 28, 4) || !all_zero(h + 76, 4) ||
	    !all_zero(h + 224, 32))
		return file_fail(f, err, UBDK_E_CBT_FIELD,
				 "reserved bytes not zero");
	f->nblocks = blocks_of(in->device_size, in->granularity);
	if (in->blocks > f->nblocks || in->runs > in->blocks) {
		snprintf(what, sizeof(what), "%llu blocks in %llu runs on a "
			 "device of %llu blocks",
			 (unsigned long long)in->blocks,
			 (unsigned long long)in->runs,
			 (unsigned long long)f->nblocks);
		return file_fail(f, err, UBDK_E_CBT_FIELD, what);
	}
	return 0;
}

/* A run against the one before it (prev_end: its end) and the device. */
static const char *bad_run(const struct ubdk_cbt_file *f, uint64_t s,
			   uint64_t n, uint64_t prev_end)
{
	if (!n)
		return "a run of 0 blocks";
	if (s < prev_end)
		return "runs not sorted or overlapping";
	if (s >= f->nblocks || n > f->nblocks - s)
		return "a run past the device's end";
	return NULL;
}

int ubdk_cbt_file_open(const char *path, int kind, uint64_t device_size,
		       struct ubdk_cbt_file **out, struct ubdk_cbt_info *info,
		       struct ubdk_err *err)
{
	struct ubdk_cbt_file *f;
	struct ubdk_os_stat st;
	uint8_t h[UBDK_CBT_HEADER_LEN];
	uint64_t off, end, prev = 0, sum = 0, i;
	const char *bad = NULL;
	char what[160];
	uint32_t crc;
	int ret;

	*out = NULL;
	f = ubdk_os_alloc(sizeof(*f) + strlen(path) + 1);
	if (!f)
		return ubdk_fail(err, UBDK_E_NOMEM, ENOMEM,
				 "%s: no memory to read it", path);
	memset(f, 0, sizeof(*f));
	strcpy(f->path, path);
	f->fd = -1;
	ret = ubdk_os_open(path, UBDK_OS_RDONLY, 0, &f->fd);
	if (ret < 0) {
		f->fd = -1;
		ubdk_fail(err, UBDK_E_SYS, -ret, "%s: cannot open: %s", path,
			  strerror(-ret));
		goto fail;
	}
	ret = ubdk_os_fstat(f->fd, &st);
	if (ret < 0) {
		ubdk_fail(err, UBDK_E_SYS, -ret, "%s: cannot stat: %s", path,
			  strerror(-ret));
		goto fail;
	}
	ret = -EINVAL;
	if (st.type != UBDK_OS_REG) {
		file_fail(f, err, UBDK_E_NOT_REGULAR, "not a regular file");
		goto fail;
	}
	if (st.size < UBDK_CBT_HEADER_LEN + 4) {
		file_fail(f, err, UBDK_E_SHORT_HEADER,
			  "too short for a CBT record or map");
		goto fail;
	}
	ret = fill(f, 0, UBDK_CBT_HEADER_LEN, err);
	if (ret < 0)
		goto fail;
	memcpy(h, f->buf, sizeof(h));
	ret = -EINVAL;
	if (memcmp(h, MAGIC_RECORD, 8) && memcmp(h, MAGIC_MAP, 8)) {
		file_fail(f, err, UBDK_E_BAD_MAGIC,
			  "bad magic (not a CBT record or map)");
		goto fail;
	}
	f->info.kind = memcmp(h, MAGIC_MAP, 8) ? UBDK_CBT_KIND_RECORD :
						 UBDK_CBT_KIND_MAP;
	if (kind && f->info.kind != kind) {
		file_fail(f, err, UBDK_E_BAD_MAGIC, kind == UBDK_CBT_KIND_MAP ?
			  "bad magic (a CBT record, not a map)" :
			  "bad magic (a CBT map, not a record)");
		goto fail;
	}
	f->info.version = ubdk_get_le32(h + 8);
	if (f->info.version != UBDK_CBT_VERSION) {
		snprintf(what, sizeof(what), "unsupported version %u",
			 f->info.version);
		file_fail(f, err, UBDK_E_BAD_VERSION, what);
		goto fail;
	}
	if (ubdk_get_le32(h + 12) != UBDK_CBT_HEADER_LEN) {
		snprintf(what, sizeof(what), "header length %u, not %u",
			 ubdk_get_le32(h + 12), UBDK_CBT_HEADER_LEN);
		file_fail(f, err, UBDK_E_CBT_FIELD, what);
		goto fail;
	}
	f->info.runs = ubdk_get_le64(h + 88);
	if (f->info.runs > (st.size - UBDK_CBT_HEADER_LEN - 4) /
			   UBDK_CBT_RUN_LEN ||
	    st.size != UBDK_CBT_HEADER_LEN + 4 +
		       f->info.runs * UBDK_CBT_RUN_LEN) {
		snprintf(what, sizeof(what), "%llu bytes, but its header "
			 "says %llu runs (cut short or changed?)",
			 (unsigned long long)st.size,
			 (unsigned long long)f->info.runs);
		file_fail(f, err, UBDK_E_CBT_FIELD, what);
		goto fail;
	}
	/*
	 * Before the body is read, its length against the device: a file
	 * made sparse to match a header's huge count of runs would
	 * otherwise be read (its holes) and summed whole first, for
	 * minutes.  The device's blocks bound the runs; this needs the
	 * granularity, so it is checked here rather than after the
	 * checksum.
	 */
	f->info.granularity = ubdk_get_le32(h + 24);
	f->info.device_size = ubdk_get_le64(h + 32);
	if (!ubdk_cbt_gran_ok(f->info.granularity)) {
		ubdk_fail(err, UBDK_E_CBT_FIELD, EINVAL, "%s: granularity %u "
			  "is not a power of two between 4096 and 2^30", path,
			  f->info.granularity);
		goto fail;
	}
	f->nblocks = blocks_of(f->info.device_size, f->info.granularity);
	if (device_size &&
	    f->info.runs > blocks_of(device_size, f->info.granularity)) {
		ubdk_fail(err, UBDK_E_CBT_FIELD, EINVAL, "%s: its header says "
			  "%llu runs, more than the %llu blocks of the device "
			  "(%llu bytes)", path,
			  (unsigned long long)f->info.runs,
			  (unsigned long long)blocks_of(device_size,
							f->info.granularity),
			  (unsigned long long)device_size);
		goto fail;
	}
	/*
	 * A record is written whole, so its body has no holes.  One made
	 * sparse to fit its header would still be read and summed whole
	 * (4 GiB of holes for a 1 TiB device at the smallest granularity):
	 * refused from its extents instead.  A file system that cannot say
	 * where holes are gets the read.
	 */
	if (f->info.runs) {
		uint64_t data, hole;

		ret = ubdk_os_next_data(f->fd, UBDK_CBT_HEADER_LEN, &data, &hole);
		if (ret == -ENXIO || (ret == 0 && (data > UBDK_CBT_HEADER_LEN ||
						   hole < st.size))) {
			ubdk_fail(err, UBDK_E_CBT_FIELD, EINVAL, "%s: its body has "
				  "holes (%llu runs in a sparse file): not a record "
				  "as written", path,
				  (unsigned long long)f->info.runs);
			ret = -EINVAL;
			goto fail;
		}
	}
	/* Then the checksum: a damaged file is called that, whatever other
	 * field the damage hit.  Runs are checked on the way. */
	crc = ubdk_crc32(0, h, sizeof(h));
	end = UBDK_CBT_HEADER_LEN + f->info.runs * UBDK_CBT_RUN_LEN;
	for (off = UBDK_CBT_HEADER_LEN; off < end; off += f->buf_len) {
		size_t len = end - off > IO_BYTES ? IO_BYTES :
			     (size_t)(end - off);

		len -= len % UBDK_CBT_RUN_LEN;
		ret = fill(f, off, len, err);
		if (ret < 0)
			goto fail;
		crc = ubdk_crc32(crc, f->buf, len);
		for (i = 0; i < len && !bad; i += UBDK_CBT_RUN_LEN) {
			uint64_t s = ubdk_get_le64(f->buf + i);
			uint64_t n = ubdk_get_le64(f->buf + i + 8);

			bad = bad_run(f, s, n, prev);
			prev = s + n;
			sum += n;
		}
	}
	ret = fill(f, end, 4, err);
	if (ret < 0)
		goto fail;
	ret = -EINVAL;
	if (ubdk_get_le32(f->buf) != crc) {
		file_fail(f, err, UBDK_E_CHECKSUM, "checksum mismatch");
		goto fail;
	}
	ret = check_header(f, h, f->info.kind, err);
	if (ret < 0)
		goto fail;
	ret = -EINVAL;
	if (bad) {
		file_fail(f, err, UBDK_E_CBT_FIELD, bad);
		goto fail;
	}
	if (sum != f->info.blocks) {
		snprintf(what, sizeof(what), "runs hold %llu blocks, the "
			 "header says %llu", (unsigned long long)sum,
			 (unsigned long long)f->info.blocks);
		file_fail(f, err, UBDK_E_CBT_FIELD, what);
		goto fail;
	}
	f->buf_len = 0;
	f->buf_off = UBDK_CBT_HEADER_LEN;
	if (info)
		*info = f->info;
	*out = f;
	return 0;
fail:
	ubdk_cbt_file_close(f);
	return ret;
}

int ubdk_cbt_file_next(struct ubdk_cbt_file *f, uint64_t *start,
		       uint64_t *count, struct ubdk_err *err)
{
	uint64_t off, end = UBDK_CBT_HEADER_LEN + f->info.runs * UBDK_CBT_RUN_LEN;
	size_t at;
	int ret;

	if (f->next >= f->info.runs)
		return 0;
	off = UBDK_CBT_HEADER_LEN + f->next * UBDK_CBT_RUN_LEN;
	if (off < f->buf_off || off + UBDK_CBT_RUN_LEN > f->buf_off + f->buf_len) {
		size_t len = end - off > IO_BYTES ? IO_BYTES :
			     (size_t)(end - off);

		ret = fill(f, off, len - len % UBDK_CBT_RUN_LEN, err);
		if (ret < 0)
			return ret;
	}
	at = (size_t)(off - f->buf_off);
	*start = ubdk_get_le64(f->buf + at);
	*count = ubdk_get_le64(f->buf + at + 8);
	f->next++;
	return 1;
}

void ubdk_cbt_file_close(struct ubdk_cbt_file *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		ubdk_os_close(f->fd);
	ubdk_os_free(f);
}

/* --- loading the record ---------------------------------------------------- */

/* Why a record is not trusted: a note for the caller, never an error. */
__attribute__((format(printf, 3, 4)))
static void note(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

static int untrusted(struct ubdk_cbt_identity const *now, uint32_t gran,
		     const struct ubdk_cbt_info *keep, int reason,
		     struct ubdk_cbt **out, struct ubdk_err *err)
{
	int ret;

	ret = ubdk_cbt_new(now->backing_size, gran, keep ? keep->name : NULL,
			   reason, out, err);
	if (ret < 0)
		return ret;
	if (keep)
		(*out)->generation = keep->generation;
	return 0;
}

int ubdk_cbt_load(const char *path, const struct ubdk_cbt_identity *now,
		  uint32_t granularity, struct ubdk_cbt **out,
		  char *why, size_t whylen, struct ubdk_err *err)
{
	struct ubdk_cbt_file *f;
	struct ubdk_cbt_info info;
	struct ubdk_cbt *c;
	struct ubdk_err rec = { 0 };    /* what is wrong with the record */
	uint64_t s, n;
	int ret, reason = 0;

	*out = NULL;
	if (why && whylen)
		why[0] = '\0';
	if (!granularity)
		granularity = UBDK_CBT_GRANULARITY;
	ret = ubdk_cbt_file_open(path, UBDK_CBT_KIND_RECORD, now->backing_size,
				 &f, &info, &rec);
	if (ret == -ENOMEM) {
		if (err)
			*err = rec;
		return ret;
	}
	if (ret < 0) {
		note(why, whylen, "%s", rec.msg);
		return untrusted(now, granularity, NULL,
				 rec.errnum == ENOENT ?
				 UBDK_CBT_MISSING : UBDK_CBT_CORRUPT, out, err);
	}
	if (info.state != UBDK_CBT_STATE_CLEAN) {
		reason = UBDK_CBT_UNCLEAN;
		note(why, whylen, "%s: left open: the last session did not end "
		     "cleanly", path);
	} else if (info.device_size != now->backing_size ||
		   info.id.backing_size != now->backing_size ||
		   info.id.backing_mtime != now->backing_mtime) {
		reason = UBDK_CBT_HEADER_CHANGED;
		note(why, whylen, "%s: describes a COW over another backing "
		     "file (size or mtime in the header changed)", path);
	} else if (info.id.cow_size != now->cow_size ||
		   info.id.cow_mtime_ns != now->cow_mtime_ns) {
		reason = UBDK_CBT_COW_CHANGED;
		note(why, whylen, "%s: the COW file changed since the record "
		     "was written (size or mtime differ)", path);
	}
	if (reason) {
		ubdk_cbt_file_close(f);
		return untrusted(now, info.granularity, &info, reason, out,
				 err);
	}
	ret = ubdk_cbt_new(info.device_size, info.granularity, info.name,
			   (int)info.reason, &c, err);
	if (ret < 0) {
		ubdk_cbt_file_close(f);
		return ret;
	}
	c->generation = info.generation;
	while ((ret = ubdk_cbt_file_next(f, &s, &n, &rec)) == 1) {
		ret = ubdk_cbt_mark(c, s << c->shift, n << c->shift);
		if (ret < 0)
			break;
	}
	ubdk_cbt_file_close(f);
	if (ret == -ENOMEM) {
		ubdk_cbt_free(c);
		return ubdk_fail(err, UBDK_E_NOMEM, ENOMEM, "%s: out of "
				 "memory reading the record", path);
	}
	if (ret < 0) {
		/* Read error half-way: trust nothing. */
		ubdk_cbt_free(c);
		note(why, whylen, "%s", rec.msg);
		return untrusted(now, info.granularity, &info,
				 UBDK_CBT_CORRUPT, out, err);
	}
	*out = c;
	return 0;
}
