#!/bin/sh
# The host reads no more of the master than the guest asks for: faulting
# in a page of the master the host has not cached would read its whole
# read-ahead window around it (mmap read-around).
. "$(dirname "$0")/functions.sh"

t_map_on_read_host_reads_only_what_the_guest_reads() {
	map_master 32
	[ "$(stat -f -c %T master.img)" != tmpfs ] ||
		skip "the master is on tmpfs: the host reads nothing ahead there"
	# Out of the host's page cache: written back first, then dropped.
	sync master.img
	dd if=master.img iflag=nocache count=0 status=none
	cached=$(fincore -b -n -o RES master.img)
	[ "$cached" -le 65536 ] || skip "the host keeps $cached bytes of the master cached"
	cat >body <<'EOS'
mount -o ro /dev/ubda /mnt || echo MOUNT-FAILED
/mnt/maptool stride /mnt/data.bin 64 -
echo "MAPPED=$(cat /sys/block/ubda/pages_mapped)"
umount /mnt
echo "SECTORS=$(awk '{ print $3 }' /sys/block/ubda/stat)"
EOS
	ours mapra body log ubdam="$T/c.cow,$T/master.img" || true
	ended log
	grep -q MOUNT-FAILED log && fail "mount failed"
	grep -qx 'STRIDE-READ 128' log || fail "stride: $(grep STRIDE log)"
	[ "$(guest_val log MAPPED)" -ge 128 ] || fail "pages_mapped $(guest_val log MAPPED), want >= 128"
	read_pages=$(($(guest_val log SECTORS) / 8))
	host_pages=$(($(fincore -b -n -o RES master.img) / 4096))
	[ "$host_pages" -le $((read_pages * 2 + 64)) ] ||
		fail "the host cached $host_pages pages of the master for $read_pages the guest read"
	cmp master.img master.orig || fail "the master changed"
}

run_test t_map_on_read_host_reads_only_what_the_guest_reads
