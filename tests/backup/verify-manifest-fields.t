#!/bin/sh
# verify checks a chain point's manifest size and compression against its
# stream: a size of 1 GiB, or compression zstd, gzip or lz4 on a raw
# stream, fails; so does another compression on a stand-alone backup's.
. "$(dirname "$0")/functions.sh"

t_verify_manifest_fields() {
	offline_chain "$T/chain" 1
	p=$(points "$T/chain")
	m=$T/chain/$p/manifest.json
	cp "$m" "$T/m.orig"
	for edit in '.devices[0].size = 1073741824' '.devices[0].compression = "zstd"' \
		'.devices[0].compression = "gzip"' '.devices[0].compression = "lz4"' \
		'.devices[0].sectorsize = 4096' '.devices[0].layout = "v1"' \
		'.devices[0].stored_bytes = 1'; do
		jq "$edit" "$T/m.orig" >"$m" || fail "jq"
		for dir in "$T/chain" "$T/chain/$p"; do
			expect_status 1 "$BK" verify "$dir"
			case $edit in
			*sectorsize*) err_has "sector size 512, the manifest 4096" ;;
			*layout*) err_has "layout v3, the manifest says v1" ;;
			*stored_bytes*) err_has "the manifest's stored_bytes says 1" ;;
			*size*) err_has "size" ;;
			*) err_has "compression" ;;
			esac
		done
		expect_status 8 "$BK" prune --keep 1 "$T/chain"
	done
	cp "$T/m.orig" "$m"
	expect_status 0 "$BK" verify "$T/chain"
	# A stand-alone compressed backup.
	expect_status 0 "$BK" -q -c --offline "$T/x.cow" "$T/b"
	cp "$T/b/manifest.json" "$T/m.orig"
	jq '.devices[0].compression = "gzip"' "$T/m.orig" >"$T/b/manifest.json" || fail "jq"
	expect_status 1 "$BK" verify "$T/b"
	err_has "compression"
}

run_test t_verify_manifest_fields
