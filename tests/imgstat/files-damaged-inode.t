#!/bin/sh
# One byte of an inode table flipped (an extent header) in a file with an
# xattr block, while the guest changed another file's data only: the owner
# scan meets the broken inode, and frees what it read of it.
. "$(dirname "$0")/functions.sh"

t_files_damaged_inode() {
	mkdir tree && echo x >tree/x.txt && head -c 40960 /dev/urandom >g.bin
	mkfs.ext4 -q -F -b 4096 -N 64 -O ^metadata_csum -d tree m.img 8M 2>/dev/null || fail mkfs
	head -c 3000 /dev/zero | tr '\0' v >val
	debugfs -w -R "ea_set -f val /x.txt user.big" m.img >/dev/null 2>&1
	debugfs -w -R "write g.bin g.bin" m.img >/dev/null 2>&1
	ino=$(debugfs -R "stat /x.txt" m.img 2>/dev/null | sed -n 's/^Inode: \([0-9]*\).*/\1/p')
	itab=$(dumpe2fs m.img 2>/dev/null | sed -n 's/.*Inode table at \([0-9]*\)-.*/\1/p' | head -n 1)
	isz=$(dumpe2fs -h m.img 2>/dev/null | sed -n 's/^Inode size:[ \t]*//p')
	[ -n "$ino" ] && [ -n "$itab" ] && [ -n "$isz" ] || fail "debugfs/dumpe2fs"
	debugfs -R "stat /x.txt" m.img 2>/dev/null | grep -q 'File ACL: [1-9]' ||
		fail "no xattr block"
	# i_block starts at byte 40: the low byte of the extent magic.
	poke m.img $((itab * 4096 + (ino - 1) * isz + 40)) '\000'
	"$MKCOW" c.cow m.img
	blk=$(debugfs -R "bmap /g.bin 3" m.img 2>/dev/null)
	head -c 4096 /dev/urandom >b.bin
	"$COWUTIL" write c.cow $((blk * 4096)) b.bin || fail "cowutil write"
	expect_files 0 --files c.cow
	[ "$(changes out.txt)" = "M /g.bin content" ] || fail "$(cat out.txt)"
}

run_test t_files_damaged_inode
