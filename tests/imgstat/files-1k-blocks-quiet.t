#!/bin/sh
# A healthy 1 KiB-block ext4 whose superblock block the guest rewrote
# (with 4 KiB writes): nothing on stderr.
. "$(dirname "$0")/functions.sh"

t_files_1k_blocks_quiet() {
	mkdir -p tree/d && echo a >tree/d/a.txt
	mkfs.ext4 -q -F -b 1024 -N 64 -d tree m.img 2M 2>/dev/null || fail mkfs
	"$MKCOW" c.cow m.img
	cp m.img w.img
	debugfs -w -R "mkdir new" w.img >/dev/null 2>&1
	cow_sync c.cow m.img w.img
	expect_files 0 --files c.cow
	[ "$(changes out.txt)" = "A /new/" ] || fail "$(cat out.txt)"
}

run_test t_files_1k_blocks_quiet
