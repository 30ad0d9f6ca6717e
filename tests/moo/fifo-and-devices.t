#!/bin/sh
# FIFOs and devices as the COW or the backing (by -b or by the header):
# one line and the documented status, never a wait for a writer.
. "$(dirname "$0")/functions.sh"

t_fifo_and_devices() {
	make_synth 4 2
	mkfifo fifo
	before=$(snap master.img c.cow)
	expect_status 3 timeout 10 "$MOO" fifo new.img
	grep -q 'fifo: not a regular file or block device' err.txt || fail "$(cat err.txt)"
	expect_status 3 timeout 10 "$MOO" -d fifo
	for b in fifo /dev/null /dev/zero "$T"; do
		expect_status 4 timeout 10 "$MOO" -b "$b" c.cow new.img
		grep -qF "$b" err.txt || fail "-b $b not named: $(cat err.txt)"
		expect_status 4 timeout 10 "$MOO" -d -b "$b" c.cow
	done
	# The header names a FIFO.
	truncate -s 1M other.img
	"$PEER_MKCOW" f.cow "$T/other.img" >/dev/null || fail "uml_mkcow"
	rm other.img && mkfifo other.img
	expect_status 4 timeout 10 "$MOO" f.cow new.img
	grep -q 'not a regular file or block device' err.txt || fail "$(cat err.txt)"
	expect_status 4 timeout 10 "$MOO" -d f.cow
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
	only_files . master.img master.orig c.cow c.orig exp.img fifo f.cow other.img out.txt err.txt
}

run_test t_fifo_and_devices
