#!/bin/sh
# The merged view: what the pair holds, not what the backing holds.
. "$(dirname "$0")/functions.sh"

t_stat_merged_view() {
	truncate -s 32M empty.img
	"$MKCOW" c.cow empty.img
	expect_status 0 "$IS" c.cow
	grep -q 'nothing found' out.txt || fail "empty: $(cat out.txt)"
	# A partitioned disk with ext4 written into the COW.
	truncate -s 32M disk.img
	printf 'label: dos\nstart=2048, size=40960, type=83\nstart=43008, type=82\n' |
		sfdisk -q disk.img || fail sfdisk
	mkfs.ext4 -q -F -b 4096 -L viewfs -E offset=1048576 disk.img 20M || fail mkfs
	cow_sync c.cow empty.img disk.img
	expect_status 0 "$IS" c.cow empty.img
	sed -n '/c.cow:/,/empty.img:/p' out.txt >cow.txt
	grep -q 'partition table: dos' cow.txt || fail "view: $(cat cow.txt)"
	grep -q 'label: viewfs' cow.txt || fail "view label"
	grep -q 'block size: 4096' cow.txt || fail "view ext details"
	sed -n '/empty.img:/,$p' out.txt | grep -q 'nothing found' || fail "the backing changed?"
	# mkswap over the whole device in the COW.
	"$MKCOW" s.cow empty.img
	cp empty.img sw.img
	mkswap -L viewswap sw.img >/dev/null 2>&1 || fail mkswap
	cow_sync s.cow empty.img sw.img
	expect_status 0 "$IS" s.cow
	grep -q 'signature: swap' out.txt && grep -q 'label: viewswap' out.txt ||
		fail "swap in the view: $(cat out.txt)"
}

run_test t_stat_merged_view
