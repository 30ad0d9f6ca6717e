/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chainops.c - the commands on chains: restore a point (the streams from
 * its full point down to it, applied in order), verify points and their
 * links without restoring anything (each stream's chunks against its
 * table and its parent's), and prune (the oldest kept point rewritten as
 * a full one, then the older points removed).
 */
#define _GNU_SOURCE
#include "point.h"
#include "afile.h"
#include "cli.h"
#include "extent.h"
#include "input.h"
#include "pack.h"
#include "lz4_splice.h"
#include "quote.h"
#include "xstream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CHAIN 1024

static void split_point_path(const char *path, char *chaindir, size_t cl, char *name, size_t nl)
{
	char tmp[PATH_MAX];
	char *slash;

	snprintf(tmp, sizeof(tmp), "%s", path);
	/* Trailing slashes: "chain/point/" is "chain/point". */
	for (size_t l = strlen(tmp); l > 1 && tmp[l - 1] == '/'; l--)
		tmp[l - 1] = '\0';
	slash = strrchr(tmp, '/');
	if (!slash) {
		snprintf(chaindir, cl, ".");
		snprintf(name, nl, "%s", tmp);
	} else {
		snprintf(name, nl, "%s", slash + 1);
		*slash = '\0';
		snprintf(chaindir, cl, "%s", tmp[0] ? tmp : "/");
	}
}

/* --- reading a point's stream ---------------------------------------------- */

static bool hex_is(const uint8_t d[16], const char *hex)
{
	char h[XXH_HEX];

	digest_hex(d, h);
	return hex && !strcmp(h, hex);
}

/* Check a stream's header against its point; 0 or -EBADMSG with msg. */
static int check_header(const struct xs_header *h, const struct point *p,
			const struct manifest_device *d, char *msg, size_t msglen)
{
	if (memcmp(h->point, p->id, 16)) {
		snprintf(msg, msglen, "the stream is of another point");
		return -EBADMSG;
	}
	if (!(h->flags & XS_FLAG_INCREMENTAL) != !p->incremental) {
		snprintf(msg, msglen, "the stream is %s, the manifest says %s",
			 h->flags & XS_FLAG_INCREMENTAL ? "incremental" : "full", p->m.kind);
		return -EBADMSG;
	}
	if (p->incremental && !hex_is(h->parent, p->m.parent_point)) {
		snprintf(msg, msglen, "the stream applies over another parent than its "
			 "manifest's %s", p->m.parent_point);
		return -EBADMSG;
	}
	if (h->file_size != d->cow_bytes) {
		snprintf(msg, msglen, "the stream makes a file of %llu bytes, the manifest "
			 "says %llu", (unsigned long long)h->file_size,
			 (unsigned long long)d->cow_bytes);
		return -EBADMSG;
	}
	return 0;
}

/* Applying streams to a file. */
struct apply_ctx {
	int fd;
	const struct point *p;
	const struct manifest_device *d;
	uint64_t file_size;
	uint64_t written;
	char msg[256];
};

