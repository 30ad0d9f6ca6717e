#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_unwritable_target() {
	truncate -s 1M master.img
	mkdir ro && chmod 555 ro && chmod 755 "$T"
	expect_status 1 as_nobody "$MKCOW" ro/a.cow "$T/master.img"
	grep -q 'ro/a.cow.*Permission denied' err.txt || fail "$(cat err.txt)"
	only_files ro
	expect_status 1 "$MKCOW" nodir/a.cow master.img
	grep -q 'nodir/a.cow.*No such file' err.txt || fail "$(cat err.txt)"
}

run_test t_unwritable_target
