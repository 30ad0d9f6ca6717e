/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chainrestore.c - `uml_backup restore` of a chain point: the streams from
 * its full point down to it, applied in order to a new file, which must
 * then hash to the point's chunk table.
 */
#define _GNU_SOURCE
#include "chain/chainio.h"
#include "afile.h"
#include "hostlock.h"
#include "cli.h"
#include "extent.h"
#include "input.h"
#include "codec/pack.h"
#include "codec/lz4_splice.h"
#include "quote.h"
#include "format/xstream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
	double t0 = tool_now();

	chainio_split_point_path(o->input, pdir, sizeof(pdir), base, sizeof(base));
	chainio_split_point_path(pdir, chaindir, sizeof(chaindir), name, sizeof(name));
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
	/* Held until published: a guest or server on it would lose writes. */
	ret = o->force ? hostlock_replace(&af, out) : 0;
	if (ret < 0) {
		st_exit = ret == -EAGAIN ? EXIT_LOCKED : EXIT_FAILED;
		goto out;
	}
	ret = chain_apply(pts, n, dev->device, af.fd, msg, sizeof(msg));
	if (ret == -EINTR) {
		st_exit = EXIT_INTERRUPTED;
		goto out;
	}
	if (ret < 0) {
		cli_error("%s: cannot restore: %s", quote_name(o->input), msg[0] ? msg :
			  strerror(-ret));
		st_exit = ret == -ENOSPC || ret == -EDQUOT || ret == -EFBIG ? EXIT_DEST :
			  EXIT_FAILED;
		goto out;
	}
	/* The result, chunk by chunk, against the point's table. */
	snprintf(tpath, sizeof(tpath), "%s/%s", pts[n - 1].dir, dev->chunks);
	if (!table_read(tpath, &want, msg, sizeof(msg))) {
		cli_error("%s: %s", quote_name(tpath), msg);
		goto out;
	}
	if (!chainio_hex_is(want.end, dev->chunks_xxh128)) {
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
		manifest_json_print(json_pack("{s:o, s:o, s:s, s:i, s:b, s:f}", "input",
				     quote_json_string(o->input), "output", quote_json_string(out),
				     "point", pts[n - 1].m.point, "streams", n, "checked", 1,
				     "seconds", manifest_json_round(tool_now() - t0, 1000)));
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
