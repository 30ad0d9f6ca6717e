#!/bin/sh
# A plain backup is a chain of one point: restore and verify read a plain
# backup and a chain point through one point reader and say what they did
# in one form (the same JSON keys, the same lines); a point's manifest is
# opened once.
. "$(dirname "$0")/functions.sh"

t_point_one_form() {
	command -v strace >/dev/null || skip "no strace (Debian package strace)"
	small_cow x
	printf 'x data' | dd of="$T/x.cow" bs=1 seek=200000 conv=notrunc status=none
	expect_status 0 "$BK" -q -i -c --offline "$T/x.cow" "$T/chain"
	printf 'later' | dd of="$T/x.cow" bs=1 seek=900000 conv=notrunc status=none
	expect_status 0 "$BK" -q -c --offline "$T/x.cow" "$T/b"
	expect_status 0 "$BK" -q -i -c --offline "$T/x.cow" "$T/chain"
	set -- $(points "$T/chain")
	for p in "$T/b" "$T/chain/$2"; do
		expect_status 0 "$BK" restore -f -j "$p" "$T/r.cow"
		cmp "$T/r.cow" "$T/x.cow" || fail "$p: restored differs"
		jq -r 'keys_unsorted | join(",")' out.txt >>"$T/restore-keys" || fail "restore -j: $(cat out.txt)"
		grep -q "^uml_backup: restored $p to $T/r.cow (4.0 MiB, [0-9.]* MiB of data): [12] streams\{0,1\} applied (.*), chunk table matches the manifest's$" err.txt ||
			fail "$p: restore said: $(cat err.txt)"
		expect_status 0 "$BK" verify -j "$p"
		jq -r '.verified[] | keys_unsorted | join(",")' out.txt >>"$T/verify-keys" ||
			fail "verify -j: $(cat out.txt)"
		expect_status 0 "$BK" verify "$p"
		grep -q "^uml_backup: $p/ubd0.ubdx.lz4: OK$" err.txt || fail "$p: verify said: $(cat err.txt)"
	done
	[ "$(sort -u "$T/restore-keys" | wc -l)" = 1 ] || fail "restore -j keys: $(cat "$T/restore-keys")"
	[ "$(sort -u "$T/verify-keys" | wc -l)" = 1 ] || fail "verify -j keys: $(cat "$T/verify-keys")"
	grep -c "^uml_backup: $T/chain/$1/ubd0.ubdx.lz4: OK$" err.txt >/dev/null ||
		fail "verify of a point: its parent not said: $(cat err.txt)"
	for p in "$T/b" "$T/b/ubd0.ubdx.lz4"; do
		strace -f -e trace=open,openat -o "$T/trace" "$BK" -q restore -f "$p" "$T/r.cow" ||
			fail "restore $p under strace"
		[ "$(grep -c 'manifest\.json' "$T/trace")" = 1 ] ||
			fail "restore $p opened the manifest $(grep -c 'manifest\.json' "$T/trace") times"
	done
}

run_test t_point_one_form
