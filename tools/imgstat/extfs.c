/* SPDX-License-Identifier: GPL-2.0-or-later */
/* extfs.c - ext2/3/4 through libext2fs and the pair I/O manager. */
#define _GNU_SOURCE
#include "extfs.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <et/com_err.h>

#include "pairio.h"

long extfs_open(struct extfs *x, struct img *im, int source, uint64_t offset,
		int flags)
{
	char opts[64];
	errcode_t ret;

	memset(x, 0, sizeof(*x));
	if (pio_register(im, source, x->name, sizeof(x->name)) < 0)
		return EXT2_ET_NO_MEMORY;
	snprintf(opts, sizeof(opts), "offset=%" PRIu64, offset);
	ret = ext2fs_open2(x->name, opts,
			   EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP |
			   (flags & EXTFS_IGNORE_CSUM ?
			    EXT2_FLAG_IGNORE_CSUM_ERRORS : 0), 0, 0, pio_manager,
			   &x->fs);
	if (ret) {
		pio_unregister(x->name);
		x->fs = NULL;
		return (long)ret;
	}
	return 0;
}

/* Past this, block numbers times the block size may not fit 64 bits. */
#define MAX_BLOCKS (1ULL << 48)

long extfs_validate(ext2_filsys fs, char *why, size_t len)
{
	struct ext2_super_block *sb = fs->super;
	/* The block after the boot block's 1024 bytes, as mke2fs puts it. */
	uint32_t first = sb->s_log_block_size == 0 &&
			 EXT2FS_CLUSTER_RATIO(fs) == 1 ? 1 : 0;
	errcode_t ret;

	if (sb->s_first_data_block != first) {
		snprintf(why, len, "the first data block is %u, not %u",
			 sb->s_first_data_block, first);
		return EXT2_ET_CORRUPT_SUPERBLOCK;
	}
	if (ext2fs_blocks_count(sb) > MAX_BLOCKS) {
		snprintf(why, len, "%llu blocks, more than 2^48",
			 (unsigned long long)ext2fs_blocks_count(sb));
		return EXT2_ET_CORRUPT_SUPERBLOCK;
	}
	if (sb->s_rev_level > EXT2_GOOD_OLD_REV &&
	    (sb->s_first_ino < EXT2_GOOD_OLD_FIRST_INO ||
	     sb->s_first_ino > sb->s_inodes_count)) {
		snprintf(why, len, "the first inode is %u, out of range",
			 sb->s_first_ino);
		return EXT2_ET_CORRUPT_SUPERBLOCK;
	}
	ret = ext2fs_check_desc(fs);
	if (ret) {
		snprintf(why, len, "group descriptors: %s", error_message(ret));
		return (long)ret;
	}
	return 0;
}

void extfs_close(struct extfs *x)
{
	if (x->fs)
		ext2fs_close_free(&x->fs);
	pio_unregister(x->name);
	x->fs = NULL;
}

bool extfs_type(const char *type)
{
	return type && (!strcmp(type, "ext2") || !strcmp(type, "ext3") ||
			!strcmp(type, "ext4") || !strcmp(type, "ext4dev"));
}

int64_t extfs_time(uint32_t lo, uint8_t hi)
{
	return (int64_t)lo | (int64_t)(hi & 3) << 32;
}

struct feature {
	int set;                   /* 0 compat, 1 incompat, 2 ro_compat */
	uint32_t mask;
	const char *name;
};

/* Names as e2fsprogs prints them. */
static const struct feature features[] = {
	{ 0, 0x0001, "dir_prealloc" }, { 0, 0x0002, "imagic_inodes" },
	{ 0, 0x0004, "has_journal" }, { 0, 0x0008, "ext_attr" },
	{ 0, 0x0010, "resize_inode" }, { 0, 0x0020, "dir_index" },
	{ 0, 0x0040, "lazy_bg" }, { 0, 0x0100, "snapshot_bitmap" },
	{ 0, 0x0200, "sparse_super2" }, { 0, 0x0400, "fast_commit" },
	{ 0, 0x0800, "stable_inodes" }, { 0, 0x1000, "orphan_file" },
	{ 2, 0x0001, "sparse_super" }, { 2, 0x0002, "large_file" },
	{ 2, 0x0008, "huge_file" }, { 2, 0x0010, "uninit_bg" },
	{ 2, 0x0020, "dir_nlink" }, { 2, 0x0040, "extra_isize" },
	{ 2, 0x0080, "snapshot" }, { 2, 0x0100, "quota" },
	{ 2, 0x0200, "bigalloc" }, { 2, 0x0400, "metadata_csum" },
	{ 2, 0x0800, "replica" }, { 2, 0x1000, "read-only" },
	{ 2, 0x2000, "project" }, { 2, 0x4000, "shared_blocks" },
	{ 2, 0x8000, "verity" }, { 2, 0x10000, "orphan_present" },
	{ 1, 0x0001, "compression" }, { 1, 0x0002, "filetype" },
	{ 1, 0x0004, "needs_recovery" }, { 1, 0x0008, "journal_dev" },
	{ 1, 0x0010, "meta_bg" }, { 1, 0x0040, "extent" },
	{ 1, 0x0080, "64bit" }, { 1, 0x0100, "mmp" },
	{ 1, 0x0200, "flex_bg" }, { 1, 0x0400, "ea_inode" },
	{ 1, 0x1000, "dirdata" }, { 1, 0x2000, "metadata_csum_seed" },
	{ 1, 0x4000, "large_dir" }, { 1, 0x8000, "inline_data" },
	{ 1, 0x10000, "encrypt" }, { 1, 0x20000, "casefold" },
};

