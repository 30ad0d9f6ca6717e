#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_known_answers() {
	"$B/tests/backup_kat" || fail "known-answer tests"
}

run_test t_known_answers
