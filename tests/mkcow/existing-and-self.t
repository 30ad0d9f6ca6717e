#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_existing_and_self() {
	truncate -s 1M master.img
	echo "keep me" >a.cow
	expect_status 4 "$MKCOW" a.cow master.img
	grep -q 'a.cow: already exists (use -f' err.txt || fail "$(cat err.txt)"
	[ "$(cat a.cow)" = "keep me" ] || fail "existing file changed"
	# One existing name in a batch: nothing is created.
	expect_status 4 "$MKCOW" b.cow a.cow c.cow master.img
	only_files . master.img a.cow out.txt err.txt
	expect_status 4 "$MKCOW" -f x.cow x.cow master.img
	grep -q 'named twice' err.txt || fail "$(cat err.txt)"
	expect_status 4 "$MKCOW" -f master.img master.img
	grep -q 'is the backing file' err.txt || fail "$(cat err.txt)"
	[ "$(size_of master.img)" = 1048576 ] || fail "backing overwritten"
	only_files . master.img a.cow out.txt err.txt
}

run_test t_existing_and_self
