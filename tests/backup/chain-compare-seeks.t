#!/bin/sh
# An incremental by comparison (offline, no tracking record) reads a chunk
# that lies inside a data extent in one go: its seeks follow the COW's
# extents, not its 64 KiB chunks (scan_chunk sought each chunk's extents
# again: two lseeks per chunk, 2,048 and more here).
. "$(dirname "$0")/functions.sh"

t_chain_compare_seeks() {
	random_cow_for_strace
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$T/chain"
	head -c 1M /dev/urandom >"$T/new" || fail "head"
	"$COWUTIL" write "$T/x.cow" 10485760 "$T/new" >/dev/null || fail "cowutil write"
	strace -f -c -e trace=lseek -o "$T/st" "$BK" -i --offline "$T/x.cow" "$T/chain" 2>"$T/err" ||
		fail "uml_backup -i: $?: $(cat "$T/err")"
	grep -q "changes: comparison" "$T/err" || fail "not a comparison: $(cat "$T/err")"
	few_seeks "$T/st" "a comparison"
	expect_status 0 "$BK" restore "$T/chain/$(points "$T/chain" | tail -n 1)/ubd0.ubdx" "$T/r.cow"
	"$COWUTIL" same "$T/x.cow" "$T/r.cow" >/dev/null || fail "the point differs from the COW"
}

run_test t_chain_compare_seeks
