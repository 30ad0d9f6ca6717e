#!/bin/sh
# No leaks (valgrind): -d's list was strdup'ed and never freed.
. "$(dirname "$0")/functions.sh"

t_no_leaks() {
	command -v valgrind >/dev/null || skip "no valgrind"
	small_cow x
	expect_status 0 valgrind -q --leak-check=full --show-leak-kinds=definite \
		--errors-for-leak-kinds=definite --error-exitcode=99 \
		"$BK" -q -d 0,1 --offline "$T/x.cow" "$T/b"
	[ ! -s err.txt ] || fail "valgrind: $(cat err.txt)"
}

run_test t_no_leaks
