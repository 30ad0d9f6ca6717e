#!/bin/sh
# Compressed (lz4 by default, gzip): extent streams; and the other methods.
# Restores by us (sparse) give the COW; lz4 -d and gunzip give the stream,
# which restore - turns into the same COW; damage is caught.
. "$(dirname "$0")/functions.sh"

t_live_compressed() {
	live_guest
	n0=$(last_rec g1)
	expect_status 0 "$BK" -q -c -d 0 "$S" "$T/b2"
	[ -f "$T/b2/ubd0.ubdx.lz4" ] && [ ! -e "$T/b2/ubd0.cow" ] || fail "lz4 files: $(ls "$T/b2")"
	expect_status 0 "$BK" -q --compress=gzip -l 1 --verify -d a "$S" "$T/b3"
	[ -f "$T/b3/ubd0.ubdx.gz" ] || fail "gzip files: $(ls "$T/b3")"
	for m in compare copy; do
		expect_status 0 "$BK" -q -j -m $m -d 0 "$S" "$T/m-$m"
		[ "$(json_str "$T/m-$m/manifest.json" method)" = $m ] || fail "method $m not used"
		echo "method $m: pause $(json_num "$T/m-$m/manifest.json" pause_ms) ms"
	done
	expect_status 5 "$BK" -m reflink -d 0 "$S" "$T/m-reflink"
	err_has "cannot share extents"
	assert_running g1 "after compressed backups"
	live_guest_end
	for m in compare copy; do
		merged_check "$T/m-$m/ubd0.cow" "$n0" >/dev/null
	done
	expect_status 0 "$BK" restore "$T/b2/ubd0.ubdx.lz4"
	grep -q "chunk table matches" err.txt || fail "restore did not check the manifest: $(cat err.txt)"
	[ "$(blocks_of "$T/b2/ubd0.cow")" -lt $(( $(size_of "$T/b2/ubd0.cow") / 512 / 4 )) ] ||
		fail "restored COW is not sparse"
	grep -q "\"format\": \"ubdx\"" "$T/b2/manifest.json" || fail "b2: format not ubdx"
	lz4 -d -q -c "$T/b2/ubd0.ubdx.lz4" >"$T/b2.ubdx" || fail "lz4 -d"
	expect_status 0 "$BK" restore - "$T/b2-pipe.cow" <"$T/b2.ubdx"
	cmp "$T/b2-pipe.cow" "$T/b2/ubd0.cow" || fail "lz4 -d | restore - differs"
	merged_check "$T/b2/ubd0.cow" "$n0" >/dev/null
	expect_status 0 "$BK" restore -j "$T/b3/ubd0.ubdx.gz" "$T/b3.cow"
	gunzip -c "$T/b3/ubd0.ubdx.gz" | "$BK" -q restore - "$T/b3-pipe.cow" ||
		fail "gunzip | restore -"
	cmp "$T/b3-pipe.cow" "$T/b3.cow" || fail "gunzip | restore - differs"
	merged_check "$T/b3.cow" "$n0" >/dev/null
	expect_status 5 "$BK" restore "$T/b3/ubd0.ubdx.gz" "$T/b3.cow"
	expect_status 0 "$BK" restore -f "$T/b3/ubd0.ubdx.gz" "$T/b3.cow"
	# --verify catches damage, in plain and compressed backups.
	printf 'X' | dd of="$T/m-copy/ubd0.cow" bs=1 seek=5000 conv=notrunc status=none
	expect_status 1 "$BK" verify "$T/m-copy"
	err_has "differs from its chunk table ubd0.chunks at byte 0"
	# Damage where it must change the content: the first deflate block, which
	# holds the stream's header.  (In the middle of a run of zeros a
	# changed back-reference distance may still inflate to the same zeros.)
	printf '\377\377' | dd of="$T/b3/ubd0.ubdx.gz" bs=1 seek=40 conv=notrunc status=none
	expect_status 1 "$BK" verify "$T/b3"
	expect_status 1 "$BK" restore "$T/b3/ubd0.ubdx.gz" "$T/bad.cow"
	[ ! -e "$T/bad.cow" ] || fail "a failed restore left its output"
}

run_test t_live_compressed
