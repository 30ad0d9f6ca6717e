#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_crash_new_image() {
	make_synth 64 50
	crash_loop new "$(seq 1 20) 30 50 64 100 1000 100000"
	echo "new image: killed $kills times"
	[ $kills -ge 1 ] || fail "never killed"
	# A killed -f run leaves the old NEWIMAGE as it was.
	restore_synth
	echo "the old image" >new.img
	for n in 1 2 5; do
		UBDK_MOO_CRASH_AFTER=$n "$MOO" -q -f c.cow new.img >out.txt 2>err.txt
		st=$?
		[ $st = 137 ] || [ $n -gt $kills ] || fail "-f N=$n: exit $st: $(cat err.txt)"
		[ $st = 0 ] || [ "$(cat new.img)" = "the old image" ] ||
			fail "-f N=$n: killed run changed the existing NEWIMAGE"
	done
	expect_status 0 "$MOO" -q -f c.cow new.img
	cmp new.img exp.img || fail "-f after kills: wrong"
}

run_test t_crash_new_image
