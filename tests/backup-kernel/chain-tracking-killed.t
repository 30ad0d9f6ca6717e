#!/bin/sh
# SIGKILL between two backups: the next one compares (unclean), still
# holds every record written before the kill; the one after tracks again.
. "$(dirname "$0")/../backup/functions.sh"

t_chain_tracking_killed() {
	need_ours
	trap on_exit EXIT
	UML=$OURS
	make_disk disk 64
	start_guest gk ubda="$T/disk.cow,$T/disk.img"
	chain_point gk 1 full
	killed=$(last_rec gk)
	kill_guests
	# Not the old log: start_guest would find its records there.
	mv "$T/log.gk" "$T/log.gk.killed"
	rm -rf "$T/pid.gk" "$T/uml/gk"
	start_guest gk ubda="$T/disk.cow,$T/disk.img"
	chain_point gk 2 comparison "tracking inconsistent: unclean shutdown"
	expect_status 0 "$BK" restore "$T/chain/$(points "$T/chain" | tail -n 1)/ubd0.ubdx" "$T/k.cow"
	c=$(merged_check "$T/k.cow" "$killed")
	echo "after the kill: $c records, $killed written before it"
	chain_point gk 3 tracking
	stop_guest gk
	trap - EXIT
	[ "$(points "$T/chain" | wc -l)" = 3 ] || fail "points: $(ls "$T/chain")"
	expect_status 0 "$BK" verify "$T/chain"
}

run_test t_chain_tracking_killed
