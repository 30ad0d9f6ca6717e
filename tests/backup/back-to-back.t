#!/bin/sh
# Backups in quick succession while the guest forks a process per record:
# the tracker must leave alone the stubs UML traces itself (catching one
# panicked the guest's kernel: "Failed to get registers from stub").
. "$(dirname "$0")/functions.sh"

t_back_to_back() {
	trap on_exit EXIT
	make_disk disk 64
	start_guest g4 ubda="$T/disk.cow,$T/disk.img"
	i=0
	while [ $i -lt 60 ]; do
		i=$((i + 1))
		expect_status 0 "$BK" -q -j -u "$T/uml" g4 "$T/b$i"
		[ "$(json_str out.txt method)" = tracked ] || fail "backup $i: method $(json_str out.txt method)"
		! grep -q "GUEST-ERROR\|Kernel panic\|from stub" "$T/log.g4" ||
			fail "the guest broke during backup $i"
	done
	assert_running g4 "after 60 backups"
	n=$(last_rec g4)
	stop_guest g4
	trap - EXIT
	c=$(merged_check "$T/b60/ubd0.cow" 1)
	[ "$c" -le "$n" ] || fail "backup 60 holds $c records, the guest wrote $n"
}

run_test t_back_to_back
