#!/bin/sh
# A directory entry in the backing file names an inode past the last one,
# in a directory the guest renamed.
. "$(dirname "$0")/functions.sh"

t_files_damaged_entry_inode() {
	mkdir -p tree/d && echo a >tree/d/a.txt && echo b >tree/d/b.txt
	mkfs.ext4 -q -F -b 4096 -N 64 -O ^metadata_csum -d tree m.img 8M 2>/dev/null || fail mkfs
	blk=$(debugfs -R "blocks /d" m.img 2>/dev/null | tr -d ' ')
	off=$(dd if=m.img bs=4096 skip="$blk" count=1 status=none |
		grep -obUa 'a\.txt' | head -n 1 | cut -d: -f1)
	[ -n "$blk" ] && [ -n "$off" ] || fail "no entry a.txt in /d"
	# The entry's inode field is 8 bytes before its name.
	poke m.img $((blk * 4096 + off - 8)) '\377\377\377\017'
	"$MKCOW" c.cow m.img
	cp m.img w.img
	debugfs -w -R "ln d e" w.img >/dev/null 2>&1
	debugfs -w -R "unlink d" w.img >/dev/null 2>&1
	cow_sync c.cow m.img w.img
	expect_files 2 --files c.cow
	grep -q '^uml_imgstat: c.cow: filesystem damaged: .*inode 268435455' err.txt ||
		fail "$(cat err.txt)"
}

run_test t_files_damaged_entry_inode
