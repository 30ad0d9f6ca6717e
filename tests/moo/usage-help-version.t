#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_usage_help_version() {
	make_synth 4 2
	before=$(snap master.img c.cow)
	for args in "" "c.cow" "c.cow a.img b.img" "-d" "-d c.cow new.img" "-b" \
		"--bogus c.cow new.img" "-x c.cow new.img" "c.cow new.img -b"; do
		# shellcheck disable=SC2086
		expect_status 2 "$MOO" $args
	done
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
	only_files . master.img master.orig c.cow c.orig exp.img out.txt err.txt
	expect_status 0 "$MOO" --help
	grep -q -- '--in-place' out.txt && grep -q -- '--backing' out.txt || fail "--help: $(cat out.txt)"
	expect_status 0 "$MOO" -h
	grep -q -- '--in-place' out.txt || fail "-h"
	expect_status 0 "$MOO" --version
	grep -q 'uml_moo.*[0-9]' out.txt || fail "--version: $(cat out.txt)"
}

run_test t_usage_help_version
