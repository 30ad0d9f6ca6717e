#!/bin/sh
# On a filesystem that shares extents the pause is one FICLONE per COW.
# Needs root, xfsprogs and loop devices; skipped otherwise.
. "$(dirname "$0")/functions.sh"

t_reflink() {
	[ "$(id -u)" = 0 ] && command -v mkfs.xfs >/dev/null || skip "not root or no mkfs.xfs (xfsprogs)"
	truncate -s 600M "$T/xfs.img"
	mkfs.xfs -q -m reflink=1 "$T/xfs.img" || fail "mkfs.xfs"
	mkdir -p "$T/xfs"
	mount -o loop "$T/xfs.img" "$T/xfs" 2>/dev/null || skip "no loop mount here"
	trap on_exit EXIT
	mkfs.ext4 -q -F -b 4096 "$T/xfs/disk.img" 128M >/dev/null 2>&1 || fail "mkfs.ext4"
	"$MKCOW" -q "$T/xfs/disk.cow" "$T/xfs/disk.img" || fail "uml_mkcow"
	start_guest g3 ubda="$T/xfs/disk.cow,$T/xfs/disk.img"
	n0=$(last_rec g3)
	expect_status 0 "$BK" -j -u "$T/uml" g3 "$T/xfs/b"
	[ "$(json_str "$T/xfs/b/manifest.json" method)" = reflink ] ||
		fail "method $(json_str "$T/xfs/b/manifest.json" method), expected reflink"
	echo "reflink: pause $(json_num "$T/xfs/b/manifest.json" pause_ms) ms"
	# Across filesystems: no reflink, the tracked copy.
	expect_status 0 "$BK" -j -u "$T/uml" g3 "$T/b-ext4"
	[ "$(json_str "$T/b-ext4/manifest.json" method)" != reflink ] || fail "reflink across filesystems"
	expect_status 0 "$BK" -q -m reflink -c -u "$T/uml" g3 "$T/xfs/bz"
	assert_running g3 "after reflink backups"
	stop_guest g3
	trap - EXIT
	merged_check "$T/xfs/b/ubd0.cow" "$n0" >/dev/null
	merged_check "$T/b-ext4/ubd0.cow" "$n0" >/dev/null
	expect_status 0 "$BK" verify "$T/xfs/bz"
	umount "$T/xfs" || fail "umount"
}

run_test t_reflink
