/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The COW's relation to its backing file: check, create, rebase. */
#include "internal.h"
#include "ubdk_os.h"

#include <errno.h>
#include <string.h>

static int stat_backing(const char *backing, struct ubdk_os_stat *st,
			struct ubdk_err *err)
{
	int ret = ubdk_os_stat(backing, st);

	if (ret < 0)
		return ubdk_fail(err, UBDK_E_SYS, -ret,
				 "backing file %s: %s", backing, strerror(-ret));
	if (st->type != UBDK_OS_REG && st->type != UBDK_OS_BLK)
		return ubdk_fail(err, UBDK_E_NOT_REGULAR, EINVAL,
				 "backing file %s: not a regular file or block "
				 "device", backing);
	return 0;
}

/*
 * Compare a stat of the backing file with the header.  Callers holding the
 * backing open pass an fstat of that descriptor: opening and closing the
 * file again would drop the process's fcntl lock on it.
 */
int ubdk__backing_compare(const struct ubdk_header *hdr, const char *backing,
			  const struct ubdk_os_stat *stp,
			  struct ubdk_backing_check *res, struct ubdk_err *err)
{
	const struct ubdk_os_stat st = *stp;

	memset(res, 0, sizeof(*res));
	res->header_size = hdr->size;
	res->actual_size = st.size;
	res->size_delta = (int64_t)(st.size - hdr->size);
	res->size_ok = st.size == hdr->size;
	res->header_mtime = hdr->mtime;
	res->actual_mtime = (uint32_t)st.mtime;
	/* The header keeps 32 bits: compare modulo 2^32, as the kernel does. */
	res->mtime_delta = (int32_t)(res->actual_mtime - hdr->mtime);
	res->mtime_ok = res->actual_mtime == hdr->mtime;
	if (!res->size_ok)
		return ubdk_fail(err, UBDK_E_SIZE_MISMATCH, ESTALE,
				 "backing file %s is %llu bytes but the header "
				 "says %llu (%+lld bytes)", backing,
				 (unsigned long long)res->actual_size,
				 (unsigned long long)res->header_size,
				 (long long)res->size_delta);
	if (!res->mtime_ok)
		return ubdk_fail(err, UBDK_E_MTIME_MISMATCH, ESTALE,
				 "backing file %s has mtime %u but the header "
				 "says %u (%+lld s): it was modified, touched "
				 "or copied without keeping its mtime", backing,
				 res->actual_mtime, res->header_mtime,
				 (long long)res->mtime_delta);
	return 0;
}

int ubdk_backing_check(const struct ubdk_header *hdr, const char *backing,
		       struct ubdk_backing_check *res, struct ubdk_err *err)
{
	struct ubdk_os_stat st;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = stat_backing(backing, &st, err);
	if (ret < 0)
		return ret;
	return ubdk__backing_compare(hdr, backing, &st, res, err);
}

int ubdk_absolutize(const char *path, char *out, size_t outlen,
		    struct ubdk_err *err)
{
	/* The directory is resolved in out itself: no path buffer on the
	 * stack, which is a kernel stack when the ubd driver calls this. */
	const char *slash = strrchr(path, '/');
	size_t dlen, rest;
	int ret;

	if (path[0] == '\0')
		return ubdk_fail(err, UBDK_E_BACKING_EMPTY, EINVAL,
				 "backing file path is empty");
	if (!slash) {
		ret = ubdk_os_getcwd(out, outlen);
		if (ret == -ERANGE || ret == -ENAMETOOLONG)
			goto too_long;
		if (ret < 0)
			return ubdk_fail(err, UBDK_E_SYS, -ret,
					 "%s: cannot get the current "
					 "directory: %s", path, strerror(-ret));
		rest = strlen(path);
	} else {
		dlen = (size_t)(slash - path);
		if (dlen >= outlen)
			goto too_long;
		if (dlen == 0) {
			strcpy(out, "/");
		} else {
			memcpy(out, path, dlen);
			out[dlen] = '\0';
			ret = ubdk_os_realdir(out, out, outlen);
			if (ret < 0)
				return ubdk_fail(err,
					ret == -ENAMETOOLONG ?
					UBDK_E_PATH_TOO_LONG : UBDK_E_SYS,
					-ret, "%s: cannot resolve directory: %s",
					path, strerror(-ret));
		}
		path = slash + 1;
		rest = strlen(path);
	}
	/* "/" + name must not become "//name". */
	dlen = strcmp(out, "/") == 0 ? 0 : strlen(out);
	if (dlen + 1 + rest + 1 > outlen)
		goto too_long;
	out[dlen] = '/';
	memcpy(out + dlen + 1, path, rest + 1);
	return 0;
too_long:
	return ubdk_fail(err, UBDK_E_PATH_TOO_LONG, ENAMETOOLONG,
			 "%s: absolute path does not fit in %zu bytes", path,
			 outlen);
}

