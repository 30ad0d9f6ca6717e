#!/bin/sh
# restore -f over a COW that nbdkit-ubd-plugin serves (a backup's stream
# and a chain point's): refused, exit 6, and the client's next write and
# flush land in the file under the name (a replaced file would take them
# unlinked).  Once the server stops, -f replaces it.
. "$(dirname "$0")/functions.sh"

t_restore_over_served_cow() {
	# Debian's python3 with python3-libnbd, whatever python3 comes first.
	/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "SKIP: python3-libnbd not installed"
	small_cow x
	randfile "$T/data" 65536
	"$COWUTIL" write "$T/x.cow" 1048576 "$T/data" || fail "cowutil write"
	expect_status 0 "$BK" -q -c --offline "$T/x.cow" "$T/b"
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$T/chain"
	point=$T/chain/$(points "$T/chain")
	"$MKCOW" -q "$T/g.cow" "$T/x.img" || fail "uml_mkcow"
	ino=$(stat -c %i "$T/g.cow")
	nbd_serve "$T/g.cow"
	for stream in "$T/b/ubd0.ubdx.lz4" "$point/ubd0.ubdx"; do
		expect_status 6 "$BK" restore -f "$stream" "$T/g.cow"
		grep -q "^uml_backup: $T/g.cow: in use: process $nbd_pid holds a lock on it.*not replaced" err.txt ||
			fail "$stream: $(cat err.txt)"
	done
	/usr/bin/python3 -c 'import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
h.pwrite(b"\x5a" * 4096, 65536)
h.flush()' "$nbd_uri" || fail "NBD client write"
	nbd_stop
	[ "$(stat -c %i "$T/g.cow")" = "$ino" ] || fail "the served COW was replaced"
	head -c 4096 /dev/zero | tr '\0' '\132' >"$T/want"
	"$COWUTIL" merged "$T/g.cow" "$T/g.img" || fail "cowutil merged"
	cmp -s -n 4096 -i 0:65536 "$T/want" "$T/g.img" || fail "the client's write is not in g.cow"
	expect_status 0 "$BK" restore -q -f "$point/ubd0.ubdx" "$T/g.cow"
	"$COWUTIL" merged "$T/x.cow" "$T/x.merged" && "$COWUTIL" merged "$T/g.cow" "$T/g.img" &&
		cmp "$T/x.merged" "$T/g.img" || fail "restored once released: wrong"
}

run_test t_restore_over_served_cow
