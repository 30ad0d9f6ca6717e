#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_old_layouts_equal_peer() {
	randfile back.img $((2048 * 512))
	touch -d '2019-01-01' back.img
	for lay in v1 v2 v3b; do
		build_old $lay $lay.cow "$T/back.img" 2048 512 4096 \
			"0 3 10 11 12 63 64 200 255 256 257 1000 1023 1024 2040 2047"
		expect_status 0 "$MOO" $lay.cow $lay.new
		cmp $lay.new $lay.cow.expect || fail "$lay: new image wrong"
		"$PEER_MOO" $lay.cow $lay.peer || fail "$lay: peer uml_moo"
		cmp $lay.new $lay.peer || fail "$lay: differs from uml-utilities' uml_moo"
		cp -p back.img $lay.d
		expect_status 0 "$MOO" -d -b $lay.d $lay.cow
		cmp $lay.d $lay.cow.expect || fail "$lay: in-place result wrong"
		cmp -s back.img $lay.d && fail "$lay: nothing merged"
	done
	# v1/v2 rounding bug: the bit of sector 8 sits in the slack byte.
	randfile small.img $((9 * 512))
	build_old v2 r.cow "$T/small.img" 9 512 0 "1 8"
	expect_status 0 "$MOO" r.cow r.new
	cmp r.new r.cow.expect || fail "rounding: sector 8 not taken from the slack bit"
	# Sector size 1024 (v2) and alignment 512 (v3 broken).
	randfile big.img $((600 * 1024))
	build_old v2 s.cow "$T/big.img" 600 1024 0 "0 1 2 9 300 599"
	expect_status 0 "$MOO" s.cow s.new
	cmp s.new s.cow.expect || fail "sector size 1024: wrong"
	build_old v3b a.cow "$T/big.img" 1200 512 512 "0 7 8 9 100 1199"
	expect_status 0 "$MOO" a.cow a.new
	cmp a.new a.cow.expect || fail "alignment 512: wrong"
	# v3 by uml_mkcow, COW data written through the library, also a size
	# that is not a multiple of 512 (uml-utilities cannot merge that one).
	for size in $((8 * MiB)) 1000001; do
		rm -f m.img m.cow
		randfile m.img $size
		"$PEER_MKCOW" m.cow m.img >/dev/null || fail "uml_mkcow"
		# Sector-aligned writes; the last (maybe partial) sector too.
		last=$(( (size - 1) / 512 * 512 ))
		randfile chunk 5120 && head -c $((size - last)) chunk >chunk.last
		"$COWUTIL" write m.cow 3072 chunk && "$COWUTIL" write m.cow $last chunk.last ||
			fail "cowutil write"
		"$COWUTIL" merged m.cow m.exp || fail merged
		expect_status 0 "$MOO" m.cow m.new
		cmp m.new m.exp || fail "v3 size $size: wrong"
		if [ $((size % 512)) = 0 ]; then
			"$PEER_MOO" m.cow m.peer && cmp m.new m.peer || fail "v3: differs from uml-utilities"
		fi
		cp -p m.img m.d
		expect_status 0 "$MOO" -d -b m.d m.cow
		cmp m.d m.exp || fail "v3 size $size: in place wrong"
		rm -f m.new m.peer m.d m.exp
	done
}

run_test t_old_layouts_equal_peer
