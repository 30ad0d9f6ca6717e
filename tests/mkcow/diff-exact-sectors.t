#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_diff_exact_sectors() {
	# A master with data, a hole, and data again; the image changes a
	# byte, runs of sectors, writes into the master's hole, and zeroes
	# some of the master's data.
	randfile master.img 4M
	truncate -s 12M master.img
	randfile tail 2M && dd if=tail of=master.img bs=1M seek=10 conv=notrunc status=none
	cp --sparse=always master.img image.img
	printf 'X' | dd of=image.img bs=1 seek=1000 conv=notrunc status=none
	dd if=/dev/urandom of=image.img bs=512 seek=100 count=17 conv=notrunc status=none
	dd if=/dev/urandom of=image.img bs=512 seek=2047 count=2 conv=notrunc status=none
	dd if=/dev/urandom of=image.img bs=512 seek=12000 count=5 conv=notrunc status=none
	dd if=/dev/zero of=image.img bs=512 seek=3000 count=8 conv=notrunc status=none
	printf 'Y' | dd of=image.img bs=1 seek=$((12 * 1048576 - 1)) conv=notrunc status=none
	"$MKCOW" --json --diff image.img a.cow master.img >out.json 2>err.txt ||
		fail "--diff: $(cat err.txt)"
	[ ! -s err.txt ] || fail "stderr not a tty, yet: $(cat err.txt)"
	check_diff image.img a.cow master.img
	[ "$(json_num out.json sectors_written)" = 34 ] || fail "sectors_written: $(cat out.json)"
	[ "$(json_num out.json sectors_compared)" = 24576 ] || fail "sectors_compared: $(cat out.json)"
	# The master's hole (4-10 MiB) is read on the image's side only where
	# the image has data there.
	[ "$(json_num out.json bytes_read)" -le $((2 * 6 * 1048576 + 1048576)) ] ||
		fail "bytes_read: $(cat out.json)"
	grep -q "\"backing\":\"$T/master.img\"" out.json || fail "$(cat out.json)"
	grep -q '"seconds":[0-9]' out.json || fail "$(cat out.json)"
	# The same header as a new COW of uml-utilities' (same size, mtime).
	"$PEER_MKCOW" peer.cow master.img
	cmp -n 4096 peer.cow a.cow || fail "header differs from uml-utilities'"
	# The zeroed sectors are a hole in the COW: it stays sparse.
	[ "$(du -k a.cow | cut -f1)" -le 64 ] || fail "COW not sparse: $(du -k a.cow)"
	# Other formats and sector sizes: the runs follow the sector size.
	"$MKCOW" -V 2 -s 4096 --diff image.img b.cow master.img || fail "-V 2 -s 4096"
	changed_runs image.img master.img 4096 >want4k.runs
	"$COWUTIL" runs b.cow | cmp -s - want4k.runs || fail "4096-byte sectors"
	"$MKCOW" -V 1 --diff image.img c.cow master.img || fail "-V 1"
	check_diff image.img c.cow master.img
}

run_test t_diff_exact_sectors
