#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_bad_backing() {
	mkdir d
	expect_status 3 "$MKCOW" a.cow missing.img
	grep -q 'missing.img.*No such file' err.txt || fail "missing: $(cat err.txt)"
	expect_status 3 "$MKCOW" a.cow d
	grep -q 'not a regular file' err.txt || fail "directory: $(cat err.txt)"
	: >empty.img
	expect_status 3 "$MKCOW" a.cow empty.img
	grep -q 'empty' err.txt || fail "zero size: $(cat err.txt)"
	# A v1 header holds 255 bytes of path.
	long=$T/$(printf 'x%.0s' $(seq 120))/$(printf 'y%.0s' $(seq 120))
	mkdir -p "$long" && truncate -s 1M "$long/b.img"
	expect_status 3 "$MKCOW" -V 1 a.cow "$long/b.img"
	grep -q 'does not fit' err.txt || fail "long path: $(cat err.txt)"
	"$MKCOW" -V 2 a.cow "$long/b.img" || fail "v2 should hold that path"
	rm a.cow
	truncate -s 1M secret.img && chmod 000 secret.img && chmod 755 "$T"
	expect_status 3 as_nobody "$MKCOW" /tmp/ubdk-mkcow-never.cow "$T/secret.img"
	grep -q 'cannot open for reading.*Permission denied' err.txt ||
		fail "unreadable: $(cat err.txt)"
	[ ! -e /tmp/ubdk-mkcow-never.cow ] || fail "COW made for an unreadable backing"
	only_files . d empty.img secret.img out.txt err.txt "$(basename "$(dirname "$long")")"
}

run_test t_bad_backing
