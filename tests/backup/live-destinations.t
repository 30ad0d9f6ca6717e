#!/bin/sh
# Destinations: an existing backup (kept unless -f), a file, a file size
# limit mid-copy.
. "$(dirname "$0")/functions.sh"

t_live_destinations() {
	live_guest
	expect_status 0 "$BK" -q -d 0 "$S" "$T/b1"
	expect_status 5 "$BK" -d 0 "$S" "$T/b1"
	err_has "already holds a backup"
	: >"$T/afile"
	expect_status 5 "$BK" -d 0 "$S" "$T/afile"
	err_has "not a directory"
	(ulimit -f 100 && exec "$BK" -d 0 "$S" "$T/fsize") >out.txt 2>err.txt
	st=$?
	[ $st = 5 ] || fail "file size limit: exit $st: $(cat err.txt)"
	err_has "too large"
	no_backup "$T/fsize"
	assert_running g1 "after the destination errors"
	live_guest_end
}

run_test t_live_destinations
