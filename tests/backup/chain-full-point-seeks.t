#!/bin/sh
# A full point reads a chunk that lies inside a data extent in one go: its
# seeks follow the COW's extents, not its 64 KiB chunks (chunk_walk sought
# each chunk's extents again: two lseeks per chunk, 2,048 and more here).
. "$(dirname "$0")/functions.sh"

t_chain_full_point_seeks() {
	command -v strace >/dev/null || skip "no strace"
	strace -f -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	truncate -s 64M "$T/x.img" || fail "truncate"
	"$MKCOW" -q "$T/x.cow" "$T/x.img" || fail "uml_mkcow"
	head -c 64M /dev/urandom >"$T/data" || fail "head"
	"$COWUTIL" write "$T/x.cow" 0 "$T/data" >/dev/null || fail "cowutil write"
	strace -f -c -e trace=lseek -o "$T/st" "$BK" -q -i --offline "$T/x.cow" "$T/chain" ||
		fail "uml_backup -i: $?"
	n=$(awk '$NF == "lseek" { print $4 }' "$T/st")
	echo "a full point of 64 MiB of data (1,024 chunks): ${n:-no} lseeks"
	[ -n "$n" ] && [ "$n" -lt 256 ] || fail "${n:-no} lseeks for 1,024 chunks of data"
	expect_status 0 "$BK" restore "$T/chain/$(points "$T/chain" | tail -n 1)/ubd0.ubdx" "$T/r.cow"
	"$COWUTIL" same "$T/x.cow" "$T/r.cow" >/dev/null || fail "the point differs from the COW"
}

run_test t_chain_full_point_seeks
