#!/bin/sh
# Killed with SIGKILL in the middle of the pause: the watchdog resumes the
# guest; SIGTERM and SIGINT: resumed, exit 7.  Nothing looks like a backup.
. "$(dirname "$0")/functions.sh"

t_live_signals() {
	live_guest
	live_stall "$T/k9"
	n1=$(last_rec g1)
	sleep 1
	[ "$(last_rec g1)" = "$n1" ] || fail "the guest wrote while stopped"
	kill -9 $bk
	wait $bk 2>/dev/null
	rm -f "$T/stall"
	assert_running g1 "after SIGKILL of the backup"
	no_backup "$T/k9"
	grep -q "watchdog.*resumed it" err.txt || fail "watchdog did not say it resumed: $(cat err.txt)"
	for sig in TERM INT; do
		live_stall "$T/k-$sig"
		kill -$sig $bk
		wait $bk
		st=$?
		rm -f "$T/stall"
		[ $st = 7 ] || fail "SIG$sig: exit $st: $(cat err.txt)"
		grep -q "interrupted" err.txt || fail "SIG$sig: $(cat err.txt)"
		assert_running g1 "after SIG$sig"
		no_backup "$T/k-$sig"
	done
	live_guest_end
}

run_test t_live_signals
