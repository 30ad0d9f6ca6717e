#!/bin/sh
# Destinations that are read-only or full (tmpfs mounts: root only).
. "$(dirname "$0")/functions.sh"

t_live_full_destinations() {
	[ "$(id -u)" = 0 ] || skip "not root: no tmpfs to fill"
	mkdir -p "$T/ro" "$T/small"
	mount -t tmpfs -o ro,size=1m tmpfs "$T/ro" 2>/dev/null || skip "no tmpfs mount here"
	live_guest
	expect_status 5 "$BK" -d 0 "$S" "$T/ro/b"
	err_has "read-only"
	umount "$T/ro"
	# Smaller than the young guest's COW data: refused before the copy.
	mount -t tmpfs -o size=64k tmpfs "$T/small"
	expect_status 5 "$BK" -d 0 "$S" "$T/small/b"
	err_has "not enough space"
	no_backup "$T/small/b"
	umount "$T/small"
	assert_running g1 "after the full destinations"
	live_guest_end
}

run_test t_live_full_destinations
