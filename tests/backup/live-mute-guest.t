#!/bin/sh
# The guest stops answering in the pause (SIGSTOP): `go` times out, the
# watchdog keeps trying and resumes it once it answers again.
. "$(dirname "$0")/functions.sh"

t_live_mute_guest() {
	live_guest
	live_stall "$T/mute" -t 1
	kill -STOP "$(uml_pid g1)"
	rm -f "$T/stall"
	wait $bk
	st=$?
	[ $st = 3 ] || { kill -CONT "$(uml_pid g1)"; fail "mute guest: exit $st: $(cat err.txt)"; }
	grep -q "not answering 'go'" err.txt || { kill -CONT "$(uml_pid g1)"; fail "mute guest: $(cat err.txt)"; }
	sleep 1
	kill -CONT "$(uml_pid g1)"
	assert_running g1 "after it answered again (watchdog)"
	no_backup "$T/mute"
	live_guest_end
}

run_test t_live_mute_guest
