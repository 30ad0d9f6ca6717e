#!/bin/sh
# Filesystems without O_TMPFILE get hidden temporary names instead.
. "$(dirname "$0")/functions.sh"

t_named_fallback() {
	export UBDK_NO_TMPFILE=1
	truncate -s 10M master.img
	"$PEER_MKCOW" peer.cow master.img
	"$MKCOW" -q --count 50 --name 'g-%02d.cow' master.img || fail "50 clones"
	echo old >g-07.cow
	"$MKCOW" -f g-07.cow master.img || fail "-f"
	for f in g-*.cow; do cmp -s peer.cow "$f" || fail "$f differs"; done
	expect_status 4 "$MKCOW" g-01.cow master.img
	expect_status 1 "$MKCOW" a.cow nodir/b.cow master.img
	cmp -s peer.cow a.cow || fail "a.cow"
	only_files . master.img peer.cow a.cow out.txt err.txt $(seq -f 'g-%02g.cow' 0 49)
}

run_test t_named_fallback
