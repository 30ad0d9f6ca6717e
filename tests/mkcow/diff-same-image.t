#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_diff_same_image() {
	randfile master.img 2M
	truncate -s 8M master.img
	cp --sparse=always master.img copy.img
	"$PEER_MKCOW" peer.cow master.img
	for img in master.img copy.img; do
		rm -f a.cow
		"$MKCOW" --json --diff $img a.cow master.img >out.json || fail "--diff $img"
		[ "$(json_num out.json sectors_written)" = 0 ] || fail "$img: $(cat out.json)"
		[ -z "$("$COWUTIL" runs a.cow)" ] || fail "$img: COW not empty"
		# Byte for byte the COW a plain uml_mkcow makes.
		cmp peer.cow a.cow || fail "$img: not a new COW's bytes"
	done
}

run_test t_diff_same_image
