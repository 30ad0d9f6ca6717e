/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * manifest.h - manifest.json, written and read here only: one table of
 * its keys (manifest.c) serves both, through jansson; uml_backup(1)
 * documents them.
 */
#ifndef UBDK_MANIFEST_H
#define UBDK_MANIFEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* A number that is not there: an optional key, or one a manifest lacks. */
#define MANIFEST_ABSENT UINT64_MAX

/* Strings read from a manifest live as long as its document. */
struct manifest_device {
	const char *device, *cow, *backing, *layout, *file, *compression;
	uint64_t size, mtime, sectorsize, stored_bytes, cow_bytes, data_bytes, cow_sectors,
		 paused_copy_bytes;
	const char *crc32, *sha256_tree;
	/* "cow" (a COW file, maybe compressed) or "ubdx" (an extent stream);
	 * NULL in manifests before 0.3: "cow". */
	const char *format, *stream_xxh128;
	/* Chain points (docs/backup-format.md): the chunk table and its digest. */
	const char *chunks, *chunks_xxh128;
};

struct manifest {
	const char *format, *tool, *guest, *mconsole, *kernel, *created, *method,
		   *method_note, *io_idle;
	/* NULL in manifests before 0.3.  Chain points: the parent, what said what changed. */
	const char *point, *kind, *parent_point, *parent_dir, *changes, *changes_note;
	uint64_t version, tracked_writes;
	int64_t dirty_kb;
	bool live, synced, drained;
	/* Milliseconds. */
	double pause_ms, t_precopy, t_sync, t_pause, t_checksum_compress, t_fsync, t_total;
	struct manifest_device *dev;
	size_t ndev;
	json_t *doc;                    /* read: holds the strings */
};

/* The fields every manifest has, for a writer to fill in. */
void manifest_init(struct manifest *m);
/* The manifest as text, for the file and --json; NULL if out of memory. */
char *manifest_text(const struct manifest *m, size_t *len);

/*
 * Read DIR/manifest.json.  Keys missing or of another type read as NULL
 * or MANIFEST_ABSENT (the reader says what it needs); a document that is
 * not a manifest, or lists no devices, is refused with a message.
 */
bool manifest_read(const char *dir, struct manifest *m);
void manifest_free(struct manifest *m);

/*
 * The device of a backup's point DIR that a command works on: WANT (a
 * unit, "ubd1" or "1"; -d), or the only one when WANT is NULL.  NULL after
 * a message naming DIR ("no device", "choose one with -d").
 */
/*
 * Whether st (of an existing file, lstat) is one of the files of the point
 * in DIR that m describes: its manifest, a device's stream or COW file, or
 * its chunk table.  A restore must never write over what it reads.
 */
bool manifest_lists_file(const struct manifest *m, const char *dir, const struct stat *st);

const struct manifest_device *manifest_pick_device(const struct manifest *m, const char *dir,
						   const char *want);

/* A time (ms or s, not negative) rounded to 1/scale, for json_real(). */
double manifest_json_round(double v, double scale);
/* Print j as one line of JSON on stdout; 0 or -errno. */
int manifest_json_print(json_t *j);

#endif
