#!/bin/sh
# The COW written by the stock kernel in between: that kernel has no
# tracking (comparison, said so), and ours then finds the record does not
# match the COW (cow-changed: comparison), then tracks again.  Offline,
# the record is the source while it is clean and names the parent.
. "$(dirname "$0")/../backup/functions.sh"

t_chain_tracking_stock() {
	need_ours
	[ -x /usr/bin/linux.uml ] || skip "no stock /usr/bin/linux.uml"
	trap on_exit EXIT
	make_disk disk 64
	UML=$OURS
	start_guest gs ubda="$T/disk.cow,$T/disk.img"
	chain_point gs 1 full
	stop_guest gs
	# Offline: the clean record names point 1.
	expect_status 0 "$BK" -i -j --offline "$T/disk.cow" "$T/chain"
	[ "$(json_str out.txt changes)" = tracking ] || fail "offline: changes $(json_str out.txt changes_note)"
	UML=/usr/bin/linux.uml
	mv "$T/log.gs" "$T/log.gs.1"
	rm -f "$T/stop.gs" "$T/pid.gs"
	start_guest gs ubda="$T/disk.cow,$T/disk.img"
	before3=$(last_rec gs)
	expect_status 0 "$BK" -i -j -u "$T/uml" gs "$T/chain"
	[ "$(json_str out.txt changes_note)" = "the kernel has no changed-block tracking" ] ||
		fail "stock kernel: note $(json_str out.txt changes_note)"
	stop_guest gs
	UML=$OURS
	mv "$T/log.gs" "$T/log.gs.2"
	rm -f "$T/stop.gs" "$T/pid.gs"
	start_guest gs ubda="$T/disk.cow,$T/disk.img"
	chain_point gs 4 comparison "tracking inconsistent: cow-changed"
	chain_point gs 5 tracking
	stop_guest gs
	trap - EXIT
	# Offline after a change behind the record's back: cow-changed.
	printf 'x' | dd of="$T/disk.cow" bs=1 seek=$(($(size_of "$T/disk.cow") - 1)) conv=notrunc status=none
	touch -d '2001-01-01' "$T/disk.cow"
	expect_status 0 "$BK" -i -j --offline "$T/disk.cow" "$T/chain"
	[ "$(json_str out.txt changes)" = comparison ] || fail "offline after a change: $(json_str out.txt changes)"
	grep -q '"changes_note": "tracking inconsistent: cow-changed' out.txt || fail "offline note: $(json_str out.txt changes_note)"
	expect_status 0 "$BK" verify "$T/chain"
}

run_test t_chain_tracking_stock
