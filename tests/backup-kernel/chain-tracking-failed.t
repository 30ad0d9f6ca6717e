#!/bin/sh
# A backup that fails after its checkpoint: the next sees a checkpoint
# that is not its parent and compares; the one after tracks.
. "$(dirname "$0")/../backup/functions.sh"

t_chain_tracking_failed() {
	need_ours
	trap on_exit EXIT
	UML=$OURS
	make_disk disk 64
	start_guest gf ubda="$T/disk.cow,$T/disk.img"
	S=$(sock gf)
	chain_point gf 1 full
	p1=$(json_str out.txt point)
	live_stall "$T/chain" -i
	kill -KILL "$bk"
	wait "$bk" 2>/dev/null
	assert_running gf "after a killed backup"
	# The killed run left no point (a directory without a manifest is none).
	[ "$(ls "$T"/chain/*/manifest.json | wc -l)" = 1 ] || fail "points after a killed run: $(ls "$T/chain")"
	rmdir "$T/chain/$(points "$T/chain" | tail -n 1)" 2>/dev/null
	chain_point gf 2 comparison "tracking checkpoint [0-9a-f]*\(\.pre\)\{0,1\} is not the parent $p1"
	chain_point gf 3 tracking
	stop_guest gf
	trap - EXIT
	chain_restore_all
}

run_test t_chain_tracking_failed
