#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_discard_and_write_zeroes() {
	rand_backing back.img 8
	cat >body <<'EOS'
dd if=/dev/urandom of=/dev/ubda bs=1M count=8 conv=fsync status=none
blkdiscard -o 1048576 -l 2097152 /dev/ubda && echo DISCARD-OK
blkdiscard -z -o 4194304 -l 1048576 /dev/ubda && echo ZERO-OK
sync
echo "Z1=$(dd if=/dev/ubda bs=1M skip=1 count=2 status=none | tr -d '\0' | wc -c)"
echo "Z2=$(dd if=/dev/ubda bs=1M skip=4 count=1 status=none | tr -d '\0' | wc -c)"
EOS
	ours dsc body log ubda="$T/c.cow,$T/back.img" || true
	ended log
	grep -qx DISCARD-OK log || fail "discard failed"
	grep -qx ZERO-OK log || fail "write-zeroes failed"
	grep -qx Z1=0 log || fail "discarded range not zero in the guest"
	grep -qx Z2=0 log || fail "zeroed range not zero in the guest"
	"$COWUTIL" merged c.cow m.img || fail merged
	[ "$(dd if=m.img bs=1M skip=1 count=2 status=none | tr -d '\0' | wc -c)" = 0 ] || fail "discarded range not zero on the host"
	[ "$(dd if=m.img bs=1M skip=4 count=1 status=none | tr -d '\0' | wc -c)" = 0 ] || fail "zeroed range not zero on the host"
	# The hole is really punched: less than 8 MiB of data allocated.
	[ $(( $(blocks_of c.cow) * 512 )) -lt $((7 * 1048576)) ] || fail "no hole punched: $(blocks_of c.cow) blocks"
	"$PEER_MOO" c.cow peer.img >/dev/null 2>&1 && cmp peer.img m.img || fail "uml_moo view differs"
}

run_test t_discard_and_write_zeroes
