#!/bin/sh
# Processes map pages of the master read-only (kernel/patches/0004): a
# read-only shared mapping sees another process's write(); a shared
# writable mapping's write reaches every mapping, the COW and no master;
# a private mapping's write stays in its process.
. "$(dirname "$0")/functions.sh"

t_map_on_read_processes_see_writes() {
	map_master 16
	cp m/data.bin expect.bin
	printf COHERENT-2 |
		dd of=expect.bin bs=1 seek=$((45 * 4096)) conv=notrunc status=none
	printf MSHARED-TEXT |
		dd of=expect.bin bs=1 seek=$((50 * 4096)) conv=notrunc status=none
	cat >body <<'EOS'
mount /dev/ubda /mnt || echo MOUNT-FAILED
s=/sys/block/ubda
echo "SUM0=$(md5sum </mnt/data.bin | cut -d' ' -f1)"
u0=$(cat $s/pages_user_mapped)
/mnt/maptool coherent /mnt/data.bin $((45 * 4096)) COHERENT-2
u1=$(cat $s/pages_user_mapped)
/mnt/maptool mshared /mnt/data.bin $((50 * 4096)) MSHARED-TEXT
u2=$(cat $s/pages_user_mapped)
/mnt/maptool mprivate /mnt/data.bin $((60 * 4096)) MPRIVATE-TEXT
u3=$(cat $s/pages_user_mapped)
echo "USER=$((u1 - u0)) $((u2 - u1)) $((u3 - u2))"
echo "SUM1=$(md5sum </mnt/data.bin | cut -d' ' -f1)"
sync
echo 3 >/proc/sys/vm/drop_caches
echo "SUM2=$(md5sum </mnt/data.bin | cut -d' ' -f1)"
umount /mnt
EOS
	UML_MEM=96M ours mapw body log ubdam="$T/c.cow,$T/master.img" || true
	ended log
	grep -q MOUNT-FAILED log && fail "mount failed"
	[ "$(guest_val log SUM0)" = "$(md5 m/data.bin)" ] || fail "mapped read differs"
	# Each step mapped the page it then wrote from the master first.
	set -- $(guest_val log USER)
	[ $# = 3 ] && [ "$1" -ge 1 ] && [ "$2" -ge 3 ] && [ "$3" -ge 2 ] ||
		fail "pages_user_mapped moved by '$*', want >= 1 3 2"
	# (What a stale mapping shows is random bytes: cat -v.)
	grep -qx COHERENT-OK log || fail "read-only mapping: $(grep -a COHERENT log | cat -v)"
	grep -qx MSHARED-OK log || fail "shared writable mapping: $(grep -a MSHARED log | cat -v)"
	grep -qx MPRIVATE-OK log || fail "private mapping: $(grep -a MPRIVATE log | cat -v)"
	[ "$(guest_val log SUM1)" = "$(md5 expect.bin)" ] || fail "cached contents after writes"
	[ "$(guest_val log SUM2)" = "$(md5 expect.bin)" ] || fail "contents re-read after writes"
	cmp master.img master.orig || fail "the master changed"
	echo 'mount -o ro /dev/ubda /mnt; echo "SUM=$(md5sum </mnt/data.bin | cut -d" " -f1)"' >body2
	stock mapw2 body2 log2 ubda="$T/c.cow,$T/master.img" || true
	ended log2
	[ "$(guest_val log2 SUM)" = "$(md5 expect.bin)" ] || fail "the COW read by the stock kernel: $(guest_val log2 SUM)"
}

run_test t_map_on_read_processes_see_writes
