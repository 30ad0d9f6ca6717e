#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_mconsole_client() {
	"$B/tests/mconsole_test" "$T" || fail "mconsole unit tests"
}

run_test t_mconsole_client
