#!/bin/sh
# Offline backups are refused while the guest holds the files; once it is
# gone they copy them exactly (by --offline and by a COW as GUEST).
. "$(dirname "$0")/functions.sh"

t_live_offline() {
	live_guest
	expect_status 6 "$BK" --offline "$T/disk.cow" "$T/off"
	err_has "in use by a running guest"
	live_guest_end
	expect_status 0 "$BK" -j --offline "$T/disk.cow" "$T/second.cow" "$T/off"
	grep -q '"live": false' "$T/off/manifest.json" || fail "offline manifest"
	cmp "$T/off/ubd0.cow" "$T/disk.cow" || fail "offline copy differs"
	cmp "$T/off/ubd1.cow" "$T/second.cow" || fail "offline copy of ubd1 differs"
	expect_status 0 "$BK" -q -c gzip "$T/disk.cow" "$T/off2"
	expect_status 0 "$BK" --verify "$T/off2"
}

run_test t_live_offline
