#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_xstream_unit() {
	ASAN_OPTIONS=detect_leaks=1 "$B/tests/xs_test" || fail "extent stream tests"
}

run_test t_xstream_unit
