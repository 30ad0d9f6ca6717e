#!/bin/sh
# make check-SUITE: the tests of tests/SUITE/ under prove, JOBS at once,
# each test's time, skip and failure output shown; then, after prove's
# closing line, how many were skipped (prove shows each skip, counts none).
#   tests/lib/prove-suite.sh SUITE JOBS     (B: the build directory)
# PROVE_J overrides JOBS; PROVE_FLAGS adds options (-v: every test's output).
set -u
suite=${1:?usage: prove-suite.sh SUITE JOBS} jobs=${PROVE_J:-${2:?usage: prove-suite.sh SUITE JOBS}}
cd "$(dirname "$0")/../.."
log=$(mktemp "${TMPDIR:-/tmp}/ubdk-prove-$suite.XXXXXX")
trap 'rm -f "$log" "$log.rc"' EXIT
# shellcheck disable=SC2086
{ ${PROVE:-prove} -j"$jobs" --directives --comments ${PROVE_FLAGS---timer} "tests/$suite/" 2>&1
	echo $? >"$log.rc"; } | tee "$log"
# A test skipped whole (plan 1..0) and one that skipped a part (ok # SKIP).
whole=$(grep -c '\.\. skipped: ' "$log")
part=$(grep -c '^ok [0-9]* .*# SKIP ' "$log")
echo "$suite: $((whole + part)) skipped"
exit "$(cat "$log.rc")"
