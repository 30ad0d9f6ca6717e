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
trap 'chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T" "$T.out"' EXIT
# Interrupted means stop: carrying on would report the killed test as a
# failure with its output already gone and run the rest for nothing.
trap 'exit 130' INT
trap 'exit 143' TERM
export B T
. "$ROOT/tests/lib/common.sh"

fail() { echo "    $*" >&2; exit 1; }
# End the test as skipped, saying why: counted and printed, never a pass.
skip() { echo "    $*" >&2; exit 77; }

# Random bytes of a given size.
randfile() { head -c "$2" /dev/urandom >"$1"; }

# The first scalar value under key $2, at any depth, in the JSON of file $1
# (in document order; empty when there is none).  Through jq, a test
# dependency: strings come unescaped.
json_val() {
	jq -rn --arg k "$2" 'first(inputs | tostream | select(length == 2 and .[0][-1] == $k) | .[1]) // empty' "$1" 2>/dev/null
}
json_num() { json_val "$@"; }
json_str() { json_val "$@"; }

# Run a command, expect exit status $1; stdout in out.txt, stderr in
# err.txt.  A failure must be one line, "TOOL: ..." for our tools; lines
# matching $EXPECT_ALSO (a grep pattern, if set: what another process of
# the tool may add, such as uml_backup's watchdog) are not counted.
expect_status() {
	_es_want=$1
	shift
	"$@" >out.txt 2>err.txt
	_es_got=$?
	[ "$_es_got" = "$_es_want" ] ||
		fail "'$*' exited $_es_got, expected $_es_want: $(cat err.txt)"
	[ "$_es_want" = 0 ] && return 0
	if [ -n "${EXPECT_ALSO:-}" ]; then
		_es_lines=$(grep -cv -e "$EXPECT_ALSO" err.txt)
	else
		_es_lines=$(grep -c '' err.txt)
	fi
	[ "$_es_lines" = 1 ] ||
		fail "'$*': expected a one-line error, got: $(cat err.txt)"
	for _es_a in "$@"; do
		case $_es_a in
		"$B"/bin/*)
			grep -q "^${_es_a##*/}: " err.txt ||
				fail "'$*': error not '${_es_a##*/}: ...': $(cat err.txt)"
			break ;;
		esac
	done
}

# No files other than those listed in the directory, hidden ones included.
only_files() {
	_of_dir=$1
	shift
	_of_got=$(cd "$_of_dir" && ls -A | sort | tr '\n' ' ')
	_of_want=$(printf '%s\n' "$@" | sed '/^$/d' | sort | tr '\n' ' ')
	[ "$_of_got" = "$_of_want" ] || fail "files in $_of_dir: '$_of_got', expected '$_of_want'"
}

# As an unprivileged user, even when the tests run as root.
as_nobody() {
	if [ "$(id -u)" = 0 ]; then
		setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"
	else
		"$@"
	fi
}

run_tests() {
_rs_all=$(sed -n 's/^\(t_[A-Za-z0-9_]*\)() {$/\1/p' "$0")
[ $# -gt 0 ] && _rs_all="$*"

_rs_pass=0 _rs_failed=0 _rs_skipped=0
for _rs_t in $_rs_all; do
	chmod -R u+rwX "$T" 2>/dev/null
	rm -rf "${T:?}"/* "$T"/.[!.]* && mkdir -p "$T"
	_rs_start=$(date +%s)
	(cd "$T" && $_rs_t) >"$T.out" 2>&1
	_rs_status=$?
	_rs_secs=$(($(date +%s) - _rs_start))
	if [ $_rs_status = 0 ] && grep -q '^SKIP' "$T.out"; then
		# Visible: a test that did not (fully) run is not a pass.
		echo "SKIP: $_rs_t ($_rs_secs s): $(grep -m 1 '^SKIP' "$T.out" | sed 's/^SKIP:* *//')"
		_rs_skipped=$((_rs_skipped + 1))
	elif [ $_rs_status = 0 ]; then
		echo "PASS: $_rs_t ($_rs_secs s)"
		_rs_pass=$((_rs_pass + 1))
	elif [ $_rs_status = 77 ]; then
		echo "SKIP: $_rs_t: $(tail -n 1 "$T.out" | sed 's/^ *//')"
		_rs_skipped=$((_rs_skipped + 1))
	else
		echo "FAIL: $_rs_t ($_rs_secs s)"
		sed 's/^/    /' "$T.out" | tail -n 40
		_rs_failed=$((_rs_failed + 1))
	fi
	rm -f "$T.out"
done
echo "$SUITE: $_rs_pass passed, $_rs_failed failed, $_rs_skipped skipped"
[ $_rs_failed -eq 0 ]
}
