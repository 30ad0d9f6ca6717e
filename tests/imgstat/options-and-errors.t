#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_options_and_errors() {
	make_pair
	expect_status 2 "$IS"
	expect_status 2 "$IS" --bogus c.cow
	grep -q "option '--bogus' is unknown" err.txt || fail "$(cat err.txt)"
	expect_status 2 "$IS" -x c.cow
	expect_status 2 "$IS" --map --align 0 c.cow
	expect_status 2 "$IS" --map --gap -5 c.cow
	expect_status 2 "$IS" --strict c.cow
	expect_status 2 "$IS" -b back.img c.cow c.cow
	expect_status 0 "$IS" --help
	grep -q '^Usage: uml_imgstat' out.txt || fail help
	expect_status 0 "$IS" --version
	grep -q '^uml_imgstat (ubdkit) ' out.txt || fail version
	# Several files, one missing: the others are still described.
	"$IS" c.cow nothere.img back.img >out.txt 2>err.txt
	[ $? = 2 ] || fail "exit status with a missing file"
	[ "$(wc -l <err.txt)" = 1 ] && grep -q '^uml_imgstat: nothere.img: cannot open: No such file' err.txt ||
		fail "error: $(cat err.txt)"
	grep -q '^c.cow: UML COW file' out.txt && grep -q '^back.img: raw disk image' out.txt ||
		fail "other files not described"
	"$IS" --json c.cow nothere.img back.img >out.txt 2>/dev/null
	json_ok out.txt 3
	sed -n 2p out.txt | grep -q '"error":"nothere.img: cannot open' || fail "json error"
	# A directory, an empty file, a truncated header.
	mkdir d
	expect_status 2 "$IS" d
	: >empty
	expect_status 0 "$IS" empty
	head -c 100 c.cow >short.cow
	expect_status 2 "$IS" short.cow
	grep -q 'short.cow' err.txt || fail "$(cat err.txt)"
	expect_status 1 "$IS" --check short.cow
	grep -q 'error short-header' out.txt || fail "$(cat out.txt)"
	# Modes combine, in one document per file.
	expect_status 0 "$IS" --stat --map --check --json c.cow
	json_ok out.txt 1
	for k in '"header":' '"map":' '"check":' '"content":'; do
		grep -q "$k" out.txt || fail "missing $k"
	done
}

run_test t_options_and_errors
