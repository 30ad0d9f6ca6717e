#!/bin/sh
# FIFOs (and devices) named by the user, a guest or a manifest must never
# block an open: each is refused at once, in one line, leaving nothing.
. "$(dirname "$0")/functions.sh"

t_fifo() {
	mkfifo "$T/fifo" || fail "mkfifo"
	expect_status 4 timeout 10 "$BK" --offline "$T/fifo" "$T/d1"
	err_has "fifo: not a regular file or block device"
	[ ! -e "$T/d1" ] || fail "destination created for a FIFO"
	# A guest whose ubd0 is a FIFO, and whose umid directory has a FIFO as pid.
	mkdir -p "$T/uml/fake"
	mkfifo "$T/uml/fake/pid"
	start_fake "$T/uml/fake/mconsole" "$T/fifo"
	expect_status 4 timeout 10 "$BK" -t 2 -u "$T/uml" fake "$T/d2"
	err_has "ubd0: $T/fifo: not a regular file or block device"
	stop_fake "$T/uml/fake/mconsole"
	[ ! -e "$T/d2" ] || fail "destination created for a FIFO"
	# restore and verify: FIFOs as input, as manifest, as a backup file.
	expect_status 1 timeout 10 "$BK" restore "$T/fifo" "$T/out.cow"
	err_has "not a regular file or block device"
	[ ! -e "$T/out.cow" ] || fail "restore from a FIFO left its output"
	mkdir "$T/v"
	mkfifo "$T/v/manifest.json"
	expect_status 1 timeout 10 "$BK" verify "$T/v"
	err_has "manifest.json: not a regular file or block device"
	small_cow x
	expect_status 0 "$BK" -q --offline "$T/x.cow" "$T/b"
	rm "$T/b/ubd0.cow"
	mkfifo "$T/b/ubd0.cow"
	expect_status 1 timeout 10 "$BK" verify "$T/b"
	err_has "ubd0.cow: not a regular file or block device"
}

run_test t_fifo
