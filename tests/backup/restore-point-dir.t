#!/bin/sh
# restore takes a point directory as verify and export do: a plain
# backup's, a chain point's (its chain applied), one device of several
# chosen with -d; the result is the COW that was backed up.
. "$(dirname "$0")/functions.sh"

t_restore_point_dir() {
	small_cow x
	small_cow y
	printf 'x data' | dd of="$T/x.cow" bs=1 seek=200000 conv=notrunc status=none
	printf 'y data' | dd of="$T/y.cow" bs=1 seek=300000 conv=notrunc status=none
	expect_status 0 "$BK" -q -c --offline "$T/x.cow" "$T/b"
	expect_status 0 "$BK" restore "$T/b" "$T/r.cow"
	cmp "$T/r.cow" "$T/x.cow" || fail "restore of a backup directory differs"
	expect_status 2 "$BK" restore "$T/b"
	err_has "a point directory; name the OUTPUT"
	expect_status 0 "$BK" -q --offline "$T/x.cow" "$T/y.cow" "$T/two"
	expect_status 4 "$BK" restore "$T/two" "$T/r2.cow"
	err_has "2 devices in this backup: choose one with -d"
	expect_status 4 "$BK" restore -d ubd5 "$T/two" "$T/r2.cow"
	err_has "no device ubd5"
	expect_status 0 "$BK" restore -d ubd1 "$T/two" "$T/r2.cow"
	cmp "$T/r2.cow" "$T/y.cow" || fail "restore -d ubd1 differs from the second COW"
	expect_status 2 "$BK" restore -d 0 "$T/b/ubd0.ubdx.lz4" "$T/r3.cow"
	err_has "-d chooses a device of a point directory"
	expect_status 0 "$BK" -q -i -c --offline "$T/x.cow" "$T/chain"
	printf 'later' | dd of="$T/x.cow" bs=1 seek=900000 conv=notrunc status=none
	expect_status 0 "$BK" -q -i -c --offline "$T/x.cow" "$T/chain"
	set -- $(points "$T/chain")
	expect_status 0 "$BK" restore "$T/chain/$2" "$T/r4.cow"
	cmp "$T/r4.cow" "$T/x.cow" || fail "restore of an incremental point directory differs"
}

run_test t_restore_point_dir
