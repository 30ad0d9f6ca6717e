#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_files_refused() {
	truncate -s 8M raw.img
	expect_status 2 "$IS" --files raw.img
	grep -q 'raw.img: not a COW file' err.txt || fail "$(cat err.txt)"
	mkswap raw.img >/dev/null 2>&1 || fail mkswap
	"$MKCOW" c.cow raw.img
	expect_status 2 "$IS" --files c.cow
	grep -q 'no ext2/3/4 filesystem (swap)' err.txt || fail "$(cat err.txt)"
	rm raw.img
	expect_status 2 "$IS" --files c.cow
	grep -q 'c.cow: the backing file cannot be opened' err.txt || fail "$(cat err.txt)"
}

run_test t_files_refused
