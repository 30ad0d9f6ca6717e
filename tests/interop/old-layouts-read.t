#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_old_layouts_read() {
	cd "$T"
	randfile back.img $((256 * 512))
	for lay in v1 v2 v3b; do
		build_old $lay $lay.cow "$T/back.img" 256 512 4096 "0 3 10 11 12 63 64 200 255"
		want=$lay
		[ $lay = v3b ] && want=v3-broken
		[ "$(info_get $lay.cow layout)" = "$want" ] || fail "$lay: layout"
		[ "$(info_get $lay.cow cow_sectors)" = 9 ] || fail "$lay: count"
		"$COWUTIL" merged $lay.cow ours.img || fail "$lay: merged"
		cmp ours.img $lay.cow.expect || fail "$lay: merged view wrong"
		"$PEER_MOO" $lay.cow moo.img || fail "$lay: uml_moo"
		cmp moo.img $lay.cow.expect || fail "$lay: uml_moo disagrees"
		[ "$("$COWUTIL" runs $lay.cow | tr '\n' ' ')" = \
			"0 1 3 1 10 3 63 2 200 1 255 1 " ] || fail "$lay: runs"
	done
	# v1/v2 rounding bug: 9 sectors need 2 bitmap bytes but the header
	# accounts for 1; the bit of sector 8 sits in the slack before the data.
	randfile small.img $((9 * 512))
	build_old v2 r.cow "$T/small.img" 9 512 0 "1 8"
	[ "$(info_get r.cow bitmap_len)" = 1 ] || fail "rounding: bitmap_len"
	[ "$(info_get r.cow data_offset)" = 4608 ] || fail "rounding: data_offset"
	"$COWUTIL" merged r.cow ours.img && cmp ours.img r.cow.expect ||
		fail "rounding: sector 8 not read from the slack bit"
}

run_test t_old_layouts_read
