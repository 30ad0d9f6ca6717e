#!/bin/sh
# A backing so large that the COW's bitmap cannot fit in memory: no tool
# could open the COW, so none is made.  tmpfs holds sparse files of 4 EiB.
# A 4 EiB backing (tmpfs allows such sparse files, ext4 stops at 16 TiB):
# its 1 PiB bitmap is loaded sparsely, so the COW is made and opens.
. "$(dirname "$0")/functions.sh"

t_huge_backing() {
	if [ "$(id -u)" != 0 ]; then
		skip "not root, cannot mount a tmpfs"
	fi
	mkdir big
	mount -t tmpfs -o size=1m tmpfs big || skip "cannot mount a tmpfs"
	truncate -s 4E big/m.img
	"$MKCOW" big/a.cow big/m.img >out.txt 2>err.txt
	st=$?
	"$B/tests/cowutil" info big/a.cow >info.txt 2>>err.txt
	ist=$?
	umount big
	[ $st = 0 ] || fail "4 EiB backing: exit $st: $(cat err.txt)"
	[ $ist = 0 ] || fail "cowutil info: $(cat err.txt)"
	grep -qx 'size=4611686018427387904' info.txt || fail "$(cat info.txt)"
	grep -qx 'cow_sectors=0' info.txt || fail "$(cat info.txt)"
}

run_test t_huge_backing
