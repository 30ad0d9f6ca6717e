#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_dropin_bytes_equal_peer() {
	truncate -s 100M master.img
	"$PEER_MKCOW" peer.cow master.img
	"$MKCOW" ours.cow master.img || fail "create"
	cmp peer.cow ours.cow || fail "header bytes differ from uml-utilities'"
	[ "$(size_of ours.cow)" = "$(size_of peer.cow)" ] || fail "apparent size"
	# -f replaces, with the same bytes.
	echo junk >ours.cow
	"$MKCOW" -f ours.cow master.img || fail "-f"
	cmp peer.cow ours.cow || fail "-f: bytes differ"
	# Several at once, backing last or with -b: each equals the peer's.
	"$MKCOW" a.cow b.cow master.img || fail "two COWs"
	"$MKCOW" -b master.img c.cow || fail "-b"
	for c in a b c; do cmp peer.cow $c.cow || fail "$c.cow differs"; done
	# Other versions and sector sizes carry what was asked for.
	"$MKCOW" -V 1 v1.cow master.img && "$MKCOW" -V 2 -s 1024 v2.cow master.img &&
		"$MKCOW" -a 512 v3.cow master.img || fail "options"
	[ "$(info_get v1.cow layout)" = v1 ] || fail "v1 layout"
	[ "$(info_get v2.cow sectorsize)" = 1024 ] || fail "v2 sector size"
	[ "$(info_get v3.cow data_offset)" = $((4608 + 25600)) ] || fail "v3 alignment 512"
	"$MKCOW" --version | grep -q '^uml_mkcow (ubdkit) [0-9]' || fail "--version"
	"$MKCOW" --help | grep -q -- '--count' || fail "--help"
}

run_test t_dropin_bytes_equal_peer
