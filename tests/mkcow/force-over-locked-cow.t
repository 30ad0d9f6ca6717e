#!/bin/sh
# -f over the COW of a running guest: refused while a process holds the
# kernel's fcntl lock on it (python's lockf is fcntl, flock(1) is not).
. "$(dirname "$0")/functions.sh"

t_force_over_locked_cow() {
	command -v python3 >/dev/null || skip "no python3"
	truncate -s 1M master.img
	"$MKCOW" a.cow master.img || fail "mkcow"
	ino=$(stat -c %i a.cow) sum=$(md5sum <a.cow)
	hold_lock a.cow || fail "could not take the lock"
	holder=$lock_holder
	"$MKCOW" -f a.cow master.img >out.txt 2>err.txt
	st=$?
	kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
	[ $st = 6 ] || fail "exit $st, expected 6: $(cat err.txt)"
	[ "$(wc -l <err.txt)" = 1 ] || fail "not one line: $(cat err.txt)"
	grep -q "a.cow: in use: process $holder holds a lock" err.txt || fail "$(cat err.txt)"
	[ "$(stat -c %i a.cow)" = "$ino" ] && [ "$(md5sum <a.cow)" = "$sum" ] ||
		fail "the locked COW was replaced"
	# Released: -f replaces it.
	"$MKCOW" -f a.cow master.img || fail "-f after the lock"
	[ "$(stat -c %i a.cow)" != "$ino" ] || fail "not replaced"
}

run_test t_force_over_locked_cow
