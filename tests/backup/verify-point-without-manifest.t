#!/bin/sh
# verify of a chain names a point directory that lost its manifest (it
# was passed over as a run that did not finish, and the point with it);
# an empty one, what a killed run leaves, is said but fails nothing.
. "$(dirname "$0")/functions.sh"

t_verify_point_without_manifest() {
	offline_chain "$T/chain" 2
	set -- $(points "$T/chain")
	expect_status 0 "$BK" verify -q "$T/chain"
	mv "$T/chain/$2/manifest.json" "$T/m.json"
	expect_status 1 "$BK" verify -q "$T/chain"
	err_has "chain/$2: no manifest.json, but files"
	mv "$T/m.json" "$T/chain/$2/manifest.json"
	mkdir "$T/chain/29991231T235959.999Z"
	expect_status 0 "$BK" verify "$T/chain"
	err_has "29991231T235959.999Z: an empty point directory without a manifest"
	expect_status 0 "$BK" verify -q "$T/chain"
	[ ! -s err.txt ] || fail "verify -q said: $(cat err.txt)"
}

run_test t_verify_point_without_manifest
