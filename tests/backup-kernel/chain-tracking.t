#!/bin/sh
# A chain of a guest running our kernel: every incremental reads only
# the chunks the kernel says changed (plus a few of metadata), and each
# point holds what the guest had when it was stopped.
. "$(dirname "$0")/../backup/functions.sh"

t_chain_tracking() {
	need_ours
	trap on_exit EXIT
	UML=$OURS
	# Inode tables made now: the guest would zero them meanwhile, writes
	# the maps name that change nothing.
	make_disk disk 64 -E lazy_itable_init=0,lazy_journal_init=0
	start_guest gt ubda="$T/disk.cow,$T/disk.img"
	chain_point gt 1 full
	for i in 2 3 4 5; do
		chain_point gt $i tracking "changed-block tracking since checkpoint"
		# Read: the changed chunks (each at most once per map: the one
		# before the copy, two rounds, the pause's) and a few metadata
		# chunks; far below the 64 MiB disk.
		n=$(chunks_stored)
		rd=$(read_mib)
		awk -v r="$rd" -v n="$n" 'BEGIN { exit !(r * 16 <= (n * 4 + 32)) }' ||
			fail "point $i read $rd MiB for $n changed chunks"
		[ "$(json_str out.txt method)" = tracked ] || fail "point $i: method $(json_str out.txt method)"
	done
	assert_running gt "after the chain"
	stop_guest gt
	trap - EXIT
	chain_restore_all
}

run_test t_chain_tracking
