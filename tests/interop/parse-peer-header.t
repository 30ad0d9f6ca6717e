#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_parse_peer_header() {
	cd "$T"
	randfile back.img 3000000
	touch -d '2024-02-29 12:34:56' back.img
	"$PEER_MKCOW" peer.cow back.img
	[ "$(info_get peer.cow layout)" = v3 ] || fail layout
	[ "$(info_get peer.cow backing)" = "$T/back.img" ] || fail backing
	[ "$(info_get peer.cow size)" = 3000000 ] || fail size
	[ "$(info_get peer.cow mtime)" = "$(mtime_of back.img)" ] || fail mtime
	[ "$(info_get peer.cow sectorsize)" = 512 ] || fail sectorsize
	[ "$(info_get peer.cow alignment)" = 4096 ] || fail alignment
	[ "$(info_get peer.cow sectors)" = 5860 ] || fail sectors
	[ "$(info_get peer.cow bitmap_offset)" = 8192 ] || fail bitmap_offset
	[ "$(info_get peer.cow bitmap_len)" = 733 ] || fail bitmap_len
	[ "$(info_get peer.cow data_offset)" = 12288 ] || fail data_offset
	[ "$(size_of peer.cow)" = $((12288 + 3000000)) ] || fail "apparent size"
	"$COWUTIL" check peer.cow >/dev/null || fail "backing check"
}

run_test t_parse_peer_header
