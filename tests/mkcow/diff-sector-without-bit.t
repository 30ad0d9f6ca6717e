#!/bin/sh
# A v1 COW has no bit for the last sectors of some sizes (the old rounding
# bug): a difference there is refused with the library's reason.  1857
# sectors: the bitmap's 232 bytes end at 512, the data area's start.
. "$(dirname "$0")/functions.sh"

t_diff_sector_without_bit() {
	randfile master.img $((1857 * 512))
	cp master.img image.img
	printf 'x' | dd of=image.img bs=1 seek=$((1857 * 512 - 1)) conv=notrunc status=none
	expect_status 1 "$MKCOW" -V 1 --diff image.img a.cow master.img
	grep -q '^uml_mkcow: a.cow: sector 1856 has no bit in this v1 bitmap' err.txt ||
		fail "$(cat err.txt)"
	only_files . master.img image.img out.txt err.txt
	# The same difference in a v3 COW is fine.
	"$MKCOW" --diff image.img a.cow master.img || fail "v3"
	check_diff image.img a.cow master.img
}

run_test t_diff_sector_without_bit
