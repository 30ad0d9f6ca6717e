#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_backing_checks() {
	make_synth 8 6
	# Touched backing: refused in both modes, the message says why and what to do.
	touch -d '2030-01-01' master.img
	before=$(snap master.img c.cow)
	expect_status 4 "$MOO" c.cow new.img
	grep -qi 'mtime' err.txt || fail "message does not mention mtime: $(cat err.txt)"
	grep -q -e '-b' -e '--backing' -e 'rebase' err.txt ||
		fail "message does not show the way forward: $(cat err.txt)"
	expect_status 4 "$MOO" -d c.cow
	grep -qi 'mtime' err.txt || fail "-d: $(cat err.txt)"
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
	only_files . master.img master.orig c.cow c.orig exp.img out.txt err.txt
	# Missing backing, named by the header or by -b.
	restore_synth
	mv master.img moved.img
	expect_status 4 "$MOO" c.cow new.img
	grep -q 'master.img' err.txt || fail "missing backing not named: $(cat err.txt)"
	expect_status 4 "$MOO" -b nothere.img c.cow new.img
	err_names nothere.img
	expect_status 4 "$MOO" -d -b nothere.img c.cow
	# The moved backing works with -b (mtime kept by mv).
	expect_status 0 "$MOO" -b moved.img c.cow new.img
	cmp new.img exp.img || fail "-b moved backing: wrong"
	rm new.img && mv moved.img master.img
	# Wrong size: -b of another size, and a backing grown in place.
	truncate -s 4M small.img && touch -r master.img small.img
	before=$(snap master.img c.cow small.img)
	expect_status 4 "$MOO" -b small.img c.cow new.img
	grep -qi -e 'size' -e 'bytes' err.txt || fail "message does not mention the size: $(cat err.txt)"
	expect_status 4 "$MOO" -d -b small.img c.cow
	grep -qi -e 'size' -e 'bytes' err.txt || fail "-d: $(cat err.txt)"
	[ "$(snap master.img c.cow small.img)" = "$before" ] || fail "an input changed"
	truncate -s 9M master.img && touch -r master.orig master.img
	before=$(snap master.img c.cow)
	expect_status 4 "$MOO" c.cow new.img
	expect_status 4 "$MOO" -d c.cow
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
	only_files . master.img master.orig c.cow c.orig exp.img small.img out.txt err.txt
}

run_test t_backing_checks
