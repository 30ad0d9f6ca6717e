#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_bad_input() {
	need nbdkit
	make_pair 8
	randfile notcow.img 65536
	cp --sparse=always c.cow short.cow
	truncate -s 8200 short.cow                       # ends inside the bitmap
	cp --sparse=always c.cow cut.cow
	truncate -s $(($(info_get c.cow data_offset) + MiB)) cut.cow   # data cut short
	before=$(snap master.img c.cow notcow.img short.cow cut.cow)
	refused "not a COW file" notcow.img
	refused "short.cow" short.cow
	refused "cut short" cut.cow
	refused "no-such.cow" no-such.cow
	refused "no COW file given"
	refused "unknown parameter 'bogus'" c.cow bogus=1
	refused "boolean (maybe)" c.cow readonly=maybe
	refused "file given twice" c.cow file=c.cow
	[ "$(snap master.img c.cow notcow.img short.cow cut.cow)" = "$before" ] ||
		fail "an input changed"
}

run_test t_bad_input
