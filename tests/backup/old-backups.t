#!/bin/sh
# Backups made by uml_backup 0.2.0 (tests/backup/fixtures/v0.2.0/make.sh):
# verified and restored byte for byte; the backing file's name is not UTF-8.
. "$(dirname "$0")/functions.sh"

t_old_backups() {
	cp -r "$ROOT/tests/backup/fixtures/v0.2.0/plain" "$ROOT/tests/backup/fixtures/v0.2.0/lz4" \
		"$ROOT/tests/backup/fixtures/v0.2.0/gzip" "$T/"
	backing=$(printf 'n\351w.img')
	truncate -s 4M "$backing"
	touch -d @1700000000 "$backing"
	for d in plain lz4 gzip; do
		expect_status 0 "$BK" verify "$d"
	done
	expect_status 0 "$BK" verify -j lz4
	grep -q '"ok": true}$' out.txt || fail "verify -j: $(cat out.txt)"
	expect_status 0 "$BK" restore lz4/ubd0.cow.lz4 lz4.cow
	grep -q "checksums match" err.txt || fail "restore did not check: $(cat err.txt)"
	cmp lz4.cow plain/ubd0.cow || fail "lz4 restore differs"
	expect_status 0 "$BK" restore gzip/ubd0.cow.gz gzip.cow
	cmp gzip.cow plain/ubd0.cow || fail "gzip restore differs"
	# Exported as a stream (converted from the COW file), restored from it.
	for d in plain lz4 gzip; do
		"$BK" -q export "$d" >"$d.ubdx" || fail "export $d"
		expect_status 0 "$BK" restore - "$d-x.cow" <"$d.ubdx"
		cmp "$d-x.cow" plain/ubd0.cow || fail "export $d | restore - differs"
	done
	# Its backing file changed: no longer bootable, so no longer verified.
	touch -d @1700000001 "$backing"
	expect_status 1 "$BK" verify plain
	err_has "the backing file changed"
}

run_test t_old_backups
