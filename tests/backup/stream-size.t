#!/bin/sh
# Compressed backups are extent streams: their size and time follow the
# data, not the device.  An empty COW over a sparse 64 GiB backing file
# stores under 1 MiB; restore and verify read the stream (raw too), and
# damage or a cut is refused naming the byte.
. "$(dirname "$0")/functions.sh"

t_stream_size() {
	truncate -s 64G "$T/big.img" || fail "truncate"
	"$MKCOW" -q "$T/big.cow" "$T/big.img" || fail "uml_mkcow"
	t0=$(date +%s%N)
	expect_status 0 "$BK" -q -c --offline "$T/big.cow" "$T/b"
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	sz=$(size_of "$T/b/ubd0.ubdx.lz4")
	echo "empty COW over 64 GiB: $sz bytes stored in $ms ms"
	[ "$sz" -lt 1048576 ] || fail "stored $sz bytes for an empty COW"
	manifest_keys "$T/b/manifest.json"
	[ "$(json_str "$T/b/manifest.json" kind)" = full ] || fail "kind not full"
	json_str "$T/b/manifest.json" point | grep -qx '[0-9a-f]\{32\}' || fail "point not 32 hex digits"
	json_str "$T/b/manifest.json" stream_xxh128 | grep -qx '[0-9a-f]\{32\}' ||
		fail "no stream_xxh128"
	expect_status 0 "$BK" verify "$T/b"
	# Again over it: refused, then replaced with -f (stream and table).
	expect_status 5 "$BK" -q -c --offline "$T/big.cow" "$T/b"
	expect_status 0 "$BK" -q -f -c --offline "$T/big.cow" "$T/b"
	expect_status 0 "$BK" verify "$T/b"
	# The chunk table of all 64 GiB against the manifest's (cmp would read them).
	expect_status 0 "$BK" restore "$T/b/ubd0.ubdx.lz4"
	err_has "chunk table matches the manifest's"
	[ "$(size_of "$T/b/ubd0.cow")" = "$(size_of "$T/big.cow")" ] || fail "restored size differs"
	[ "$(blocks_of "$T/b/ubd0.cow")" -lt 1024 ] || fail "restored COW is not sparse"
	# With data: 3 MiB at two places, gzip; the raw stream restores too.
	small_cow x
	randfile "$T/d" 1048576
	"$COWUTIL" write "$T/x.cow" 4096 "$T/d" || fail "cowutil write"
	"$COWUTIL" write "$T/x.cow" 2097152 "$T/d" || fail "cowutil write"
	expect_status 0 "$BK" -q -c gzip --offline "$T/x.cow" "$T/g"
	expect_status 0 "$BK" verify "$T/g"
	gunzip -c "$T/g/ubd0.ubdx.gz" >"$T/x.ubdx" || fail "gunzip"
	expect_status 0 "$BK" restore "$T/x.ubdx" "$T/x2.cow"
	cmp "$T/x2.cow" "$T/x.cow" || fail "restore of the raw stream differs"
	expect_status 0 "$BK" export "$T/g"
	cmp out.txt "$T/x.ubdx" || fail "export differs from the stored stream (but for its point)"
	# A changed payload byte: the digest says so, with its byte offset.
	cp "$T/x.ubdx" "$T/bad.ubdx"
	printf 'X' | dd of="$T/bad.ubdx" bs=1 seek=100000 conv=notrunc status=none
	expect_status 1 "$BK" restore "$T/bad.ubdx" "$T/bad.cow"
	err_has "stream byte"
	err_has "digest mismatch"
	[ ! -e "$T/bad.cow" ] || fail "a failed restore left its output"
	# Cut short on a pipe: refused, nothing left.
	head -c 500000 "$T/x.ubdx" | "$BK" restore - "$T/cut.cow" >out.txt 2>err.txt &&
		fail "a cut stream was restored"
	err_has "stream byte 500000: the stream ends"
	[ ! -e "$T/cut.cow" ] || fail "a failed restore left its output"
	# Not a stream on stdin.
	expect_status 1 "$BK" restore - "$T/n.cow" <"$T/x.img"
	err_has "not an extent stream"
}

run_test t_stream_size
