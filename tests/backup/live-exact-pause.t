#!/bin/sh
# Exactly the COW as it was in the pause: copy it ourselves while the
# backup waits in the pause (the guest stopped, its I/O idle), then
# compare with what the backup wrote.
. "$(dirname "$0")/functions.sh"

t_live_exact_pause() {
	live_guest
	for m in auto compare copy; do
		live_stall "$T/t-$m" -q -m $m
		cp --sparse=always "$T/disk.cow" "$T/truth.cow"
		rm -f "$T/stall"
		wait $bk || fail "$m: backup failed: $(cat err.txt)"
		cmp "$T/t-$m/ubd0.cow" "$T/truth.cow" ||
			fail "$m: the backup differs from the COW as it was in the pause"
	done
	live_guest_end
}

run_test t_live_exact_pause
