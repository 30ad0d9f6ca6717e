#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_mkcow_bytes_equal_peer() {
	cd "$T"
	mkdir -p real/dir && ln -sfn real/dir link
	for size in 1 511 512 1000001 10485760 67108864; do
		rm -f real/dir/b.img peer.cow ours.cow
		truncate -s "$size" real/dir/b.img
		for name in real/dir/b.img ./real/dir/b.img link/b.img "$T/link/b.img"; do
			rm -f peer.cow ours.cow
			"$PEER_MKCOW" peer.cow "$name" || fail "peer uml_mkcow failed"
			"$MKCOW" ours.cow "$name" || fail "our uml_mkcow failed"
			cmp peer.cow ours.cow || fail "size $size, name $name: bytes differ"
			[ "$(size_of ours.cow)" = "$(size_of peer.cow)" ] || fail "apparent size"
		done
	done
	# Bare name in the cwd.
	(cd real/dir && rm -f ../p.cow ../o.cow &&
		"$PEER_MKCOW" ../p.cow b.img && "$MKCOW" ../o.cow b.img) &&
	cmp real/p.cow real/o.cow || fail "bare name: bytes differ"
	# The new COW is sparse: header and one block at the end.
	[ "$(blocks_of ours.cow)" -le 64 ] || fail "not sparse: $(blocks_of ours.cow) blocks"
}

run_test t_mkcow_bytes_equal_peer
