#!/bin/sh
# Holes on one side and zeros on the other are equal: nothing is written;
# holes on both sides are not even read.
. "$(dirname "$0")/functions.sh"

t_diff_holes_and_zeros() {
	truncate -s 64M sparse.img
	dd if=/dev/zero of=zeros.img bs=1M count=64 status=none
	for pair in "sparse.img zeros.img" "zeros.img sparse.img"; do
		set -- $pair
		rm -f a.cow
		"$MKCOW" --json --diff "$1" a.cow "$2" >out.json || fail "--diff $pair"
		[ "$(json_num out.json sectors_written)" = 0 ] || fail "$pair: $(cat out.json)"
		[ -z "$("$COWUTIL" runs a.cow)" ] || fail "$pair: COW not empty"
	done
	# Zeros over data are written (as a hole in the COW's data area).
	randfile data.img 1M
	truncate -s 64M data.img
	"$MKCOW" --json --diff sparse.img b.cow data.img >out.json || fail "--diff zeros over data"
	[ "$(json_num out.json sectors_written)" = 2048 ] || fail "$(cat out.json)"
	"$COWUTIL" merged b.cow m.img && cmp m.img sparse.img || fail "zeros over data: merged"
	# Two sparse files of 1 TiB with 1 MiB of data each: seconds, and only
	# the data read.
	truncate -s 1T big1.img big2.img
	dd if=data.img of=big1.img bs=1M count=1 seek=500000 conv=notrunc status=none
	dd if=data.img of=big2.img bs=1M count=1 seek=500000 conv=notrunc status=none
	timeout 60 "$MKCOW" --json --diff big1.img c.cow big2.img >out.json || fail "1 TiB pair"
	[ "$(json_num out.json bytes_read)" = $((2 * 1048576)) ] || fail "1 TiB pair: $(cat out.json)"
	[ "$(json_num out.json sectors_written)" = 0 ] || fail "1 TiB pair: $(cat out.json)"
}

run_test t_diff_holes_and_zeros
