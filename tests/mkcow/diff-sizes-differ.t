#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_diff_sizes_differ() {
	randfile master.img 1M
	head -c 1048064 master.img >short.img
	expect_status 5 "$MKCOW" --diff short.img a.cow master.img
	grep -q 'short.img: 1048064 bytes, but backing file .*master.img has 1048576' err.txt ||
		fail "$(cat err.txt)"
	cp master.img long.img && truncate -s +512 long.img
	expect_status 5 "$MKCOW" --diff long.img a.cow master.img
	only_files . master.img short.img long.img out.txt err.txt
}

run_test t_diff_sizes_differ