static void write_features(struct out *o, const struct ext2_super_block *sb)
{
	const uint32_t sets[3] = { sb->s_feature_compat, sb->s_feature_incompat,
				   sb->s_feature_ro_compat };
	static const char prefix[3] = { 'C', 'I', 'R' };
	char text[1024] = "";
	size_t used = 0;

	out_arr(o, "features", NULL);
	for (int s = 0; s < 3; s++) {
		for (int bit = 0; bit < 32; bit++) {
			uint32_t m = 1U << bit;
			const char *name = NULL;
			char unknown[32];

			if (!(sets[s] & m))
				continue;
			for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++)
				if (features[i].set == s && features[i].mask == m)
					name = features[i].name;
			if (!name) {
				snprintf(unknown, sizeof(unknown), "FEATURE_%c%d",
					 prefix[s], bit);
				name = unknown;
			}
			out_str(o, NULL, NULL, name);
			used += (size_t)snprintf(text + used, used < sizeof(text) ?
						 sizeof(text) - used : 0, "%s%s",
						 used ? " " : "", name);
		}
	}
	out_arr_end(o);
	if (used >= sizeof(text))
		used = sizeof(text) - 1;
	out_line(o, "features: %s", text);
}

static void fixed_string(char *dst, size_t dlen, const void *src, size_t slen)
{
	size_t n = strnlen(src, slen);

	if (n >= dlen)
		n = dlen - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

void extfs_describe(struct out *o, ext2_filsys fs)
{
	struct ext2_super_block *sb = fs->super;
	char label[EXT2_LABEL_LEN + 1], last[65], uuid[37];
	const uint8_t *u = sb->s_uuid;
	bool recovery = ext2fs_has_feature_journal_needs_recovery(sb);
	const char *state;

	fixed_string(label, sizeof(label), sb->s_volume_name, sizeof(sb->s_volume_name));
	fixed_string(last, sizeof(last), sb->s_last_mounted, sizeof(sb->s_last_mounted));
	snprintf(uuid, sizeof(uuid),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
	if (sb->s_state & EXT2_ERROR_FS)
		state = "errors";
	else if (!(sb->s_state & EXT2_VALID_FS))
		state = "not-clean";
	else
		state = "clean";

	out_obj(o, "ext", "ext2/3/4 (libext2fs)");
	out_str(o, "uuid", NULL, uuid);
	out_str(o, "label", NULL, label);
	out_u64(o, "revision", "revision", sb->s_rev_level);
	out_u64(o, "block_size", "block size", fs->blocksize);
	out_u64(o, "blocks", "blocks", ext2fs_blocks_count(sb));
	out_u64(o, "free_blocks", "free blocks", ext2fs_free_blocks_count(sb));
	out_u64(o, "reserved_blocks", "reserved blocks", ext2fs_r_blocks_count(sb));
	out_u64(o, "inodes", "inodes", sb->s_inodes_count);
	out_u64(o, "free_inodes", "free inodes", sb->s_free_inodes_count);
	out_u64(o, "inode_size", "inode size", EXT2_INODE_SIZE(sb));
	out_u64(o, "groups", "block groups", fs->group_desc_count);
	out_str(o, "state", "state", state);
	out_bool(o, "orphans_being_recovered", NULL, sb->s_state & EXT3_ORPHAN_FS);
	out_bool(o, "needs_recovery", "journal needs recovery", recovery);
	write_features(o, sb);
	out_time(o, "created", "created", extfs_time(sb->s_mkfs_time, sb->s_mkfs_time_hi));
	out_time(o, "last_mount", "last mount", extfs_time(sb->s_mtime, sb->s_mtime_hi));
	out_time(o, "last_write", "last write", extfs_time(sb->s_wtime, sb->s_wtime_hi));
	out_time(o, "last_check", "last check", extfs_time(sb->s_lastcheck, sb->s_lastcheck_hi));
	out_str(o, "last_mounted_on", "last mounted on", last[0] ? last : NULL);
	out_u64(o, "mount_count", "mount count", sb->s_mnt_count);
	out_i64(o, "max_mount_count", NULL, sb->s_max_mnt_count);
	out_u64(o, "errors", "errors recorded", sb->s_error_count);
	out_u64(o, "kbytes_written", "lifetime writes (KiB)", sb->s_kbytes_written);
	out_obj_end(o);
}
