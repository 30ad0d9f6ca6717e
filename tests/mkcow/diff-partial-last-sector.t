#!/bin/sh
# A size that is not whole sectors: the last, partial sector is compared
# and written like the others.
. "$(dirname "$0")/functions.sh"

t_diff_partial_last_sector() {
	randfile master.img $((1048576 + 100))
	cp master.img image.img
	printf 'Z' | dd of=image.img bs=1 seek=$((1048576 + 99)) conv=notrunc status=none
	printf 'Z' | dd of=image.img bs=1 seek=5 conv=notrunc status=none
	"$MKCOW" --diff image.img a.cow master.img || fail "--diff"
	changed_runs image.img master.img >want.runs
	"$COWUTIL" runs a.cow | cmp -s - want.runs || fail "runs: $("$COWUTIL" runs a.cow)"
	"$COWUTIL" merged a.cow merged.img && cmp merged.img image.img || fail "merged view"
}

run_test t_diff_partial_last_sector
