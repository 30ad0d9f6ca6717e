#!/bin/sh
# A full point reads a chunk that lies inside a data extent in one go: its
# seeks follow the COW's extents, not its 64 KiB chunks (chunk_walk sought
# each chunk's extents again: two lseeks per chunk, 2,048 and more here).
. "$(dirname "$0")/functions.sh"

t_chain_full_point_seeks() {
	random_cow_for_strace
	strace -f -c -e trace=lseek -o "$T/st" "$BK" -q -i --offline "$T/x.cow" "$T/chain" ||
		fail "uml_backup -i: $?"
	few_seeks "$T/st" "a full point"
	expect_status 0 "$BK" restore "$T/chain/$(points "$T/chain" | tail -n 1)/ubd0.ubdx" "$T/r.cow"
	"$COWUTIL" same "$T/x.cow" "$T/r.cow" >/dev/null || fail "the point differs from the COW"
}

run_test t_chain_full_point_seeks
