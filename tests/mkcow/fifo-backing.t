#!/bin/sh
# FIFOs as the backing or the new backing: refused, never waited on.
. "$(dirname "$0")/functions.sh"

t_fifo_backing() {
	mkfifo fifo
	expect_status 3 timeout 10 "$MKCOW" a.cow fifo
	grep -q 'not a regular file or block device' err.txt || fail "$(cat err.txt)"
	truncate -s 1M master.img && "$MKCOW" a.cow master.img
	expect_status 3 timeout 10 "$MKCOW" --rebase fifo a.cow
	grep -q 'not a regular file or block device' err.txt || fail "$(cat err.txt)"
	# -f over a FIFO replaces it without opening it for long.
	expect_status 0 timeout 10 "$MKCOW" -f fifo master.img
	[ -f fifo ] || fail "FIFO not replaced"
}

run_test t_fifo_backing