int ubdk_create_header(const char *backing, const struct ubdk_create_opts *o,
		       struct ubdk_header *hdr, struct ubdk_err *err)
{
	static const struct ubdk_create_opts defaults;
	struct ubdk_os_stat st;
	struct ubdk_geometry geo;
	size_t field;
	int ret;

	if (!o)
		o = &defaults;
	memset(hdr, 0, sizeof(*hdr));
	hdr->version = o->version ? o->version : 3;
	if (hdr->version < 1 || hdr->version > 3)
		return ubdk_fail(err, UBDK_E_BAD_VERSION, EINVAL,
				 "cannot write COW version %u (1, 2 or 3)",
				 hdr->version);
	hdr->layout = (int)hdr->version;
	hdr->sectorsize = o->sectorsize ? o->sectorsize :
			  UBDK_DEFAULT_SECTORSIZE;
	hdr->alignment = hdr->version < 3 ? hdr->sectorsize :
			 o->alignment ? o->alignment : UBDK_DEFAULT_ALIGNMENT;

	ret = ubdk_absolutize(backing, hdr->backing, sizeof(hdr->backing), err);
	if (ret < 0)
		return ret;
	field = hdr->layout == UBDK_LAYOUT_V1 ? UBDK_PATH_V1_MAX : UBDK_PATH_MAX;
	if (strlen(hdr->backing) >= field)
		return ubdk_fail(err, UBDK_E_PATH_TOO_LONG, ENAMETOOLONG,
				 "backing file %s: absolute path of %zu bytes "
				 "does not fit a v%u header (at most %zu)",
				 hdr->backing, strlen(hdr->backing),
				 hdr->version, field - 1);
	ret = stat_backing(hdr->backing, &st, err);
	if (ret < 0)
		return ret;
	if (st.size == 0)
		return ubdk_fail(err, UBDK_E_EMPTY_BACKING, EINVAL,
				 "backing file %s is empty", hdr->backing);
	hdr->size = st.size;
	hdr->mtime = (uint32_t)st.mtime;
	return ubdk_header_geometry(hdr, hdr->backing, &geo, err);
}

int ubdk_create_fd(int fd, const char *name, const struct ubdk_header *hdr,
		   int flags, struct ubdk_err *err)
{
	uint8_t *buf;
	struct ubdk_geometry geo;
	static const uint8_t zero;
	int ret;

	ret = ubdk_header_geometry(hdr, name, &geo, err);
	if (ret < 0)
		return ret;
	buf = ubdk_os_zalloc(UBDK_HDR_MAX_SIZE);
	if (!buf)
		return ubdk_fail(err, UBDK_E_NOMEM, ENOMEM, "%s: out of memory",
				 ubdk_name(name));
	ret = ubdk_header_encode(hdr, buf, UBDK_HDR_MAX_SIZE, err);
	if (ret < 0) {
		ubdk_os_free(buf);
		return ret;
	}
	/* Zeros left as a hole read back the same: the header's own block. */
	while ((flags & UBDK_CREATE_FAST) && ret > 0 && buf[ret - 1] == 0)
		ret--;
	ret = ret > 0 ? ubdk_os_pwrite(fd, buf, (size_t)ret, 0) : 0;
	ubdk_os_free(buf);
	/* One byte at the very end sets the size and leaves the rest sparse
	 * (as the kernel does); fast, no byte at all. */
	if (ret == 0)
		ret = flags & UBDK_CREATE_FAST ?
		      ubdk_os_truncate(fd, geo.file_size) :
		      ubdk_os_pwrite(fd, &zero, 1, geo.file_size - 1);
	if (ret < 0)
		return ubdk_fail(err, UBDK_E_SYS, -ret, "%s: writing: %s",
				 ubdk_name(name), strerror(-ret));
	return 0;
}

