#!/bin/sh
# A COW cut inside its data area: a sector marked present whose data lies
# past the end of the file.  Refused before anything is written.
. "$(dirname "$0")/functions.sh"

t_cow_cut_in_data() {
	make_synth 4 0
	randfile chunk 4096
	"$COWUTIL" write c.cow $MiB chunk || fail "cowutil write"
	truncate -s 200000 c.cow
	before=$(snap master.img c.cow)
	expect_status 3 timeout 10 "$MOO" c.cow new.img
	err_names c.cow
	grep -q 'past the end' err.txt || fail "reason not given: $(cat err.txt)"
	expect_status 3 timeout 10 "$MOO" -d c.cow
	err_names c.cow
	expect_status 3 timeout 10 "$MOO" --verify -d c.cow
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
	cmp -s master.img master.orig || fail "the backing changed"
	only_files . master.img master.orig c.cow c.orig exp.img chunk out.txt err.txt
}

run_test t_cow_cut_in_data
