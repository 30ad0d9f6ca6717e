# Shell test runner shared by the suites under tests/.  A suite script sets
# SUITE, sources this file (which takes BUILD_DIR off its arguments and
# sets up B, ROOT and T), defines functions named t_*, and ends with
# `run_tests "$@"`, which runs them (or only those named) and fails if any
# failed:
#   tests/SUITE/run.sh BUILD_DIR [t_NAME...]
# Each test runs in a subshell in an empty scratch directory $T; `fail`
# ends that test only.

B=$(cd "${1:?usage: run.sh BUILD_DIR [TEST...]}" && pwd)
shift
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/ubdk-$SUITE.XXXXXX")
trap 'chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T" "$T.out"' EXIT INT TERM
export B T
. "$ROOT/tests/lib/common.sh"

fail() { echo "    $*" >&2; exit 1; }

# Random bytes of a given size.
randfile() { head -c "$2" /dev/urandom >"$1"; }

run_tests() {
_rs_all=$(sed -n 's/^\(t_[A-Za-z0-9_]*\)() {$/\1/p' "$0")
[ $# -gt 0 ] && _rs_all="$*"

_rs_pass=0 _rs_failed=0
for _rs_t in $_rs_all; do
	chmod -R u+rwX "$T" 2>/dev/null
	rm -rf "${T:?}"/* "$T"/.[!.]* && mkdir -p "$T"
	if (cd "$T" && $_rs_t) >"$T.out" 2>&1; then
		echo "PASS: $_rs_t"
		_rs_pass=$((_rs_pass + 1))
	else
		echo "FAIL: $_rs_t"
		sed 's/^/    /' "$T.out" | tail -n 40
		_rs_failed=$((_rs_failed + 1))
	fi
	rm -f "$T.out"
done
echo "$SUITE: $_rs_pass passed, $_rs_failed failed"
[ $_rs_failed -eq 0 ]
}
