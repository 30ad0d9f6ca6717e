#!/bin/sh
# Writers: stock and ours, each on a fresh COW (created at boot) of one random
# backing, writing marker blocks.  Readers: stock, ours, uml_moo (both).
. "$(dirname "$0")/functions.sh"

t_compat_matrix() {
	rand_backing back.img 16
	for w in stock ours; do
		guest_marks "$w" 0 1 7 100 1023 2047 4095 >body.$w
		$w "w$w" body.$w "wlog.$w" ubda="$T/$w.cow,$T/back.img" || true
		ended "wlog.$w"
		grep -q 'Creating' "wlog.$w" || fail "$w: COW not created"
		cp back.img "expect.$w"
		host_marks "expect.$w" "$w" 0 1 7 100 1023 2047 4095
	done
	# The two writers made the same header and bitmap.  (Byte for byte the
	# headers differ only past the path's NUL, where stock leaves junk.)
	"$COWUTIL" info ours.cow >info.ours && "$COWUTIL" info stock.cow >info.stock &&
		cmp info.ours info.stock || fail "headers differ: $(diff info.ours info.stock)"
	bo=$(info_get ours.cow bitmap_offset) do_=$(info_get ours.cow data_offset)
	cmp -n $((do_ - bo)) -i "$bo" ours.cow stock.cow || fail "bitmaps differ between stock and ours"
	[ "$(size_of ours.cow)" = "$(size_of stock.cow)" ] || fail "apparent sizes differ"
	echo 'echo "SUM=$(md5sum </dev/ubda | cut -d" " -f1)"' >rbody
	for w in stock ours; do
		want=$(md5 "expect.$w")
		for r in stock ours; do
			$r "r$w$r" rbody "rlog.$w.$r" ubda="$T/$w.cow,$T/back.img" || true
			ended "rlog.$w.$r"
			[ "$(sed -n 's/^SUM=//p' "rlog.$w.$r")" = "$want" ] ||
				fail "written by $w, read by $r: wrong data"
		done
		"$PEER_MOO" "$w.cow" "peer.$w" >/dev/null 2>&1 || fail "uml_moo on $w.cow"
		cmp "peer.$w" "expect.$w" || fail "written by $w, uml-utilities' uml_moo: wrong"
		"$MOO" "$w.cow" "moo.$w" >/dev/null || fail "our uml_moo on $w.cow"
		cmp "moo.$w" "expect.$w" || fail "written by $w, our uml_moo: wrong"
	done
	# Taking turns on one COW: ours writes over stock's, stock over ours.
	guest_marks ours2 1 5 4095 >body.o2
	ours to2 body.o2 l.o2 ubda="$T/stock.cow,$T/back.img" || true
	ended l.o2
	host_marks expect.stock ours2 1 5 4095
	guest_marks stock2 7 9 >body.s2
	stock ts2 body.s2 l.s2 ubda="$T/stock.cow,$T/back.img" || true
	ended l.s2
	host_marks expect.stock stock2 7 9
	"$COWUTIL" merged stock.cow turns.img || fail merged
	cmp turns.img expect.stock || fail "taking turns: wrong data"
}

run_test t_compat_matrix