int ubdk_create(const char *path, const char *backing,
		const struct ubdk_create_opts *o, bool overwrite,
		struct ubdk_err *err)
{
	/* A header holds a 4 KiB path: on the heap, not a kernel stack. */
	struct ubdk_header *hdr = ubdk_os_zalloc(sizeof(*hdr));
	int fd, ret, mode = UBDK_OS_RDWR | UBDK_OS_CREATE;

	if (!hdr)
		return ubdk_fail(err, UBDK_E_NOMEM, ENOMEM, "%s: out of memory",
				 path);
	ret = ubdk_create_header(backing, o, hdr, err);
	if (ret < 0)
		goto out;
	mode |= overwrite ? UBDK_OS_TRUNC : UBDK_OS_EXCL;
	ret = ubdk_os_open(path, mode, 0644, &fd);
	if (ret < 0) {
		ret = ubdk_fail(err, UBDK_E_SYS, -ret, "%s: cannot create: %s",
				path, strerror(-ret));
		goto out;
	}
	ret = ubdk_create_fd(fd, path, hdr, 0, err);
	if (ret == 0) {
		ret = ubdk_os_fsync(fd);
		if (ret < 0)
			ubdk_fail(err, UBDK_E_SYS, -ret, "%s: fsync: %s", path,
				  strerror(-ret));
	}
	if (ubdk_os_close(fd) < 0 && ret == 0)
		ret = ubdk_fail(err, UBDK_E_SYS, EIO, "%s: close failed", path);
	/* Never leave a file that looks like a COW but is not complete. */
	if (ret < 0)
		ubdk_os_unlink(path);
out:
	ubdk_os_free(hdr);
	return ret;
}

int ubdk_cow_rebase(struct ubdk_cow *cow, const char *new_backing,
		    struct ubdk_err *err)
{
	const struct ubdk_header *old = ubdk_cow_header(cow);
	struct ubdk_header *hdr = ubdk_os_zalloc(sizeof(*hdr));
	struct ubdk_os_stat st;
	size_t field;
	int ret;

	if (!hdr)
		return ubdk_fail(err, UBDK_E_NOMEM, ENOMEM, "%s: out of memory",
				 ubdk_cow_path(cow));
	*hdr = *old;
	ret = ubdk_absolutize(new_backing, hdr->backing, sizeof(hdr->backing),
			      err);
	if (ret < 0)
		goto out;
	/* The backing this handle holds: fstat it, since a stat by path
	 * reopens a block device and so drops this process's lock on it. */
	if (ubdk_cow_backing_fd(cow) >= 0 && ubdk_cow_backing_path(cow) &&
	    !strcmp(new_backing, ubdk_cow_backing_path(cow))) {
		ret = ubdk_os_fstat(ubdk_cow_backing_fd(cow), &st);
		if (ret < 0)
			ret = ubdk_fail(err, UBDK_E_SYS, -ret, "backing file %s: %s",
					new_backing, strerror(-ret));
	} else {
		ret = stat_backing(hdr->backing, &st, err);
	}
	if (ret < 0)
		goto out;
	if (st.size != old->size) {
		ret = ubdk_fail(err, UBDK_E_SIZE_MISMATCH, ESTALE,
				"%s: refusing to rebase onto %s: it is %llu "
				"bytes, the header says %llu; a rebase only "
				"records a moved or touched backing file whose "
				"content is unchanged", ubdk_cow_path(cow),
				hdr->backing, (unsigned long long)st.size,
				(unsigned long long)old->size);
		goto out;
	}
	field = hdr->layout == UBDK_LAYOUT_V1 ? UBDK_PATH_V1_MAX : UBDK_PATH_MAX;
	if (strlen(hdr->backing) >= field) {
		ret = ubdk_fail(err, UBDK_E_PATH_TOO_LONG, ENAMETOOLONG,
				"%s: backing path %s does not fit a %s header",
				ubdk_cow_path(cow), hdr->backing,
				ubdk_layout_name(hdr->layout));
		goto out;
	}
	hdr->mtime = (uint32_t)st.mtime;
	/* The broken layout is read-only: rewrite it as the v3 it meant. */
	if (hdr->layout == UBDK_LAYOUT_V3_BROKEN)
		hdr->layout = UBDK_LAYOUT_V3;
	ret = ubdk__cow_replace_header(cow, hdr, err);
out:
	ubdk_os_free(hdr);
	return ret;
}
