#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_crash_guest_cow() {
	make_master
	guest_writes
	"$COWUTIL" merged guest.cow exp.img || fail merged
	cp -p master.img master.orig && cp -p --sparse=always guest.cow guest.orig
	kills=0
	for n in $(seq 1 12) 40 1000; do
		cp -p master.orig master.img && cp -p --sparse=always guest.orig guest.cow
		rm -f new.img
		UBDK_MOO_CRASH_AFTER=$n "$MOO" -q guest.cow new.img >out.txt 2>err.txt
		st=$?
		[ $st = 137 ] || [ $st = 0 ] || fail "new N=$n: exit $st: $(cat err.txt)"
		[ $st = 0 ] || [ ! -e new.img ] || fail "new N=$n: killed run left NEWIMAGE"
		rm -f new.img
		expect_status 0 "$MOO" -q guest.cow new.img
		cmp new.img exp.img || fail "new N=$n: re-run's image wrong"
		UBDK_MOO_CRASH_AFTER=$n "$MOO" -q -d guest.cow >out.txt 2>err.txt
		st=$?
		[ $st = 137 ] && kills=$((kills + 1))
		[ $st = 137 ] || [ $st = 0 ] || fail "N=$n: exit $st: $(cat err.txt)"
		[ $st = 0 ] || expect_status 0 "$MOO" -q -d guest.cow
		cmp master.img exp.img || fail "N=$n: result wrong (exit $st, then re-run)"
	done
	echo "guest COW in place: killed $kills times"
	[ $kills -ge 5 ] || fail "only $kills kills"
	e2fsck -fn master.img >fsck.log 2>&1 || { cat fsck.log >&2; fail "fsck"; }
}

run_test t_crash_guest_cow
