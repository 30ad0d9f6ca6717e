#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_diff_bad_image() {
	randfile master.img 1M
	mkfifo fifo
	expect_status 6 timeout 10 "$MKCOW" --diff fifo a.cow master.img
	grep -q 'fifo: cannot open for reading: not a regular file or block device' err.txt ||
		fail "$(cat err.txt)"
	expect_status 6 "$MKCOW" --diff missing.img a.cow master.img
	grep -q 'missing.img.*No such file' err.txt || fail "$(cat err.txt)"
	mkdir d
	expect_status 6 "$MKCOW" --diff d a.cow master.img
	expect_status 3 "$MKCOW" --diff master.img a.cow missing.img
	only_files . master.img fifo d out.txt err.txt
}

run_test t_diff_bad_image
