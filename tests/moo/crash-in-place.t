#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_crash_in_place() {
	make_synth 64 50
	crash_loop inplace "$(seq 1 20) 25 30 40 45 60 100 1000 100000"
	echo "in place: killed $kills times, $mt_changed of them changed the backing's mtime"
	[ $kills -ge 20 ] || fail "only $kills kills for 50 COW runs 1.25 MiB apart"
	[ $mt_changed -ge 1 ] || fail "no killed run changed the backing's mtime: resume not exercised"
	# The interrupted merge resumes only on the same backing file: another
	# file (another inode) with a wrong mtime is still refused.
	restore_synth
	UBDK_MOO_CRASH_AFTER=3 "$MOO" -q -d c.cow >out.txt 2>err.txt
	[ $? = 137 ] || fail "N=3 not killed"
	cp master.orig other.img && touch -d '2024-01-01' other.img
	before=$(snap other.img)
	expect_status 4 "$MOO" -q -d -b other.img c.cow
	expect_status 4 "$MOO" -q -b other.img c.cow new.img
	[ "$(snap other.img)" = "$before" ] || fail "another backing was written"
	expect_status 0 "$MOO" -q -d c.cow
	cmp master.img exp.img || fail "resume after the refused runs: wrong"
	rm other.img
	# Killed again and again before finishing.
	restore_synth
	for n in 3 5 1 7 2; do
		UBDK_MOO_CRASH_AFTER=$n "$MOO" -q -d c.cow >out.txt 2>err.txt
		st=$?
		[ $st = 137 ] || fail "chained N=$n: exit $st: $(cat err.txt)"
	done
	expect_status 0 "$MOO" -q --verify -d c.cow
	cmp master.img exp.img || fail "chained kills: result wrong"
	# A killed in-place run, then a new-image run: refused or correct.
	restore_synth
	UBDK_MOO_CRASH_AFTER=4 "$MOO" -q -d c.cow >out.txt 2>err.txt
	"$MOO" -q c.cow new.img >out.txt 2>err.txt
	st=$?
	if [ $st = 0 ]; then
		cmp new.img exp.img || fail "new image after a killed in-place run is wrong"
	else
		[ ! -e new.img ] || fail "failed run left NEWIMAGE"
		echo "new image after a killed in-place run refused ($st): $(cat err.txt)"
	fi
}

run_test t_crash_in_place
