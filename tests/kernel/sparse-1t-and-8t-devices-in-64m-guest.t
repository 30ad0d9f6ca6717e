#!/bin/sh
# The bitmap of a 1 TiB device is 256 MiB, that of an 8 TiB one 2 GiB: the
# stock driver reads it whole into guest memory at open.  Ours (the
# library's sparse bitmap, in host memory) opens both in a 64 MiB guest.
# 8 TiB is the largest backing whose COW (data offset + size) still fits
# in an ext4 file (16 TiB - 4 KiB at most).
. "$(dirname "$0")/functions.sh"

t_sparse_1t_and_8t_devices_in_64m_guest() {
	truncate -s 1T b1.img || fail "no 1 TiB file here"
	truncate -s 8T b8.img || fail "the scratch file system takes no 8 TiB file"
	# 4 KiB blocks written: scattered, the last one of each device included.
	blk_a="0 3 12345 134217728 268435453 268435455"
	blk_b="1 99999 1073741824 2147483000 2147483647"
	{
		echo 'exec 3</dev/ubda 4</dev/ubdb'
		echo 'echo "SIZEA=$(blockdev --getsize64 /dev/ubda) SIZEB=$(blockdev --getsize64 /dev/ubdb)"'
		echo 'echo "MEM0 $(cat /sys/block/ubda/cow_bitmap_mem) $(cat /sys/block/ubdb/cow_bitmap_mem)"'
		for b in $blk_a; do
			echo "yes PATTERN-a-$b | head -c 4096 | dd of=/dev/ubda bs=4096 seek=$b conv=notrunc status=none || echo WRITE-FAILED a $b"
		done
		for b in $blk_b; do
			echo "yes PATTERN-b-$b | head -c 4096 | dd of=/dev/ubdb bs=4096 seek=$b conv=notrunc status=none || echo WRITE-FAILED b $b"
		done
		echo 'sync; blockdev --flushbufs /dev/ubda; blockdev --flushbufs /dev/ubdb'
		echo 'echo "MEM1 $(cat /sys/block/ubda/cow_bitmap_mem) $(cat /sys/block/ubdb/cow_bitmap_mem)"'
		echo 'echo "CBTA $(cat /sys/block/ubda/cbt)"; echo "CBTB $(cat /sys/block/ubdb/cbt)"'
	} >body
	UML_MEM=64M ours big body log ubda="$T/a.cow,$T/b1.img" ubdb="$T/b.cow,$T/b8.img" || true
	ended log
	! grep -q WRITE-FAILED log || fail "guest: $(grep WRITE-FAILED log)"
	grep -qx "SIZEA=$((1 << 40)) SIZEB=$((8 << 40))" log || fail "sizes: $(grep SIZEA log)"
	# What the library holds stays small (a few chunks, not 256 MiB/2 GiB).
	set -- $(sed -n 's/^MEM1 //p' log)
	[ $# = 2 ] && [ "$1" -gt 0 ] && [ "$1" -lt 1048576 ] && [ "$2" -gt 0 ] &&
		[ "$2" -lt 1048576 ] || fail "bitmap memory: $(grep '^MEM' log)"
	echo "bitmap memory after the writes: 1 TiB $1 B, 8 TiB $2 B"
	# The changed-block map follows the writes too (a flat one at 64 KiB
	# would be 16 MiB for 8 TiB): one 4 KiB leaf per 2 GiB region written.
	for d in A B; do
		line=$(sed -n "s/^CBT$d //p" log)
		mem=$(echo "$line" | sed -n 's/.* mem=\([0-9]*\).*/\1/p')
		[ -n "$mem" ] && [ "$mem" -lt 131072 ] || fail "CBT memory of ubd$d: $line"
		echo "CBT map memory, ubd$d: $mem B ($line)"
	done
	echo "$(sed -n 's/^CBTB //p' log)" | grep -q "blocks=5 size=$((8 << 40)) " || fail "8 TiB CBT blocks: $(grep '^CBTB' log)"
	for c in a b; do
		eval "blks=\$blk_$c"
		[ "$(info_get $c.cow layout)" = v3 ] || fail "$c.cow: not v3"
		# The library's bitmap holds exactly the blocks written.
		"$COWUTIL" runs $c.cow >runs.$c || fail "$c.cow: runs"
		for b in $blks; do echo "$((b * 8)) 8"; done | sort -n >want.$c
		sort -n runs.$c | cmp -s - want.$c || fail "$c.cow: runs $(tr '\n' ' ' <runs.$c), want $(tr '\n' ' ' <want.$c)"
		for b in $blks; do
			yes "PATTERN-$c-$b" | head -c 4096 >want
			cow_read $c.cow $((b * 4096)) 4096 >got || fail "$c.cow: read at block $b"
			cmp -s got want || fail "$c.cow: block $b: $(head -c 40 got | tr -d '\0')"
		done
	done
}

run_test t_sparse_1t_and_8t_devices_in_64m_guest
