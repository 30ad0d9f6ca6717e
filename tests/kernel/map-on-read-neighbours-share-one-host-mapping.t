#!/bin/sh
# Pages read in one request that are neighbours in physmem and on the
# device share one host mapping (and one punch of physmem), not one each.
. "$(dirname "$0")/functions.sh"

t_map_on_read_neighbours_share_one_host_mapping() {
	map_master 16
	cat >body <<'EOS'
mount -o ro /dev/ubda /mnt || echo MOUNT-FAILED
s=/sys/block/ubda
echo "SUM=$(md5sum </mnt/data.bin | cut -d' ' -f1)"
echo "MAPPED=$(cat $s/pages_mapped)"
echo "RUNS=$(cat $s/map_runs)"
umount /mnt
EOS
	ours mapr body log ubdam="$T/c.cow,$T/master.img" || true
	ended log
	grep -q MOUNT-FAILED log && fail "mount failed"
	[ "$(guest_val log SUM)" = "$(md5 m/data.bin)" ] || fail "mapped read differs"
	mapped=$(guest_val log MAPPED) runs=$(guest_val log RUNS)
	[ "$mapped" -ge 4096 ] || fail "pages_mapped $mapped, want >= 4096 (16 MiB read)"
	# The guest reads ahead up to 32 pages at once; pages it allocates
	# one after another are mostly neighbours in physmem.
	[ -n "$runs" ] && [ "$runs" -ge 1 ] && [ $((runs * 4)) -le "$mapped" ] ||
		fail "map_runs '$runs' for $mapped pages mapped: want at most a quarter"
	cmp master.img master.orig || fail "the master changed"
}

run_test t_map_on_read_neighbours_share_one_host_mapping
