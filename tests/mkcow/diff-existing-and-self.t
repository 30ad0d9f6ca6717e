#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_diff_existing_and_self() {
	randfile master.img 1M
	cp master.img image.img && printf 'x' | dd of=image.img conv=notrunc status=none
	echo "keep me" >a.cow
	expect_status 4 "$MKCOW" --diff image.img a.cow master.img
	grep -q 'a.cow: already exists (use -f' err.txt || fail "$(cat err.txt)"
	[ "$(cat a.cow)" = "keep me" ] || fail "existing COW changed"
	"$MKCOW" -f --diff image.img a.cow master.img || fail "-f"
	check_diff image.img a.cow master.img
	# Where O_TMPFILE is missing: a hidden temporary name, renamed.
	UBDK_NO_TMPFILE=1 "$MKCOW" -f --diff image.img a.cow master.img || fail "named fallback"
	check_diff image.img a.cow master.img
	sum=$(md5sum <image.img)
	expect_status 4 "$MKCOW" -f --diff image.img image.img master.img
	grep -q 'image.img: is the image to diff itself' err.txt || fail "$(cat err.txt)"
	expect_status 4 "$MKCOW" -f --diff image.img master.img master.img
	grep -q 'is the backing file itself' err.txt || fail "$(cat err.txt)"
	[ "$(md5sum <image.img)" = "$sum" ] || fail "image changed"
	# One COW only, and not with --count or --rebase.
	expect_status 2 "$MKCOW" --diff image.img b.cow c.cow master.img
	expect_status 2 "$MKCOW" --diff image.img --count 2 --name 'g%d.cow' master.img
	expect_status 2 "$MKCOW" --diff image.img --rebase master.img a.cow
	expect_status 2 "$MKCOW" --diff
	only_files . master.img image.img a.cow out.txt err.txt want.runs got.runs
}

run_test t_diff_existing_and_self
