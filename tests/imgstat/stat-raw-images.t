#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_stat_raw_images() {
	truncate -s 16M zero.img
	randfile rand.img $((4 * MiB))
	mkswap -L myswap swap.img 2>/dev/null >/dev/null || { truncate -s 16M swap.img; mkswap -L myswap swap.img >/dev/null 2>&1; }
	expect_status 0 "$IS" zero.img rand.img swap.img
	grep -q 'zero.img: raw disk image' out.txt || fail "raw line"
	[ "$(grep -c 'nothing found: no filesystem, no partition table' out.txt)" = 2 ] ||
		fail "empty images: $(cat out.txt)"
	grep -q 'signature: swap (other), version 1' out.txt || fail "swap: $(cat out.txt)"
	grep -q 'label: myswap' out.txt || fail "swap label"
	# Partition tables: dos with ext4 and swap; gpt.
	truncate -s 32M disk.img
	printf 'label: dos\nstart=2048, size=40960, type=83\nstart=43008, type=82\n' |
		sfdisk -q disk.img || fail sfdisk
	mkfs.ext4 -q -F -b 4096 -L inpart -E offset=1048576 disk.img 20M || fail mkfs
	truncate -s 16M gpt.img
	printf 'label: gpt\nstart=2048, size=8192, name=boot\nstart=10240, name=data\n' |
		sfdisk -q gpt.img || fail "sfdisk gpt"
	expect_status 0 "$IS" disk.img gpt.img
	grep -q 'partition table: dos (id [0-9a-f]*), 2 partitions' out.txt || fail "dos: $(cat out.txt)"
	grep -q 'partition 1: primary, type 0x83, start 1048576, size 20971520' out.txt || fail "p1"
	grep -q 'partition 2: primary, type 0x82, start 22020096' out.txt || fail "p2"
	grep -q 'label: inpart' out.txt || fail "ext4 in partition 1"
	grep -q 'partition table: gpt (id [0-9a-f-]*), 2 partitions' out.txt || fail "gpt"
	grep -q 'partition 2: primary, type 0fc63daf-8483-4772-8e79-3d69d8477de4, start 5242880, .*name "data"' out.txt ||
		fail "gpt p2: $(grep 'partition 2' out.txt)"
	expect_status 0 "$IS" --json disk.img gpt.img
	json_ok out.txt 2
	if command -v python3 >/dev/null; then
		[ "$(jget out.txt content.partition_table.type)" = dos ] || fail "json pt"
		[ "$(jget out.txt content.partition_table.partitions.0.start)" = 1048576 ] || fail "json start"
		[ "$(jget out.txt content.partition_table.partition_content.0.signature.type)" = ext4 ] ||
			fail "json partition content"
		[ "$(jget out.txt content.partition_table.partition_content.0.ext.block_size)" = 4096 ] ||
			fail "json ext in partition"
	fi
	# vfat, when dosfstools is installed.
	if command -v mkfs.vfat >/dev/null; then
		truncate -s 16M fat.img
		mkfs.vfat -n FATLABEL fat.img >/dev/null || fail mkfs.vfat
		expect_status 0 "$IS" fat.img
		grep -q 'signature: vfat (filesystem), version FAT16' out.txt || fail "vfat: $(cat out.txt)"
		grep -q 'label: FATLABEL' out.txt || fail "vfat label"
		! grep -q 'ext2/3/4' out.txt || fail "ext details for vfat"
	else
		echo "note: mkfs.vfat missing (dosfstools): vfat not tested"
	fi
}

run_test t_stat_raw_images
