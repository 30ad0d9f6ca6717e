#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_stat_backing_mismatch() {
	make_pair
	expect_status 0 "$IS" --json c.cow
	json_ok out.txt 1
	if command -v python3 >/dev/null; then
		[ "$(jget out.txt backing.status)" = ok ] || fail "status"
		[ "$(jget out.txt usage.cow_sectors)" = 5 ] || fail "cow_sectors"
		[ "$(jget out.txt usage.cow_bytes)" = 2560 ] || fail "cow_bytes"
		[ "$(jget out.txt usage.runs)" = 5 ] || fail "runs"
		[ "$(jget out.txt header.size)" = $((8 * MiB)) ] || fail "size"
		[ "$(jget out.txt geometry.data_offset)" = "$(info_get c.cow data_offset)" ] || fail "data_offset"
		[ "$(jget out.txt allocation.cow.apparent)" = "$(size_of c.cow)" ] || fail "apparent"
		[ "$(jget out.txt allocation.cow.allocated)" = $(($(blocks_of c.cow) * 512)) ] || fail "allocated"
		[ "$(jget out.txt content.signature)" = null ] || fail "content of random data"
	fi
	touch -d '2020-02-02 02:02:12' back.img
	expect_status 0 "$IS" c.cow
	grep -q 'status: mtime-mismatch' out.txt || fail "$(cat out.txt)"
	grep -q 'mtime: header .*, +10 s' out.txt || fail "mtime delta: $(grep mtime out.txt)"
	grep -q "fix: if its content is unchanged: uml_mkcow --rebase $T/back.img c.cow" out.txt ||
		fail "fix command: $(grep fix out.txt)"
	# The fix works.
	"$MKCOW" --rebase "$T/back.img" c.cow >/dev/null || fail "rebase"
	expect_status 0 "$IS" --check c.cow
	truncate -s $((8 * MiB + 512)) back.img
	touch -d '2020-02-02 02:02:12' back.img
	expect_status 0 "$IS" c.cow
	grep -q 'status: size-mismatch' out.txt || fail "$(cat out.txt)"
	grep -q 'size: header 8388608, file 8389120 (+512 bytes)' out.txt || fail "size delta"
	# -b names another file; a missing backing is described, not fatal.
	truncate -s $((8 * MiB)) back.img
	touch -d '2020-02-02 02:02:22' back.img
	mv back.img moved.img
	expect_status 0 "$IS" c.cow
	grep -q 'status: missing' out.txt || fail "$(cat out.txt)"
	grep -q 'fix: if the backing file moved: uml_mkcow --rebase BACKING c.cow' out.txt || fail "fix"
	expect_status 0 "$IS" -b moved.img c.cow
	grep -q 'path: moved.img' out.txt && grep -q 'status: mtime-mismatch' out.txt ||
		fail "-b: $(cat out.txt)"
}

run_test t_stat_backing_mismatch
