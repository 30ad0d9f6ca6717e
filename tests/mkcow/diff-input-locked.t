#!/bin/sh
# Inputs locked by a writer (a guest running on the backing or the image
# holds a write lock): refused, exit 6.  A reader's lock (a guest or a
# server on a COW over the backing) does not stop the diff.
. "$(dirname "$0")/functions.sh"

t_diff_input_locked() {
	command -v python3 >/dev/null || skip "no python3"
	randfile master.img 1M
	cp master.img image.img
	printf 'x' | dd of=image.img bs=1 seek=10 conv=notrunc status=none
	for f in master.img image.img; do
		hold_lock $f || fail "could not take the lock"
		holder=$lock_holder
		"$MKCOW" --diff image.img a.cow master.img >out.txt 2>err.txt
		st=$?
		kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
		[ $st = 6 ] || fail "$f locked: exit $st: $(cat err.txt)"
		[ "$(wc -l <err.txt)" = 1 ] || fail "not one line: $(cat err.txt)"
		grep -q "$f: in use: process $holder holds a lock on it.*not compared" err.txt ||
			fail "$(cat err.txt)"
		[ ! -e a.cow ] || fail "$f locked: a COW was made"
	done
	"$MKCOW" g.cow master.img || fail "mkcow"
	nbd_serve g.cow
	"$MKCOW" --diff image.img a.cow master.img 2>err.txt || fail "under a reader: $(cat err.txt)"
	nbd_stop
	check_diff image.img a.cow master.img
}

run_test t_diff_input_locked
