#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_map_on_read_past_max_map_count_falls_back() {
	[ "$(id -u)" = 0 ] || skip "needs root to lower vm.max_map_count"
	# The limit is the host's: one test at a time lowers it (tests run in
	# parallel, check-kernel and check-kernel-map side by side, other
	# trees too), or one would save another's lowered value as the one to
	# put back.  Held until the limit is back.
	exec 9>/tmp/ubdkit-max_map_count.lock
	flock 9 || fail "flock /tmp/ubdkit-max_map_count.lock"
	old=$(cat /proc/sys/vm/max_map_count)
	trap 'echo "$old" >/proc/sys/vm/max_map_count' EXIT
	# The budget is (limit - maps in use (about 50) - 4096) / 2 runs of
	# pages that share a host mapping: a few hundred.
	echo 4800 >/proc/sys/vm/max_map_count
	map_master 32
	cat >body <<'EOS'
mount /dev/ubda /mnt || echo MOUNT-FAILED
s=/sys/block/ubda
/mnt/maptool stride /mnt/data.bin 2 -
echo "MAPPED=$(cat $s/pages_mapped)"
echo "FALLBACKS=$(cat $s/map_fallbacks)"
echo "SUM0=$(md5sum </mnt/data.bin | cut -d' ' -f1)"
yes WRITE-PAGE | head -c 4096 | dd of=/mnt/data.bin bs=4096 seek=10 conv=notrunc status=none
sync
echo 3 >/proc/sys/vm/drop_caches
echo "SUM1=$(md5sum </mnt/data.bin | cut -d' ' -f1)"
umount /mnt
EOS
	ours mapc body log ubdam="$T/c.cow,$T/master.img" 9>&- &
	pid=$!
	# The guest reads the limit once, at boot: the host's other processes
	# get theirs back at once.
	wait_line log 'map-on-read maps at most'
	echo "$old" >/proc/sys/vm/max_map_count
	trap - EXIT
	exec 9>&-
	wait $pid
	ended log
	grep -q MOUNT-FAILED log && fail "mount failed"
	budget=$(sed -n 's/.*map-on-read maps at most \([0-9]*\) .*/\1/p' log)
	[ -n "$budget" ] && [ "$budget" -gt 0 ] && [ "$budget" -lt 2048 ] ||
		fail "budget '$budget' not between 1 and 2047"
	# 4096 isolated pages read: more runs than the budget.
	grep -qx 'STRIDE-READ 4096' log || fail "stride: $(grep STRIDE log)"
	[ "$(guest_val log MAPPED)" -ge 1 ] || fail "nothing mapped"
	[ "$(guest_val log FALLBACKS)" -ge $((4096 - budget)) ] ||
		fail "map_fallbacks $(guest_val log FALLBACKS), budget $budget"
	[ "$(guest_val log SUM0)" = "$(md5 m/data.bin)" ] || fail "read differs"
	yes WRITE-PAGE | head -c 4096 |
		dd of=m/data.bin bs=4096 seek=10 conv=notrunc status=none
	[ "$(guest_val log SUM1)" = "$(md5 m/data.bin)" ] || fail "contents after a write"
	cmp master.img master.orig || fail "the master changed"
}

run_test t_map_on_read_past_max_map_count_falls_back
