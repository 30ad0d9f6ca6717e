#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_killed_batch_leaves_only_complete_clones() {
	truncate -s 16M master.img
	"$PEER_MKCOW" peer.cow master.img
	mkdir c
	"$MKCOW" -q --count 20000 --name 'c/g-%05d.cow' master.img &
	pid=$!
	sleep 0.3
	kill -9 $pid 2>/dev/null
	wait $pid
	n=0
	for f in c/* c/.[!.]*; do
		[ -e "$f" ] || continue
		case $f in
		c/g-?????.cow) ;;
		# Only the named fallback has temporary names a kill can strand.
		c/.g-?????.cow.*.tmp) [ -n "${UBDK_NO_TMPFILE:-}" ] || fail "stray $f"; continue ;;
		*) fail "stray file $f" ;;
		esac
		n=$((n + 1))
	done
	# One process for all: thousands of cmp runs take minutes.
	[ $n = 0 ] || "$COWUTIL" same peer.cow c/g-?????.cow >bad.txt ||
		fail "incomplete clones: $(head -n 3 bad.txt)"
	echo "$n of 20000 clones complete when killed"
}

run_test t_killed_batch_leaves_only_complete_clones
