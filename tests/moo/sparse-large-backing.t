#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_sparse_large_backing() {
	truncate -s 2G back.img
	# A few MB of data in the backing, one of them to be zeroed by the COW.
	for off in 100 1000 1500; do
		randfile chunk $((3 * MiB / 2))
		dd if=chunk of=back.img bs=1M seek=$off conv=notrunc status=none
	done
	touch -d '2022-04-04' back.img
	"$PEER_MKCOW" c.cow back.img >/dev/null || fail "uml_mkcow"
	randfile chunk $((2 * MiB)) && "$COWUTIL" write c.cow $((50 * MiB)) chunk &&
	randfile chunk $MiB && "$COWUTIL" write c.cow $((100 * MiB + MiB / 2)) chunk &&
	head -c $MiB /dev/zero >chunk && "$COWUTIL" write c.cow $((1500 * MiB)) chunk &&
	randfile chunk 4096 && "$COWUTIL" write c.cow $((2048 * MiB - 4096)) chunk &&
	randfile chunk 512 && "$COWUTIL" write c.cow 0 chunk || fail "cowutil write"
	rm chunk
	"$COWUTIL" merged c.cow exp.img || fail merged
	cmp -s exp.img back.img && fail "COW changes nothing?"
	cp -p back.img back.orig
	expect_status 0 "$MOO" c.cow new.img
	[ "$(size_of new.img)" = $((2048 * MiB)) ] || fail "size $(size_of new.img)"
	cmp new.img exp.img || fail "new image wrong"
	b_new=$(blocks_of new.img) b_back=$(blocks_of back.img) b_cow=$(blocks_of c.cow)
	echo "blocks: new $b_new, backing $b_back, COW $b_cow"
	[ "$b_new" -le $((b_back + b_cow + 8192)) ] ||
		fail "new image not sparse: $b_new blocks > $b_back + $b_cow + 8192"
	# In place keeps the backing sparse too, and zeroes what the COW zeroed.
	expect_status 0 "$MOO" -d c.cow
	cmp back.img exp.img || fail "in-place result wrong"
	[ "$(blocks_of back.img)" -le $((b_back + b_cow + 8192)) ] ||
		fail "in place filled the backing: $(blocks_of back.img) blocks"
}

run_test t_sparse_large_backing
