#!/bin/sh
# Checks that check nothing must fail: a manifest that does not parse,
# lists no devices, has a key twice, an entry without checksums (no chunk
# table, no 0.2.0 checksums), or a table that is not the one it names.
. "$(dirname "$0")/functions.sh"

t_manifest_checks() {
	small_cow x
	expect_status 0 "$BK" -q -c --offline "$T/x.cow" "$T/b"
	M=$T/b/manifest.json
	cp "$M" "$T/good.json"
	printf '{"devices": [' >"$M"
	expect_status 1 "$BK" verify "$T/b"
	err_has "not a uml_backup manifest"
	expect_status 1 "$BK" restore "$T/b/ubd0.ubdx.lz4" "$T/r.cow"
	err_has "not a uml_backup manifest"
	[ ! -e "$T/r.cow" ] || fail "restore went on without its manifest"
	printf '{"format": "ubdkit-backup", "version": 1, "devices": []}\n' >"$M"
	expect_status 1 "$BK" verify "$T/b"
	err_has "lists no devices"
	expect_status 1 "$BK" restore "$T/b/ubd0.ubdx.lz4" "$T/r.cow"
	err_has "lists no devices"
	# The same key twice, the empty list first or last.
	python3 -c 'import sys; t = open(sys.argv[1]).read().rstrip(); print("{\"devices\": [], " + t[1:])' \
		"$T/good.json" >"$M"
	expect_status 1 "$BK" verify "$T/b"
	err_has "duplicate object key"
	python3 -c 'import sys; t = open(sys.argv[1]).read().rstrip(); print(t[:-1] + ", \"devices\": []}")' \
		"$T/good.json" >"$M"
	expect_status 1 "$BK" verify "$T/b"
	err_has "duplicate object key"
	expect_status 1 "$BK" restore "$T/b/ubd0.ubdx.lz4" "$T/r.cow"
	# A NUL in a key would make a second "devices" too.
	sed 's/"devices"/"devices\\u0000x"/' "$T/good.json" >"$M"
	expect_status 1 "$BK" verify "$T/b"
	# An entry without its checksums.
	python3 -c 'import json, sys; m = json.load(open(sys.argv[1]))
for d in m["devices"]:
    del d["chunks"], d["chunks_xxh128"]
print(json.dumps(m))' "$T/good.json" >"$M"
	grep -q chunks "$M" && fail "the test's sed left the chunk keys: $(cat "$M")"
	expect_status 1 "$BK" restore "$T/b/ubd0.ubdx.lz4" "$T/r.cow"
	err_has "has no checksums"
	[ ! -e "$T/r.cow" ] || fail "restore without checksums left its output"
	expect_status 1 "$BK" verify "$T/b"
	err_has "incomplete entry"
	# Another table than the manifest names (its digest differs).
	sed 's/"chunks_xxh128": "[0-9a-f]/"chunks_xxh128": "x/' "$T/good.json" >"$M"
	expect_status 1 "$BK" restore "$T/b/ubd0.ubdx.lz4" "$T/r.cow"
	err_has "ubd0.chunks: not the table its manifest names (digest differs"
	[ ! -e "$T/r.cow" ] || fail "restore with another table left its output"
	expect_status 1 "$BK" verify "$T/b"
	err_has "not the table its manifest names"
	cp "$T/good.json" "$M"
	expect_status 0 "$BK" verify "$T/b"
	expect_status 0 "$BK" restore "$T/b/ubd0.ubdx.lz4" "$T/r.cow"
	grep -q "chunk table matches" err.txt || fail "restore did not check: $(cat err.txt)"
}

run_test t_manifest_checks
