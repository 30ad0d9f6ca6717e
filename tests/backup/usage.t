#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_usage() {
	expect_status 0 "$BK" --help
	grep -q 'Exit status' out.txt || fail "--help has no exit codes"
	expect_status 0 "$BK" --version
	grep -q '^uml_backup (ubdkit) ' out.txt || fail "--version: $(cat out.txt)"
	expect_status 2 "$BK"
	expect_status 2 "$BK" onlyone
	expect_status 2 "$BK" --bogus g d
	expect_status 2 "$BK" -m magic g d
	expect_status 2 "$BK" -c zip g d
	expect_status 2 "$BK" -t 0 g d
	expect_status 2 "$BK" -d ubdz g d
	err_has "not a ubd device"
	expect_status 2 "$BK" restore
	expect_status 2 "$BK" verify a b
	expect_status 1 "$BK" verify "$T/nothing"
	err_has "no manifest"
}

run_test t_usage
