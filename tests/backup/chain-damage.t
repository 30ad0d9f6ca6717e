#!/bin/sh
# A damaged or missing link is named by verify, and a chain with a hole
# takes no new point; previous points are left as they were.
. "$(dirname "$0")/functions.sh"

t_chain_damage() {
	offline_chain "$T/chain" 4 -c
	set -- $(points "$T/chain")
	expect_status 0 "$BK" verify "$T/chain/$4"
	cp -r "$T/chain" "$T/bad"
	printf 'X' | dd of="$T/bad/$3/ubd0.chunks" bs=1 seek=70 conv=notrunc status=none
	# One line per damaged point and file: the point itself, and its child's link.
	"$BK" verify -q "$T/bad" >out.txt 2>err.txt && fail "verify passed a damaged chain"
	grep -q "$3/ubd0.ubdx.lz4: ubd0.chunks: not a valid chunk table at byte .*: digest mismatch" err.txt ||
		fail "damage not named: $(cat err.txt)"
	grep -q "$4/ubd0.ubdx.lz4: parent $3: ubd0.chunks" err.txt || fail "the child's link not named: $(cat err.txt)"
	[ "$(wc -l <err.txt)" = 2 ] || fail "verify: $(cat err.txt)"
	rm -r "$T/bad"
	cp -r "$T/chain" "$T/bad"
	rm -r "${T:?}/bad/$2"
	expect_status 1 "$BK" verify -q "$T/bad/$4"
	err_has "missing or damaged link: point $2 is missing"
	sums=$(cd "$T/bad" && find . -type f | sort | xargs md5sum)
	expect_status 8 "$BK" -i --offline "$T/x.cow" "$T/bad"
	err_has "missing or damaged link"
	[ "$sums" = "$(cd "$T/bad" && find . -type f | sort | xargs md5sum)" ] || fail "a refused run changed the chain"
	expect_status 1 "$BK" restore "$T/bad/$4/ubd0.ubdx.lz4" "$T/r.cow"
	err_has "point $2 is missing"
	[ ! -e "$T/r.cow" ] || fail "a failed restore left its output"
}

run_test t_chain_damage
