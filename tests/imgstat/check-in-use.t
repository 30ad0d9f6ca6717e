#!/bin/sh
# A process holding the kernel's fcntl lock, as a running guest does.
. "$(dirname "$0")/functions.sh"

t_check_in_use() {
	need_python
	make_pair
	hold_lock c.cow || fail "could not take the lock"
	pid=$lock_holder
	expect_status 0 "$IS" --check c.cow
	grep -q "warning in-use: process $pid holds a lock" out.txt || fail "$(cat out.txt)"
	expect_status 1 "$IS" --check --strict c.cow
	expect_status 0 "$IS" --json c.cow
	[ "$(jget out.txt locked_by)" = "$pid" ] || fail "locked_by"
	kill "$pid"
	wait "$pid" 2>/dev/null
	expect_status 0 "$IS" --json c.cow
	[ "$(jget out.txt locked_by)" = 0 ] || fail "locked_by after"
}

run_test t_check_in_use
