#!/bin/sh
# The guest goes away while it is stopped for the backup.
. "$(dirname "$0")/functions.sh"

t_guest_exits() {
	trap on_exit EXIT
	make_disk disk 64
	# Relative paths on the guest's command line: resolved against its cwd.
	start_guest g2 ubda=disk.cow,disk.img
	(cd / && exec "$BK" -q -j -u "$T/uml" g2 "$T/rel") >out.txt 2>err.txt ||
		fail "relative paths: $(cat err.txt)"
	grep -q "\"cow\": \"$T/disk.cow\"" out.txt || fail "relative COW path not resolved: $(cat out.txt)"
	UBDK_BACKUP_TEST_STALL="$T/stall" "$BK" -u "$T/uml" g2 "$T/gone" >out.txt 2>err.txt &
	bk=$!
	i=0
	while [ ! -e "$T/stall" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	[ -e "$T/stall" ] || fail "the backup never reached the pause: $(cat err.txt)"
	kill_guests
	rm -f "$T/stall"
	wait $bk
	st=$?
	[ $st = 3 ] || fail "guest gone: exit $st: $(cat err.txt)"
	grep -q "exited during the backup" err.txt || fail "message: $(cat err.txt)"
	no_backup "$T/gone"
	# And a guest that is gone before we start: its socket is stale.
	expect_status 3 "$BK" -u "$T/uml" g2 "$T/gone2"
	err_has "not running"
	trap - EXIT
}

run_test t_guest_exits