static int punch_zero(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t z[65536];

	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		      (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	while (len) {
		size_t n = len > sizeof(z) ? sizeof(z) : (size_t)len;
		int ret = write_all(fd, z, n, (off_t)off);

		if (ret < 0)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

static int apply_record(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
			const uint8_t *data)
{
	struct apply_ctx *a = ctx;

	if (off == XS_HEADER_CALL) {
		a->file_size = h->file_size;
		return check_header(h, a->p, a->d, a->msg, sizeof(a->msg));
	}
	if (!data)
		return punch_zero(a->fd, off, len);
	a->written += len;
	return write_all(a->fd, data, (size_t)len, (off_t)off);
}

/* Open a point's stream of device d; -1 after msg. */
static int open_stream(const struct point *p, const struct manifest_device *d, char *msg,
		       size_t msglen)
{
	char path[PATH_MAX + 80];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", p->dir, d->file);
	fd = input_open(path, &st);
	if (fd >= 0 && !S_ISREG(st.st_mode)) {
		close(fd);
		fd = INPUT_E_TYPE;
	}
	if (fd < 0)
		snprintf(msg, msglen, "point %s: %s: %s", p->name, d->file, input_strerror(fd));
	return fd;
}

/* --- restore ---------------------------------------------------------------- */

int chain_restore(const struct options *o)
{
	char chaindir[PATH_MAX], name[NAME_MAX + 1], pdir[PATH_MAX], base[NAME_MAX + 1];
	char out[PATH_MAX], odir[PATH_MAX], msg[600] = "", tpath[PATH_MAX + 80];
	static struct point pts[MAX_CHAIN];
	const struct manifest_device *dev = NULL;
	struct chunk_table want, got;
	struct afile af = { .fd = -1 };
	struct stat st;
	uint64_t rd, diff;
	int n = 0, st_exit = EXIT_FAILED, dirfd = -1, ret = 0;
	double t0 = now();

	split_point_path(o->input, pdir, sizeof(pdir), base, sizeof(base));
	split_point_path(pdir, chaindir, sizeof(chaindir), name, sizeof(name));
	if (!chain_path(chaindir, name, pts, MAX_CHAIN, &n, msg, sizeof(msg))) {
		cli_error("%s: cannot restore: %s", quote_name(o->input), msg);
		return EXIT_FAILED;
	}
	for (size_t i = 0; i < pts[n - 1].m.ndev; i++)
		if (quote_json_matches(base, pts[n - 1].m.dev[i].file))
			dev = &pts[n - 1].m.dev[i];
	if (!dev) {
		cli_error("%s: not listed in %s/%s", quote_name(o->input), quote_name(pdir), MANIFEST);
		goto out;
	}
	if (o->output) {
		snprintf(out, sizeof(out), "%s", o->output);
	} else {
		cli_error("%s: name the OUTPUT (a chain point's stream has no suffix to strip)",
			  quote_name(o->input));
		st_exit = EXIT_USAGE;
		goto out;
	}
	if (lstat(out, &st) == 0 && (!o->force || !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))) {
		cli_error("%s: %s", quote_name(out), S_ISDIR(st.st_mode) ? "is a directory; "
			  "name the output file" : !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) ?
			  "not a regular file; not replacing it" :
			  "already exists; use -f to replace it");
		st_exit = EXIT_DEST;
		goto out;
	}
	afile_dir_of(out, odir, sizeof(odir));
	dirfd = open(odir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = dirfd < 0 ? -errno : afile_open(&af, dirfd, out, 0644, true);
	if (ret < 0) {
		cli_error("%s: cannot create: %s", quote_name(out), strerror(-ret));
		st_exit = EXIT_DEST;
		goto out;
	}
	for (int k = 0; k < n; k++) {
		const struct manifest_device *d = point_device(&pts[k], dev->device);
		struct apply_ctx a = { .fd = af.fd, .p = &pts[k] };
		uint8_t digest[16];
		int fd, fmt;

		if (!d) {
			cli_error("%s: cannot restore: point %s has no %s", quote_name(o->input),
				  pts[k].name, dev->device);
			goto out;
		}
		a.d = d;
		fd = open_stream(&pts[k], d, msg, sizeof(msg));
		if (fd < 0) {
			cli_error("%s: cannot restore: %s", quote_name(o->input), msg);
			goto out;
		}
		ret = xs_read_fd_ex(fd, apply_record, &a, NULL, &fmt, digest, &interrupted, msg,
				    sizeof(msg));
		close(fd);
		if (ret == -EINTR) {
			st_exit = EXIT_INTERRUPTED;
			goto out;
		}
		if (ret == 0 && !hex_is(digest, d->stream_xxh128)) {
			snprintf(msg, sizeof(msg), "digest differs from its manifest's "
				 "stream_xxh128");
			ret = -EBADMSG;
		}
		if (ret < 0) {
			cli_error("%s: cannot restore: point %s: %s: %s", quote_name(o->input),
				  pts[k].name, quote_name(d->file), a.msg[0] ? a.msg : msg[0] ? msg :
				  strerror(-ret));
			st_exit = ret == -ENOSPC || ret == -EDQUOT || ret == -EFBIG ? EXIT_DEST :
				  EXIT_FAILED;
			goto out;
		}
		if (k == n - 1 && ftruncate(af.fd, (off_t)a.file_size) < 0) {
			cli_error("%s: %s", quote_name(out), strerror(errno));
			st_exit = EXIT_DEST;
			goto out;
		}
	}
	/* The result, chunk by chunk, against the point's table. */
	snprintf(tpath, sizeof(tpath), "%s/%s", pts[n - 1].dir, dev->chunks);
	if (!table_read(tpath, &want, msg, sizeof(msg))) {
		cli_error("%s: %s", quote_name(tpath), msg);
		goto out;
	}
	if (!hex_is(want.end, dev->chunks_xxh128)) {
		cli_error("%s: digest differs from its manifest's chunks_xxh128", quote_name(tpath));
		table_free(&want);
		goto out;
	}
	ret = table_of_fd(af.fd, &want.g, want.point, &got, &rd);
	if (ret < 0) {
		cli_error("%s: reading back: %s", quote_name(out), strerror(-ret));
		table_free(&want);
		goto out;
	}
	if (!table_same(&want, &got, &diff)) {
		cli_error("%s: the restored file differs from the point's chunk table at byte "
			  "%llu", quote_name(out), (unsigned long long)diff);
		table_free(&want);
		table_free(&got);
		goto out;
	}
	table_free(&want);
	table_free(&got);
	ret = fsync(af.fd) < 0 ? -errno : afile_publish(&af, out, o->force);
	if (ret < 0) {
		cli_error("%s: %s", quote_name(out), ret == -EEXIST ? "already exists; use -f to "
			  "replace it" : strerror(-ret));
		st_exit = EXIT_DEST;
		goto out;
	}
	fsync(dirfd);
	if (o->json)
		json_print(json_pack("{s:o, s:o, s:s, s:i, s:b, s:f}", "input",
				     quote_json_string(o->input), "output", quote_json_string(out),
				     "point", pts[n - 1].m.point, "streams", n, "checked", 1,
				     "seconds", json_round(now() - t0, 1000)));
	if (!o->quiet)
		fprintf(stderr, "%s: restored %s to %s: %d stream%s applied (%s%s), chunk table "
			"matches\n", cli_prog, quote_name(o->input), quote_name(out), n,
			n == 1 ? "" : "s", n == 1 ? "a full point" : "full point ",
			n == 1 ? "" : pts[0].name);
	st_exit = 0;
out:
	afile_discard(&af);
	if (dirfd >= 0)
		close(dirfd);
	for (int k = 0; k < n; k++)
		point_free(&pts[k]);
	return st_exit;
}

/* --- verify ----------------------------------------------------------------- */

/* The chunks a stream touches, rebuilt from its records. */
struct assemble {
	const struct chunk_grid *g;
	const struct point *p;
	const struct manifest_device *d;
	uint8_t *buf;
	uint64_t cur;                   /* chunk being gathered, UINT64_MAX none */
	struct chunk_table touched;     /* digest, or all zeros for a zero chunk */
	uint64_t *zero_at;              /* offsets of touched chunks now zero */
	uint64_t nzero, capzero;
	char msg[256];
};

static int assemble_flush(struct assemble *a)
{
	uint64_t off, len;
	uint8_t dig[16];

	if (a->cur == UINT64_MAX)
		return 0;
	grid_chunk(a->g, a->cur, &off, &len);
	a->cur = UINT64_MAX;
	if (unit_is_zero(a->buf, (size_t)len)) {
		if (a->nzero == a->capzero) {
			uint64_t c = a->capzero ? a->capzero * 2 : 256;
			uint64_t *z = realloc(a->zero_at, c * sizeof(*z));

			if (!z)
				return -ENOMEM;
			a->zero_at = z;
			a->capzero = c;
		}
		a->zero_at[a->nzero++] = off;
		return 0;
	}
	chunk_digest(a->buf, (size_t)len, dig);
	return table_add(&a->touched, off, dig);
}

static int assemble_record(void *ctx, const struct xs_header *h, uint64_t off, uint64_t len,
			   const uint8_t *data)
{
	struct assemble *a = ctx;

	if (off == XS_HEADER_CALL) {
		if (h->chunk_size != a->g->chunk_size || h->data_offset != a->g->data_offset) {
			snprintf(a->msg, sizeof(a->msg), "the stream's chunk grid differs from "
				 "its chunk table's");
			return -EBADMSG;
		}
		return check_header(h, a->p, a->d, a->msg, sizeof(a->msg));
	}
	while (len > 0) {
		uint64_t i = grid_index(a->g, off), coff, clen, n;
		int ret;

		if (i != a->cur) {
			ret = assemble_flush(a);
			if (ret < 0)
				return ret;
			a->cur = i;
			grid_chunk(a->g, i, &coff, &clen);
			memset(a->buf, 0, (size_t)clen);
		}
		grid_chunk(a->g, i, &coff, &clen);
		n = coff + clen - off < len ? coff + clen - off : len;
		if (data) {
			memcpy(a->buf + (off - coff), data, (size_t)n);
			data += n;
		} else {
			memset(a->buf + (off - coff), 0, (size_t)n);
		}
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * One device of one point: its table (digest as in the manifest), its
 * stream (digest, header), and the stream's chunks against the table: the
 * parent's table (none for a full point) with the stream's chunks
 * replaced must be this point's.  NULL if fine, else the problem.
 */
static const char *verify_point_device(const struct point *p, const struct point *parent,
				       const struct manifest_device *d, char *problem,
				       size_t plen)
{
	struct chunk_table own, ptab = { 0 }, want;
	struct assemble a;
	char path[PATH_MAX + 80], msg[400] = "";
	uint8_t digest[16];
	uint64_t zi = 0, pi = 0, ti = 0, diff;
	int fd, fmt, ret;
	bool same;

	snprintf(path, sizeof(path), "%s/%s", p->dir, d->chunks);
	if (!table_read(path, &own, msg, sizeof(msg))) {
		snprintf(problem, plen, "%s: %s", d->chunks, msg);
		return problem;
	}
	if (!hex_is(own.end, d->chunks_xxh128) || memcmp(own.point, p->id, 16) ||
	    own.g.file_size != d->cow_bytes) {
		snprintf(problem, plen, "%s: not the table its manifest names (digest, point "
			 "or size differ)", d->chunks);
		table_free(&own);
		return problem;
	}
	if (parent) {
		const struct manifest_device *pd = point_device(parent, d->device);

		if (!pd) {
			snprintf(problem, plen, "parent %s has no %s", parent->name, d->device);
			table_free(&own);
			return problem;
		}
		snprintf(path, sizeof(path), "%s/%s", parent->dir, pd->chunks);
		if (!table_read(path, &ptab, msg, sizeof(msg)) || !hex_is(ptab.end,
									   pd->chunks_xxh128)) {
			snprintf(problem, plen, "parent %s: %s: %s", parent->name, pd->chunks,
				 msg[0] ? msg : "digest differs from its manifest's");
			table_free(&own);
			table_free(&ptab);
			return problem;
		}
	}
	memset(&a, 0, sizeof(a));
	a.g = &own.g;
	a.p = p;
	a.d = d;
	a.cur = UINT64_MAX;
	a.buf = malloc(own.g.chunk_size);
	table_init(&a.touched, &own.g, p->id);
	fd = a.buf ? open_stream(p, d, msg, sizeof(msg)) : -1;
	if (fd < 0) {
		snprintf(problem, plen, "%s", a.buf ? msg : "out of memory");
		goto done_bad;
	}
	ret = xs_read_fd_ex(fd, assemble_record, &a, NULL, &fmt, digest, &interrupted, msg,
			    sizeof(msg));
	close(fd);
	if (ret == 0)
		ret = assemble_flush(&a);
	if (ret < 0) {
		snprintf(problem, plen, "%s: %s", d->file, a.msg[0] ? a.msg : msg[0] ? msg :
			 strerror(-ret));
		goto done_bad;
	}
	if (!hex_is(digest, d->stream_xxh128)) {
		snprintf(problem, plen, "%s: digest differs from its manifest's stream_xxh128",
			 d->file);
		goto done_bad;
	}
	/* The parent's entries, the stream's chunks replacing theirs. */
	table_init(&want, &own.g, p->id);
	while (pi < ptab.n || ti < a.touched.n) {
		uint64_t po = pi < ptab.n ? ptab.e[pi].off : UINT64_MAX;
		uint64_t to = ti < a.touched.n ? a.touched.e[ti].off : UINT64_MAX;

		while (zi < a.nzero && a.zero_at[zi] < po && a.zero_at[zi] < to)
			zi++;
		if (to <= po) {
			table_add(&want, to, a.touched.e[ti++].digest);
			if (to == po)
				pi++;
		} else if (zi < a.nzero && a.zero_at[zi] == po) {
			pi++;
		} else {
			table_add(&want, po, ptab.e[pi++].digest);
		}
	}
	same = table_same(&want, &own, &diff);
	table_free(&want);
	if (!same) {
		snprintf(problem, plen, "%s: its chunks and the parent's do not make its table "
			 "(first difference at byte %llu)", d->file, (unsigned long long)diff);
		goto done_bad;
	}
	problem = NULL;
	goto done;
done_bad:
	;
done:
	free(a.buf);
	free(a.zero_at);
	table_free(&a.touched);
	table_free(&own);
	table_free(&ptab);
	return problem;
}

/* Devices, backing files and geometry of a point against its parent. */
static const char *link_problem(const struct point *p, const struct point *parent, char *buf,
				size_t len)
{
	if (p->m.ndev != parent->m.ndev) {
		snprintf(buf, len, "%zu devices, its parent %s has %zu", p->m.ndev, parent->name,
			 parent->m.ndev);
		return buf;
	}
	for (size_t i = 0; i < p->m.ndev; i++) {
		const struct manifest_device *d = &p->m.dev[i];
		const struct manifest_device *pd = point_device(parent, d->device);

		if (!pd || !d->backing || !pd->backing || strcmp(d->backing, pd->backing) ||
		    d->size != pd->size || d->mtime != pd->mtime || d->cow_bytes != pd->cow_bytes) {
			snprintf(buf, len, "%s differs from its parent %s's (device, backing "
				 "file or geometry)", d->device, parent->name);
			return buf;
		}
	}
	return NULL;
}

/*
 * Verify the point `name` (and with `ancestors`, every point down to its
 * full one).  Prints a line per problem; returns the number of problems.
 */
static int verify_one(const char *chaindir, const char *name, bool print, const struct options *o,
		      json_t *list)
{
	struct point p, parent;
	char msg[700] = "", problem[700];
	const char *bad = NULL;
	bool have_parent = false;
	int nbad = 0;

	if (!point_load(chaindir, name, &p, msg, sizeof(msg))) {
		point_free(&p);
		bad = msg;
		goto report;
	}
	if (p.incremental) {
		char pm[600];

		if (!point_load(chaindir, p.m.parent_dir, &parent, pm, sizeof(pm))) {
			point_free(&parent);
			snprintf(msg, sizeof(msg), "missing or damaged link: its parent: %s", pm);
			bad = msg;
		} else {
			have_parent = true;
			if (memcmp(parent.id, (uint8_t[16]){ 0 }, 16) == 0 ||
			    strcmp(parent.m.point, p.m.parent_point)) {
				snprintf(msg, sizeof(msg), "its parent %s is another point (id %s, "
					 "expected %s)", parent.name, parent.m.point,
					 p.m.parent_point);
				bad = msg;
			} else if (p.m.guest && parent.m.guest && strcmp(p.m.guest, parent.m.guest)) {
				snprintf(msg, sizeof(msg), "its parent %s is of another guest (%s)",
					 parent.name, quote_name(parent.m.guest));
				bad = msg;
			} else {
				bad = link_problem(&p, &parent, msg, sizeof(msg));
			}
		}
	}
	for (size_t i = 0; !bad && i < p.m.ndev; i++) {
		const char *pr = verify_point_device(&p, have_parent ? &parent : NULL, &p.m.dev[i],
						     problem, sizeof(problem));

		if (interrupted)
			break;
		if (pr) {
			snprintf(msg, sizeof(msg), "%s", pr);
			bad = msg;
		}
	}
	point_free(&p);
	if (have_parent)
		point_free(&parent);
report:
	if (bad) {
		cli_error("%s/%s: %s", quote_name(chaindir), quote_name(name), bad);
		nbad++;
	} else if (print && !o->quiet && !o->json) {
		fprintf(stderr, "%s: %s/%s: OK\n", cli_prog, quote_name(chaindir), quote_name(name));
	}
	json_array_append_new(list, json_pack("{s:s, s:b, s:o}", "point", name, "ok", !bad,
					      "problem", bad ? quote_json_string(bad) :
					      json_null()));
	return nbad;
}

bool is_chain_dir(const char *dir)
{
	struct chain_list l;
	char path[PATH_MAX + 32];
	struct stat st;
	bool yes;

	snprintf(path, sizeof(path), "%s/%s", dir, MANIFEST);
	if (stat(path, &st) == 0) {
		/* A FIFO must not block us: verify refuses it with a message. */
		if (!S_ISREG(st.st_mode))
			return false;
		/*
		 * A chain point: a kind and chunk tables (every backup has a point
		 * id and a kind; only chain points have tables).  Read quietly:
		 * verify and restore report what is wrong with a manifest.
		 */
		json_error_t e;
		json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
		json_t *d0 = j ? json_array_get(json_object_get(j, "devices"), 0) : NULL;

		yes = j && json_is_string(json_object_get(j, "kind")) &&
		      json_is_string(json_object_get(d0, "chunks"));
		json_decref(j);
		/*
		 * Every new backup has tables: a plain DESTDIR is a full point of
		 * no chain.  A chain's points are named by their time.
		 */
		if (yes) {
			char real[PATH_MAX];
			const char *slash;

			if (!realpath(dir, real))
				return false;
			slash = strrchr(real, '/');
			yes = point_name_ok(slash ? slash + 1 : real);
		}
		return yes;
	}
	if (chain_list(dir, &l) < 0)
		return false;
	yes = l.n > 0;
	chain_list_free(&l);
	return yes;
}

int chain_verify(const struct options *o, const char *dir)
{
	char chaindir[PATH_MAX], name[NAME_MAX + 1], path[PATH_MAX + 32];
	static struct point pts[MAX_CHAIN];
	json_t *list = json_array();
	struct stat st;
	int bad = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, MANIFEST);
	if (stat(path, &st) == 0) {
		/* A FIFO must not block us: verify refuses it with a message. */
		if (!S_ISREG(st.st_mode))
			return false;
		/* A point: it and its ancestors. */
		char msg[600];
		int n;

		split_point_path(dir, chaindir, sizeof(chaindir), name, sizeof(name));
		if (!chain_path(chaindir, name, pts, MAX_CHAIN, &n, msg, sizeof(msg))) {
			cli_error("%s: missing or damaged link: %s", quote_name(dir), msg);
			json_decref(list);
			return EXIT_FAILED;
		}
		for (int k = 0; k < n && !interrupted; k++)
			bad += verify_one(chaindir, pts[k].name, true, o, list);
		for (int k = 0; k < n; k++)
			point_free(&pts[k]);
	} else {
		struct chain_list l;
		int ret = chain_list(dir, &l);

		if (ret < 0) {
			cli_error("%s: %s", quote_name(dir), strerror(-ret));
			json_decref(list);
			return EXIT_FAILED;
		}
		for (int k = 0; k < l.n && !interrupted; k++)
			bad += verify_one(dir, l.name[k], true, o, list);
		chain_list_free(&l);
	}
	if (interrupted) {
		json_decref(list);
		return EXIT_INTERRUPTED;
	}
	if (o->json)
		json_print(json_pack("{s:o, s:b}", "verified", list, "ok", !bad));
	else
		json_decref(list);
	return bad ? EXIT_FAILED : 0;
}

/* --- prune ------------------------------------------------------------------ */

/* Remove a point directory: its manifest first, so it stops being a point. */
static int remove_point(const char *dir)
{
	char path[PATH_MAX + 300];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", dir, MANIFEST);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) < 0) {
			int err = errno;

			closedir(d);
			return -err;
		}
	}
	closedir(d);
	return rmdir(dir) < 0 ? -errno : 0;
}

struct sink_fd {
	int fd;
};

/* Write a file's bytes under a final name (afile); 0 or -errno. */
static int write_file(int dirfd, const char *path, const uint8_t *p, size_t len)
{
	struct afile af;
	int ret = afile_open(&af, dirfd, path, 0644, false);

	if (ret == 0)
		ret = write_all(af.fd, p, len, -1);
	if (ret == 0 && fsync(af.fd) < 0)
		ret = -errno;
	if (ret == 0)
		ret = afile_publish(&af, path, false);
	afile_discard(&af);
	return ret;
}

/*
 * Rewrite point `pts[n-1]` as a full point in the hidden directory tmp:
 * each device restored into a scratch file there, then written as a full
 * stream; tables copied; the manifest with kind full and no parent.
 */
static int consolidate(const struct options *o, struct point *pts, int n, const char *tmp)
{
	struct point *p = &pts[n - 1];
	json_t *doc = json_deep_copy(p->m.doc), *devs;
	int dirfd = -1, ret = 0, st = EXIT_FAILED;
	char msg[600] = "", path[PATH_MAX + 80];

	if (!doc)
		return EXIT_FAILED;
	if (mkdir(tmp, 0755) < 0 || (dirfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		cli_error("%s: cannot create: %s", quote_name(tmp), strerror(errno));
		json_decref(doc);
		return errno == ENOSPC || errno == EROFS || errno == EACCES ? EXIT_DEST : EXIT_FAILED;
	}
	devs = json_object_get(doc, "devices");
	for (size_t i = 0; i < p->m.ndev; i++) {
		const struct manifest_device *d = &p->m.dev[i];
		struct afile scratch = { .fd = -1 }, sf = { .fd = -1 };
		struct chunk_table tab;
		struct emit_result r;
		struct packer *pk = NULL;
		struct sink_fd sfd;
		char hex[XXH_HEX];
		int fmt = pack_parse(d->compression ? d->compression : "none");
		uint8_t *bytes;
		size_t blen;

		snprintf(path, sizeof(path), "%s/%s", p->dir, d->chunks);
		if (!table_read(path, &tab, msg, sizeof(msg))) {
			cli_error("%s: %s", quote_name(path), msg);
			goto fail;
		}
		/* Materialize: the streams from the full point down, as restore does. */
		snprintf(path, sizeof(path), "%s/.scratch", tmp);
		ret = afile_open(&scratch, dirfd, path, 0600, true);
		for (int k = 0; ret == 0 && k < n; k++) {
			const struct manifest_device *kd = point_device(&pts[k], d->device);
			struct apply_ctx a = { .fd = scratch.fd, .p = &pts[k], .d = kd };
			uint8_t dg[16];
			int fd;

			if (!kd) {
				snprintf(msg, sizeof(msg), "point %s has no %s", pts[k].name, d->device);
				ret = -EBADMSG;
				break;
			}
			fd = open_stream(&pts[k], kd, msg, sizeof(msg));
			if (fd < 0) {
				ret = -EBADMSG;
				break;
			}
			ret = xs_read_fd_ex(fd, apply_record, &a, NULL, &fmt, dg, &interrupted, msg,
					    sizeof(msg));
			close(fd);
			if (ret == 0 && !hex_is(dg, kd->stream_xxh128)) {
				snprintf(msg, sizeof(msg), "point %s: %s: digest differs from its "
					 "manifest's", pts[k].name, kd->file);
				ret = -EBADMSG;
			}
			if (a.msg[0])
				snprintf(msg, sizeof(msg), "point %s: %s", pts[k].name, a.msg);
		}
		fmt = pack_parse(d->compression ? d->compression : "none");
		if (ret == 0 && ftruncate(scratch.fd, (off_t)tab.g.file_size) < 0)
			ret = -errno;
		snprintf(path, sizeof(path), "%s/%s", tmp, d->file);
		if (ret == 0)
			ret = afile_open(&sf, dirfd, path, 0644, false);
		sfd.fd = sf.fd;
		if (ret == 0 && fmt > 0)
			ret = packer_open(&pk, fmt, o->level, sf.fd, LZ4S_NO_SIZE);
		if (ret == 0)
			ret = point_emit(scratch.fd, ".scratch", &tab.g, p->id, NULL, NULL,
					 pk ? packer_unit : xs_fd_sink, pk ? (void *)pk : (void *)&sfd,
					 &r);
		if (ret == 0 && pk)
			ret = packer_finish(pk, &r.stream_bytes);
		packer_free(pk);
		if (ret == 0) {
			uint64_t diff;

			/* The content is the point's: the same table. */
			if (!table_same(&tab, &r.tab, &diff)) {
				snprintf(msg, sizeof(msg), "the materialized point differs from "
					 "its chunk table at byte %llu", (unsigned long long)diff);
				ret = -EBADMSG;
			}
			table_free(&r.tab);
		} else if (r.msg[0] && !msg[0]) {
			snprintf(msg, sizeof(msg), "%s", r.msg);
		}
		if (ret == 0 && fsync(sf.fd) < 0)
			ret = -errno;
		if (ret == 0)
			ret = afile_publish(&sf, path, false);
		afile_discard(&sf);
		afile_discard(&scratch);
		bytes = ret == 0 ? table_encode(&tab, &blen) : NULL;
		if (ret == 0 && !bytes)
			ret = -ENOMEM;
		snprintf(path, sizeof(path), "%s/%s", tmp, d->chunks);
		if (ret == 0)
			ret = write_file(dirfd, path, bytes, blen);
		free(bytes);
		table_free(&tab);
		if (ret < 0) {
			cli_error("%s: %s", quote_name(p->dir), msg[0] ? msg : strerror(-ret));
			st = ret == -ENOSPC || ret == -EDQUOT ? EXIT_DEST : ret == -EINTR ?
			     EXIT_INTERRUPTED : EXIT_FAILED;
			goto fail;
		}
		digest_hex(r.digest, hex);
		json_object_set_new(json_array_get(devs, i), "stream_xxh128", json_string(hex));
		json_object_set_new(json_array_get(devs, i), "stored_bytes",
				    json_integer((json_int_t)r.stream_bytes));
	}
	json_object_set_new(doc, "kind", json_string("full"));
	json_object_del(doc, "parent");
	json_object_set_new(doc, "consolidated_from", json_integer(n));
	{
		char *text = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(15));

		snprintf(path, sizeof(path), "%s/%s", tmp, MANIFEST);
		ret = text ? write_file(dirfd, path, (const uint8_t *)text, strlen(text)) : -ENOMEM;
		free(text);
		if (ret == 0 && fsync(dirfd) < 0)
			ret = -errno;
		if (ret < 0) {
			cli_error("%s: %s", quote_name(path), strerror(-ret));
			st = ret == -ENOSPC ? EXIT_DEST : EXIT_FAILED;
			goto fail;
		}
	}
	st = 0;
fail:
	json_decref(doc);
	close(dirfd);
	return st;
}

int chain_prune(const struct options *o)
{
	const char *chaindir = o->dest;
	static struct point pts[MAX_CHAIN];
	struct chain_list l;
	char msg[600], tmp[PATH_MAX], kdir[PATH_MAX];
	int ret, n = 0, st = 0, first_kept, removed = 0;
	DIR *d;
	struct dirent *e;

	ret = chain_list(chaindir, &l);
	if (ret < 0) {
		cli_error("%s: %s", quote_name(chaindir), ret == -E2BIG ? "too many points" :
			  strerror(-ret));
		return EXIT_FAILED;
	}
	/* Leftovers of a prune that was killed: the real points are whole. */
	d = opendir(chaindir);
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, ".prune-", 7)) {
			snprintf(tmp, sizeof(tmp), "%s/%s", chaindir, e->d_name);
			remove_point(tmp);
		}
	if (d)
		closedir(d);
	if (l.n <= o->keep) {
		if (!o->quiet)
			fprintf(stderr, "%s: %s: %d point%s, keeping %d: nothing to prune\n",
				cli_prog, quote_name(chaindir), l.n, l.n == 1 ? "" : "s", o->keep);
		chain_list_free(&l);
		return 0;
	}
	first_kept = l.n - o->keep;
	/* Every kept point must reach its full point without a removed one. */
	for (int k = l.n - 1; k >= first_kept && st == 0; k--) {
		static struct point other[MAX_CHAIN];
		struct point *path = k == first_kept ? pts : other;
		bool through = false, older = false;
		int m;

		if (!chain_path(chaindir, l.name[k], path, MAX_CHAIN, &m, msg, sizeof(msg))) {
			cli_error("%s: point %s: missing or damaged link: %s; nothing removed",
				  quote_name(chaindir), l.name[k], msg);
			st = EXIT_CHAIN;
			break;
		}
		for (int j = 0; j < m; j++) {
			through |= !strcmp(path[j].name, l.name[first_kept]);
			older |= strcmp(path[j].name, l.name[first_kept]) < 0;
		}
		if (older && !through) {
			cli_error("%s: point %s does not descend from %s; nothing removed",
				  quote_name(chaindir), l.name[k], l.name[first_kept]);
			st = EXIT_CHAIN;
		}
		if (k == first_kept)
			n = m;
		else
			for (int j = 0; j < m; j++)
				point_free(&path[j]);
	}
	/* pts holds the path of the first kept point (loaded first). */
	if (st == 0 && pts[n - 1].incremental) {
		snprintf(tmp, sizeof(tmp), "%s/.prune-%s", chaindir, l.name[first_kept]);
		snprintf(kdir, sizeof(kdir), "%s/%s", chaindir, l.name[first_kept]);
		st = consolidate(o, pts, n, tmp);
		/* The switch: one atomic exchange of the two directories. */
		if (st == 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, kdir, RENAME_EXCHANGE) < 0) {
			cli_error("%s: cannot switch to the consolidated point: %s", quote_name(kdir),
				  strerror(errno));
			st = EXIT_FAILED;
		}
		/* Now tmp holds the incremental it replaced, or the unfinished new one. */
		remove_point(tmp);
	}
	for (int j = 0; j < n; j++)
		point_free(&pts[j]);
	for (int k = 0; st == 0 && k < first_kept; k++) {
		snprintf(tmp, sizeof(tmp), "%s/%s", chaindir, l.name[k]);
		ret = remove_point(tmp);
		if (ret < 0) {
			cli_error("%s: cannot remove: %s", quote_name(tmp), strerror(-ret));
			st = EXIT_FAILED;
		}
		removed++;
	}
	if (st == 0 && !o->quiet)
		fprintf(stderr, "%s: %s: removed %d point%s; %s is now the full point of %d\n",
			cli_prog, quote_name(chaindir), removed, removed == 1 ? "" : "s",
			l.name[first_kept], o->keep);
	chain_list_free(&l);
	return st;
}
