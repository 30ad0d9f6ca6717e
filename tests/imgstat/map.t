#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_map() {
	make_pair
	expect_status 0 "$IS" --map c.cow
	awk 'NR > 2 && NF == 4 { print $3, $4 }' out.txt >got.txt
	"$COWUTIL" runs c.cow >want.txt
	same_lines got.txt want.txt "map differs from the bitmap's runs"
	grep -q '5 extents, 2560 bytes' out.txt || fail "total: $(tail -n 1 out.txt)"
	# Merged into 1 MiB-aligned extents, and by gap.
	expect_status 0 "$IS" --map --align 1M c.cow
	awk '$1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ { print $1, $2 }' out.txt >got.txt
	printf '0 2097152\n5242880 1048576\n7340032 1048576\n' >want.txt
	same_lines got.txt want.txt "--align 1M"
	expect_status 0 "$IS" --map --gap 2M --json c.cow
	json_ok out.txt 1
	grep -q '"extents":\[\[0,1049088\],\[5242880,512\],\[8388096,512\]\]' out.txt ||
		fail "--gap: $(cat out.txt)"
	grep -q '"runs":5,"count":3' out.txt || fail "counts: $(cat out.txt)"
	expect_status 2 "$IS" --map back.img
	expect_status 2 "$IS" --align 4096 c.cow
}

run_test t_map
