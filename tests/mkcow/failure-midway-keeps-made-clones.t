#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_failure_midway_keeps_made_clones() {
	truncate -s 1M master.img
	"$PEER_MKCOW" peer.cow master.img
	expect_status 1 "$MKCOW" a.cow b.cow nodir/c.cow d.cow master.img
	grep -q '2 of 4 clones made' err.txt || fail "$(cat err.txt)"
	cmp peer.cow a.cow && cmp peer.cow b.cow || fail "made clones broken"
	only_files . master.img peer.cow a.cow b.cow out.txt err.txt
}

run_test t_failure_midway_keeps_made_clones
