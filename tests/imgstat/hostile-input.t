#!/bin/sh
# Hostile input: FIFOs anywhere a path comes from (the file, -b, the
# header) never hang; COWs cut in their bitmap or data area and devices say
# why on one line; --gap near 2^64 does not wrap; names that are not UTF-8
# or hold newlines keep JSON valid and errors on one line.
. "$(dirname "$0")/functions.sh"

t_hostile_input() {
	make_pair
	mkfifo fifo
	for m in --stat --map --check --files --json; do
		expect_status 2 timeout 10 "$IS" $m fifo
		grep -q 'fifo: not a regular file or block device' err.txt || fail "$m: $(cat err.txt)"
		expect_status 2 timeout 10 "$IS" $m /dev/null
		grep -q 'not a regular file or block device' err.txt || fail "$m: $(cat err.txt)"
	done
	# The backing a FIFO, by -b and by the header.
	truncate -s 1M f.img
	"$MKCOW" f.cow "$T/f.img" >/dev/null || fail mkcow
	rm f.img && mkfifo f.img
	for m in --stat --map --files --json; do
		expect_status 2 timeout 10 "$IS" $m -b fifo c.cow
		grep -q 'backing file fifo: not a regular file or block device' err.txt || fail "$m: $(cat err.txt)"
		expect_status 2 timeout 10 "$IS" $m f.cow
		grep -q 'f.img: not a regular file or block device' err.txt || fail "$m: $(cat err.txt)"
	done
	expect_status 1 timeout 10 "$IS" --check f.cow
	grep -q 'error backing-not-regular' out.txt || fail "$(cat out.txt)"
	# Cut inside the data area, and inside the bitmap.
	cp c.cow cut.cow
	truncate -s $(( $(info_get cut.cow data_offset) + 512 )) cut.cow
	expect_status 2 "$IS" cut.cow
	grep -q 'past the end of the file' err.txt || fail "$(cat err.txt)"
	expect_status 1 "$IS" --check cut.cow
	grep -q 'error short-data' out.txt || fail "$(cat out.txt)"
	head -c $(( $(info_get c.cow bitmap_offset) + 1 )) c.cow >bm.cow
	expect_status 2 "$IS" bm.cow
	grep -q 'ends inside its bitmap' err.txt || fail "$(cat err.txt)"
	# --gap of 2^64 - 1 merges every run into one extent.
	expect_status 0 "$IS" --map --json --gap 18446744073709551615 c.cow
	[ "$(jget out.txt map.count)" = 1 ] || fail "--gap 2^64-1: $(cat out.txt)"
	# Names: not UTF-8, and with a newline.
	bad=$(printf 'x\377\nz')
	cp c.cow "$bad.cow"
	expect_status 0 "$IS" --json "$bad.cow"
	json_ok out.txt 1
	python3 -c 'import json,sys; d=json.loads(open("out.txt").readline()); assert d["file"] == "x\u00ff\nz.cow", d' ||
		fail "name not as Latin-1: $(head -c 300 out.txt)"
	expect_status 2 "$IS" "$bad.nothere"
	grep -qF 'x\xff\nz.nothere: cannot open' err.txt || fail "$(cat err.txt)"
	# A long name: the reason survives.
	long=$(printf '%0200d' 0)
	long="$long/$long/$long"
	mkdir -p "$long" && head -c 100 c.cow >"$long/s.cow"
	expect_status 2 "$IS" "$long/s.cow"
	grep -q 'shorter\|header' err.txt || fail "reason lost: $(cat err.txt)"
}

run_test t_hostile_input
