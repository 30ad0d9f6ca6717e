#!/bin/sh
# A hostile record beside the COW: a CLEAN header claiming an 8 GiB device
# and 2^29 runs, over a sparse file made 8 GiB to match.  The offline
# incremental refuses it from its header (the runs against the 4 MiB
# device's 64 blocks), without reading the file's holes, and compares,
# saying why; the point restores to the COW.
. "$(dirname "$0")/functions.sh"

t_chain_cbt_record_bounded() {
	small_cow x
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$T/chain"
	printf 'changed' | dd of="$T/x.cow" bs=1 seek=200000 conv=notrunc status=none
	python3 - "$T/x.cow.cbt" <<'EOS' || fail "python3"
import struct, sys
runs = 1 << 29
h = bytearray(256)
h[0:8] = b"UBDKCBTR"
struct.pack_into("<IIIII", h, 8, 1, 256, 2, 0, 65536)
struct.pack_into("<Q", h, 32, 8 << 30)
struct.pack_into("<QQ", h, 80, runs, runs)
with open(sys.argv[1], "wb") as f:
    f.write(h)
    f.truncate(256 + 16 * runs + 4)
EOS
	t0=$(date +%s%N)
	expect_status 0 timeout 60 "$BK" -i -j --offline "$T/x.cow" "$T/chain"
	echo "offline incremental beside an 8 GiB hostile record: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
	[ "$(json_str out.txt changes)" = comparison ] || fail "changes: $(json_str out.txt changes)"
	grep -q '"changes_note": "[^"]*x.cow.cbt: its header says 536870912 runs, more than the 64 blocks of the device (4194304 bytes)"' out.txt ||
		fail "note: $(json_str out.txt changes_note)"
	grep -q "changes: comparison (.*536870912 runs" err.txt || fail "summary: $(cat err.txt)"
	expect_status 0 "$BK" restore "$T/chain/$(points "$T/chain" | tail -n 1)/ubd0.ubdx" "$T/r.cow"
	cmp "$T/r.cow" "$T/x.cow" || fail "the point differs from the COW"
	# Within the bound on a 1 TiB device (2^28 runs of 4 KiB blocks, a
	# 4 GiB record made sparse): refused from its extents, not read.
	truncate -s 1T "$T/big.img" || fail "truncate"
	"$MKCOW" -q "$T/big.cow" "$T/big.img" || fail "uml_mkcow"
	expect_status 0 "$BK" -q -i --offline "$T/big.cow" "$T/bigchain"
	python3 - "$T/big.cow.cbt" <<'EOS' || fail "python3"
import struct, sys
runs = 1 << 28
h = bytearray(256)
h[0:8] = b"UBDKCBTR"
struct.pack_into("<IIIII", h, 8, 1, 256, 2, 0, 4096)
struct.pack_into("<Q", h, 88, runs)
with open(sys.argv[1], "wb") as f:
    f.write(h)
    f.truncate(256 + 16 * runs + 4)
EOS
	t0=$(date +%s%N)
	expect_status 0 timeout 60 "$BK" -i -j --offline "$T/big.cow" "$T/bigchain"
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	echo "offline incremental of 1 TiB beside a sparse 4 GiB record: $ms ms"
	json_str out.txt changes_note | grep -q "big.cow.cbt: its body has holes (268435456 runs in a sparse file)" ||
		fail "note: $(json_str out.txt changes_note)"
}

run_test t_chain_cbt_record_bounded
