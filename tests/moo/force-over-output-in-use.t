#!/bin/sh
# -f over a NEWIMAGE in use: a COW nbdkit-ubd-plugin serves, an image a
# guest runs on (it holds the kernel's write lock): refused, exit 6, the
# file untouched; replaced once released.
. "$(dirname "$0")/functions.sh"

t_force_over_output_in_use() {
	make_synth 8 6
	"$B/bin/uml_mkcow" g.cow master.img || fail "mkcow"
	ino=$(stat -c %i g.cow) sum=$(md5sum <g.cow)
	nbd_serve g.cow
	expect_status 6 "$MOO" -f c.cow g.cow
	grep -q "^uml_moo: g.cow: in use: process $nbd_pid holds a lock on it.*not replaced" err.txt ||
		fail "$(cat err.txt)"
	nbd_stop
	[ "$(stat -c %i g.cow)" = "$ino" ] && [ "$(md5sum <g.cow)" = "$sum" ] ||
		fail "the served COW was replaced"
	if command -v python3 >/dev/null; then
		echo "booted" >run.img
		hold_lock run.img || fail "could not take the lock"
		holder=$lock_holder
		"$MOO" -f c.cow run.img >out.txt 2>err.txt
		st=$?
		kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
		[ $st = 6 ] || fail "run.img locked: exit $st: $(cat err.txt)"
		grep -q "run.img: in use: process $holder holds a lock" err.txt || fail "$(cat err.txt)"
		[ "$(cat run.img)" = booted ] || fail "the locked image was replaced"
	fi
	only_files . master.img master.orig c.cow c.orig exp.img g.cow out.txt err.txt \
		$([ -e run.img ] && echo run.img .locked)
	expect_status 0 "$MOO" -f c.cow g.cow
	cmp g.cow exp.img || fail "-f once released: not the merge"
}

run_test t_force_over_output_in_use
