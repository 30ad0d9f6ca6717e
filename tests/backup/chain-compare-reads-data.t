#!/bin/sh
# The comparison source of an incremental reads the COW's data extents,
# not the whole 64 KiB chunks around them: 2,000 4 KiB sectors scattered
# over a 1 GiB device (about 8 MiB allocated, most in chunks of their own)
# are about 8 MiB read, as the summary says; the point restores to the COW.
. "$(dirname "$0")/functions.sh"

t_chain_compare_reads_data() {
	truncate -s 1G "$T/x.img" || fail "truncate"
	"$MKCOW" -q -s 4096 "$T/x.cow" "$T/x.img" || fail "uml_mkcow"
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$T/chain"
	"$COWUTIL" scatter "$T/x.cow" 2000 7 || fail "cowutil scatter"
	expect_status 0 "$BK" -i --offline "$T/x.cow" "$T/chain"
	grep -q "changes: comparison (offline: ubd0 has no tracking record)" err.txt ||
		fail "not a comparison: $(cat err.txt)"
	alloc=$(( $(blocks_of "$T/x.cow") * 512 ))
	rd=$(read_mib)
	echo "2,000 scattered sectors: $(chunks_stored) chunks stored, $rd MiB read," \
		"$alloc bytes allocated"
	awk -v r="$rd" -v a="$alloc" 'BEGIN { exit !(r * 1048576 <= a * 1.1 + 65536) }' ||
		fail "read $rd MiB for $alloc bytes allocated"
	expect_status 0 "$BK" restore "$T/chain/$(points "$T/chain" | tail -n 1)/ubd0.ubdx" "$T/r.cow"
	"$COWUTIL" same "$T/x.cow" "$T/r.cow" >/dev/null || fail "the point differs from the COW"
}

run_test t_chain_compare_reads_data
