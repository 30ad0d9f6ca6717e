#!/bin/sh
# Names with newlines, backslashes and bytes that are not UTF-8: errors
# are one line and escape them as every tool does; --json writes them
# through jansson, the bytes that are not UTF-8 as Latin-1 characters.
. "$(dirname "$0")/functions.sh"

t_hostile_names() {
	truncate -s 1M master.img
	odd=$(printf 'n\351w\\x\nline')
	echo "keep me" >"$odd.cow"
	expect_status 4 "$MKCOW" "$odd.cow" master.img
	grep -qF 'n\xe9w\\x\nline.cow: already exists' err.txt || fail "$(cat err.txt)"
	expect_status 0 "$MKCOW" --json "$odd-2.cow" master.img
	python3 -c 'import json,sys; d=json.load(open("out.txt")); assert d["created"] == ["n\u00e9w\\x\nline-2.cow"], d' ||
		fail "--json: $(cat out.txt)"
}

run_test t_hostile_names
