#!/bin/sh
# A file system change made with debugfs and written into a COW in place
# of a guest; the filesystem sits in a partition.
. "$(dirname "$0")/functions.sh"

t_files_in_partition() {
	truncate -s 32M disk.img
	printf 'label: dos\nstart=2048, size=40960, type=83\nstart=43008, type=82\n' |
		sfdisk -q disk.img || fail "sfdisk"
	mkdir -p tree/etc && echo host >tree/etc/hostname && echo old >tree/old.txt
	mkfs.ext4 -q -F -b 4096 -L inpart -E offset=1048576 -d tree disk.img 20M ||
		fail "mkfs.ext4 with offset"
	"$MKCOW" c.cow disk.img || fail "uml_mkcow"
	cp disk.img work.img
	echo "new file" >new.txt
	debugfs -w -R "write new.txt new.txt" "work.img?offset=1048576" >/dev/null 2>&1
	debugfs -w -R "rm old.txt" "work.img?offset=1048576" >/dev/null 2>&1
	cow_sync c.cow disk.img work.img
	"$COWUTIL" merged c.cow view.img && cmp view.img work.img || fail "cow_sync"
	expect_status 0 "$IS" --files c.cow
	changes out.txt >got.txt
	printf 'A /new.txt\nD /old.txt\n' >want.txt
	same_lines got.txt want.txt "--files in a partition"
	grep -q 'at offset 1048576' out.txt || fail "offset not named"
	# No change at all: nothing reported.
	"$MKCOW" fresh.cow disk.img
	expect_status 0 "$IS" --files fresh.cow
	[ -z "$(changes out.txt)" ] || fail "changes in a fresh COW: $(cat out.txt)"
	grep -q '0 added, 0 deleted, 0 modified, 0 renamed' out.txt || fail "summary"
}

run_test t_files_in_partition
