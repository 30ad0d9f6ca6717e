#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_check_damage() {
	make_pair
	do=$(info_get c.cow data_offset)
	bo=$(info_get c.cow bitmap_offset)
	bl=$(info_get c.cow bitmap_len)
	expect_status 0 "$IS" --check c.cow
	grep -q 'c.cow: check: clean' out.txt || fail "not clean: $(cat out.txt)"
	# The bitmap truncated.
	truncate -s $((bo + bl / 2)) c.cow
	check_finds short-bitmap
	# A bit past the end of the device (8 MiB = 16384 sectors: bit 16390).
	put_int c.cow $((bo + 16390 / 8)) $((1 << (16390 % 8))) 1 le
	check_finds bits-past-end
	# Header fields.
	put_int c.cow 4 7 4 be
	check_finds bad-version
	put_int c.cow 20 3 4 be
	check_finds bad-sectorsize
	put_int c.cow 24 0 4 be
	check_finds bad-alignment
	put_int c.cow 28 1 4 be
	check_finds bad-cow-format
	head -c 4096 /dev/zero | tr '\0' x | dd of=c.cow bs=1 seek=32 conv=notrunc status=none
	check_finds backing-unterminated
	put_int c.cow 12 $((8 * MiB + 4096)) 8 be
	check_finds size-mismatch
	put_int c.cow 8 12345 4 be
	check_finds mtime-mismatch
	grep -q "uml_mkcow --rebase $T/back.img c.cow" out.txt || fail "no fix command"
	# The data of set sectors cut off.
	truncate -s $((do + 2 * MiB)) c.cow
	check_finds short-data
	# The COW names itself.
	"$IS" --check -b c.cow c.cow >out.txt 2>err.txt
	grep -q 'error backing-is-self' out.txt || fail "self: $(cat out.txt)"
	# The backing file gone.
	mv back.img gone.img
	check_finds backing-missing
	mv gone.img back.img
	# Data stored for sectors whose bit is clear: a warning (--strict: 1).
	randfile chunk 8192
	dd if=chunk of=c.cow bs=4096 seek=$((do / 4096 + 100)) conv=notrunc status=none
	expect_status 0 "$IS" --check c.cow
	grep -q 'warning unmapped-data: 8192 bytes' out.txt || fail "unmapped data: $(cat out.txt)"
	expect_status 1 "$IS" --check --strict c.cow
	cp -p --sparse=always c.orig c.cow
	# JSON form.
	truncate -s $((bo + 10)) c.cow
	expect_status 1 "$IS" --check --json c.cow
	json_ok out.txt 1
	if command -v python3 >/dev/null; then
		[ "$(jget out.txt check.status)" = problems ] || fail "json status"
		[ "$(jget out.txt check.findings.0.code)" = short-bitmap ] || fail "json code"
		[ "$(jget out.txt check.findings.0.severity)" = error ] || fail "json severity"
	fi
	# Could not check: not a COW, missing.
	expect_status 2 "$IS" --check back.img
	grep -q 'back.img: not a COW file' err.txt || fail "$(cat err.txt)"
	expect_status 2 "$IS" --check nothere.cow
	grep -q 'nothere.cow: cannot open' err.txt || fail "$(cat err.txt)"
}

run_test t_check_damage
