#!/bin/sh
# One sector written through the COW sets s_first_data_block to 148 on a
# 1 KiB-block ext4: the superblock checksum refuses it, and without the
# checksum the field itself does.
. "$(dirname "$0")/functions.sh"

t_files_damaged_superblock() {
	mkdir -p tree/d && echo a >tree/d/a.txt
	mkfs.ext4 -q -F -b 1024 -N 64 -d tree m.img 2M 2>/dev/null || fail mkfs
	"$MKCOW" c.cow m.img
	cp m.img w.img
	poke w.img $((1024 + 20)) '\224'
	cow_sync_sectors c.cow m.img w.img
	expect_files 2 --files c.cow
	grep -q '^uml_imgstat: c.cow: filesystem damaged: the merged view: .*checksum' err.txt ||
		fail "$(cat err.txt)"
	expect_files 2 --files --ignore-checksums c.cow
	grep -q '^uml_imgstat: c.cow: filesystem damaged: the merged view: the first data block is 148, not 1$' err.txt ||
		fail "$(cat err.txt)"
	expect_status 2 "$IS" --ignore-checksums c.cow
	grep -q 'goes with --files' err.txt || fail "$(cat err.txt)"
}

run_test t_files_damaged_superblock
