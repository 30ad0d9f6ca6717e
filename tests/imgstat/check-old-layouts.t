#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_check_old_layouts() {
	randfile back.img $((2048 * 512))
	touch -d '2019-01-01' back.img
	for lay in v1 v2 v3b; do
		build_old $lay $lay.cow "$T/back.img" 2048 512 4096 "0 3 10 11 12 63 64 1000 2047"
		expect_status 0 "$IS" --json $lay.cow
		json_ok out.txt 1
		want=$lay
		[ $lay = v3b ] && want=v3-broken
		grep -q "\"layout\":\"$want\"" out.txt || fail "$lay: layout: $(head -c 300 out.txt)"
		expect_status 0 "$IS" --map $lay.cow
		awk 'NR > 2 && NF == 4 { print $3, $4 }' out.txt >got.txt
		printf '0 1\n3 1\n10 3\n63 2\n1000 1\n2047 1\n' >want.txt
		same_lines got.txt want.txt "$lay: map"
	done
	expect_status 0 "$IS" v3b.cow
	grep -q 'broken version 3' out.txt || fail "broken layout not named"
	expect_status 0 "$IS" --check v3b.cow
	grep -q 'warning broken-v3-layout' out.txt || fail "$(cat out.txt)"
	# The v1/v2 rounding bug: one sector without a bit.
	randfile b2.img 950784
	build_old v1 r.cow "$T/b2.img" 1857 512 4096 "0 1855"
	expect_status 0 "$IS" --check r.cow
	grep -q 'warning uncovered-sectors: 1 sector at the end (from 1856)' out.txt ||
		fail "rounding bug: $(cat out.txt)"
}

run_test t_check_old_layouts
