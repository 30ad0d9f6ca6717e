#!/bin/sh
# Data rewritten in place with the inode untouched (as a crash between
# data and inode writes leaves it): found by the owner scan.
. "$(dirname "$0")/functions.sh"

t_files_data_only_change() {
	mkdir tree && head -c 40960 /dev/urandom >tree/f.bin && echo same >tree/g.txt
	mkfs.ext4 -q -F -b 4096 -d tree m.img 16M || fail mkfs
	"$MKCOW" c.cow m.img
	blk=$(debugfs -R "bmap /f.bin 3" m.img 2>/dev/null)
	[ -n "$blk" ] || fail "bmap"
	head -c 4096 /dev/urandom >b.bin
	"$COWUTIL" write c.cow $((blk * 4096)) b.bin || fail "cowutil write"
	expect_status 0 "$IS" --files c.cow
	changes out.txt >got.txt
	echo "M /f.bin content" >want.txt
	same_lines got.txt want.txt "data-only change"
	grep -q '1 block differs' out.txt || fail "block count"
	# The same bytes written again: no change.
	"$MKCOW" -f c2.cow m.img
	dd if=m.img of=b.bin bs=4096 skip="$blk" count=1 status=none
	"$COWUTIL" write c2.cow $((blk * 4096)) b.bin
	expect_status 0 "$IS" --files c2.cow
	[ -z "$(changes out.txt)" ] || fail "identical rewrite reported: $(cat out.txt)"
}

run_test t_files_data_only_change
