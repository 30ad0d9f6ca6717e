#!/bin/sh
# A guest that answers every request with empty `more` parts, each well
# within the timeout, never completing: the timeout is per command.
. "$(dirname "$0")/functions.sh"

t_trickle() {
	small_cow x
	mkdir -p "$T/uml/fake"
	S=$T/uml/fake/mconsole
	FAKE_TRICKLE='*' start_fake "$S" "$T/x.cow"
	t0=$(date +%s%N)
	expect_status 3 timeout 20 "$BK" -t 0.5 "$S" "$T/d1"
	t1=$(date +%s%N)
	err_has "no reply to 'version' in 0.5 s"
	[ $(( (t1 - t0) / 1000000 )) -lt 3000 ] || fail "took $(( (t1 - t0) / 1000000 )) ms for a 0.5 s timeout"
	[ ! -e "$T/d1" ] || fail "destination created for a mute guest"
	stop_fake "$S"

	# `stop` and `go` trickle: one message, saying the guest may be stopped.
	FAKE_TRICKLE='stop go' start_fake "$S" "$T/x.cow"
	expect_status 3 timeout 20 "$BK" --no-sync -t 0.3 "$S" "$T/d2"
	err_has "no reply to 'stop' in 0.3 s"
	err_has "may still be stopped"
	! grep -q "is running" err.txt || fail "says the guest is running: $(cat err.txt)"
	no_backup "$T/d2"
	stop_fake "$S"

	# Only `stop` trickles: `go` is answered, so the guest runs.
	FAKE_TRICKLE='stop' start_fake "$S" "$T/x.cow"
	expect_status 3 timeout 20 "$BK" --no-sync -t 0.3 "$S" "$T/d3"
	err_has "no reply to 'stop' in 0.3 s.*the guest is running"
	no_backup "$T/d3"
	stop_fake "$S"

	# SIGTERM while waiting for `stop`, then `go` unanswered: one line that
	# does not claim the guest runs.
	FAKE_TRICKLE='stop go' start_fake "$S" "$T/x.cow"
	timeout 20 "$BK" --no-sync -t 0.6 "$S" "$T/d4" >out.txt 2>err.txt &
	bk=$!
	i=0
	while ! grep -qx stop "$S.log" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	kill -TERM $bk
	wait $bk
	st=$?
	stop_fake "$S"
	[ $st = 7 ] || fail "SIGTERM: exit $st: $(cat err.txt)"
	[ "$(wc -l <err.txt)" = 1 ] || fail "SIGTERM: not one line: $(cat err.txt)"
	err_has "interrupted by signal 15; the guest may still be stopped"
	no_backup "$T/d4"
}

run_test t_trickle
