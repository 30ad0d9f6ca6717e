#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_existing_output() {
	make_synth 8 6
	echo "keep me" >new.img
	expect_status 5 "$MOO" c.cow new.img
	err_names new.img
	[ "$(cat new.img)" = "keep me" ] || fail "existing NEWIMAGE changed"
	only_files . master.img master.orig c.cow c.orig exp.img new.img out.txt err.txt
	expect_status 0 "$MOO" -f c.cow new.img
	cmp new.img exp.img || fail "-f: not replaced by the merge"
	# A symlink as NEWIMAGE is refused too, and -f replaces the link, not its target.
	echo "target" >target.img && ln -s target.img link.img
	expect_status 5 "$MOO" c.cow link.img
	expect_status 0 "$MOO" -f c.cow link.img
	[ "$(cat target.img)" = target ] || fail "-f wrote through a symlink"
	cmp link.img exp.img || fail "-f over a symlink: wrong"
	# Read-only NEWIMAGE in a writable directory: -f replaces it (rename).
	rm -f new.img && echo old >new.img && chmod 444 new.img
	expect_status 0 "$MOO" -f c.cow new.img
	cmp new.img exp.img || fail "-f over a read-only file"
}

run_test t_existing_output
