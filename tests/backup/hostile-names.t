#!/bin/sh
# Names with newlines and bytes that are not UTF-8, and very long paths:
# errors stay one line and keep their reason; --json stays valid JSON.
. "$(dirname "$0")/functions.sh"

t_hostile_names() {
	odd=$(printf 'n\351w\nline')
	mkdir "$T/$odd"
	truncate -s 4M "$T/$odd/x.img"
	"$MKCOW" -q "$T/$odd/x.cow" "$T/$odd/x.img" || fail "uml_mkcow"
	expect_status 0 "$BK" -j --offline "$T/$odd/x.cow" "$T/b"
	[ "$(wc -l <err.txt)" = 1 ] || fail "the summary is not one line: $(cat err.txt)"
	python3 -c '
import json, sys
m = json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))
assert m["devices"][0]["cow"].endswith("/n\xe9w\nline/x.cow"), m["devices"][0]["cow"]
' out.txt || fail "--json is not valid JSON: $(cat out.txt)"
	expect_status 0 "$BK" verify "$T/b"
	expect_status 0 "$BK" verify -j "$T/b"
	python3 -c 'import json, sys; json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))' out.txt ||
		fail "verify --json is not valid JSON"
	expect_status 4 "$BK" --offline "$T/$odd/nothing.cow" "$T/b2"
	err_has 'n\\xe9w\\nline/nothing.cow: cannot open'
	# A path of over 600 bytes to a COW of an unknown version.
	long=$T/$(printf 'd%.0s' $(seq 200))/$(printf 'e%.0s' $(seq 200))/$(printf 'f%.0s' $(seq 200))
	mkdir -p "$long"
	truncate -s 4M "$long/x.img"
	"$MKCOW" -q "$long/x.cow" "$long/x.img" || fail "uml_mkcow"
	put_int "$long/x.cow" 4 99 4 be
	expect_status 4 "$BK" --offline "$long/x.cow" "$T/b3"
	err_has "unknown COW version 99"
}

run_test t_hostile_names
