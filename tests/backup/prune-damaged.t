#!/bin/sh
# prune refuses a chain that verify rejects (exit 8, naming the point and
# its problem), removing nothing: a damaged table of a point it would
# remove, or of a kept point that is not the one it rewrites.
. "$(dirname "$0")/functions.sh"

t_prune_damaged() {
	offline_chain "$T/chain" 4
	set -- $(points "$T/chain")
	for p in "$1" "$4"; do
		rm -rf "$T/bad"
		cp -a "$T/chain" "$T/bad"
		printf 'X' | dd of="$T/bad/$p/ubd0.chunks" bs=1 seek=70 conv=notrunc status=none
		"$BK" verify -q "$T/bad" >out.txt 2>err.txt && fail "verify passed a damaged chain"
		sums=$(tree_sums "$T/bad")
		expect_status 8 "$BK" prune --keep 2 "$T/bad"
		err_has "$p: ubd0.ubdx: ubd0.chunks: not a valid chunk table"
		err_has "nothing removed"
		[ "$sums" = "$(tree_sums "$T/bad")" ] || fail "prune of a damaged chain changed files"
	done
	# Nothing to prune: still refused.
	expect_status 8 "$BK" prune --keep 4 "$T/bad"
}

run_test t_prune_damaged
