#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_bad_cow() {
	make_synth 8 6
	before=$(snap master.img c.cow)
	expect_status 3 "$MOO" nothere.cow new.img
	err_names nothere.cow
	expect_status 3 "$MOO" -d nothere.cow
	err_names nothere.cow
	randfile junk.cow 100000
	expect_status 3 "$MOO" junk.cow new.img
	err_names junk.cow
	expect_status 3 "$MOO" -d -b master.img junk.cow
	: >empty.cow
	expect_status 3 "$MOO" empty.cow new.img
	err_names empty.cow
	# Truncated inside the header and inside the bitmap (8192 + 2048 bytes).
	head -c 100 c.cow >hdr.cow
	expect_status 3 "$MOO" hdr.cow new.img
	err_names hdr.cow
	head -c 9000 c.cow >bm.cow
	expect_status 3 "$MOO" bm.cow new.img
	err_names bm.cow
	expect_status 3 "$MOO" -d bm.cow
	# Corrupt headers: alignment 0, sector size 0, version 9, cow_format 1.
	cp c.cow al.cow && put_int al.cow 24 0 4 be
	cp c.cow ss.cow && put_int ss.cow 20 0 4 be
	cp c.cow ver.cow && put_int ver.cow 4 9 4 be
	cp c.cow fmt.cow && put_int fmt.cow 28 1 4 be
	for f in al ss ver fmt; do
		expect_status 3 "$MOO" $f.cow new.img
		err_names $f.cow
		expect_status 3 "$MOO" -d $f.cow
	done
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
	only_files . master.img master.orig c.cow c.orig exp.img junk.cow empty.cow hdr.cow \
		bm.cow al.cow ss.cow ver.cow fmt.cow out.txt err.txt
}

run_test t_bad_cow
