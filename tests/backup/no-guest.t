#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_no_guest() {
	expect_status 3 "$BK" -u "$T/uml" nosuchumid "$T/d1"
	err_has "no such guest"
	[ ! -e "$T/d1" ] || fail "destination created for a missing guest"
	# A stale socket: the guest was killed and left it behind.
	mkdir -p "$T/uml/stale"
	python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])" \
		"$T/uml/stale/mconsole" || fail "python3"
	expect_status 3 "$BK" -u "$T/uml" stale "$T/d1"
	err_has "not running"
	# A socket nobody answers on.
	mkdir -p "$T/uml/mute"
	python3 -c "import socket,sys,time; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); open(sys.argv[2],'w').close(); time.sleep(30)" \
		"$T/uml/mute/mconsole" "$T/mute.ready" &
	mute=$!
	while [ ! -e "$T/mute.ready" ]; do sleep 0.1; done
	t0=$(date +%s%N)
	expect_status 3 "$BK" -t 1 "$T/uml/mute/mconsole" "$T/d1"
	t1=$(date +%s%N)
	kill $mute
	err_has "not answering"
	[ $(( (t1 - t0) / 1000000 )) -lt 5000 ] || fail "took $(( (t1 - t0) / 1000000 )) ms for a 1 s timeout"
	[ ! -e "$T/d1" ] || fail "destination created for a mute guest"
}

run_test t_no_guest
