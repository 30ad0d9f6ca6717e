# The harness of the shell suites: each test is one file,
# tests/SUITE/NAME.t, which sources its suite's functions.sh (which sources
# this file), defines one function t_NAME and ends with `run_test t_NAME`.
# It prints TAP (one test point, or a plan of 0 when skipped) for prove:
#   prove -j2 --directives --comments tests/SUITE/  (make check-SUITE: prove-suite.sh)
#   prove -v tests/SUITE/NAME.t                     (one test, its output shown)
#   tests/SUITE/NAME.t                              (the same without prove)
# B names the build directory (default: build at the top of the tree).
# The test runs in a subshell in an empty scratch directory $T of its own,
# removed afterwards; `fail` ends it, `skip` ends it as skipped.

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=$(cd "${B:-$ROOT/build}" 2>/dev/null && pwd) ||
	{ echo "Bail out! no build directory ${B:-$ROOT/build}: run make, or set B"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/ubdk-$SUITE.XXXXXX")
trap 'chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T" "$T.out"' EXIT
# Interrupted means stop: the scratch directory goes, nothing else runs.
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

# Run test function $1 in $T and say how it went, in TAP.  A test that
# printed a line starting with SKIP (a part it could not run) is not a
# pass: it is reported skipped, with that reason (prove --directives shows
# it).  A failure's output follows as TAP comments (prove --comments);
# with TEST_VERBOSE (prove -v) any test's output does.
run_test() {
	_rt_start=$(date +%s)
	(cd "$T" && "$1") >"$T.out" 2>&1
	_rt_status=$?
	_rt_secs=$(($(date +%s) - _rt_start))
	if [ $_rt_status = 77 ]; then
		echo "1..0 # SKIP $1: $(tail -n 1 "$T.out" | sed 's/^ *//; s/^SKIP:* *//')"
	elif [ $_rt_status = 0 ] && grep -q '^SKIP' "$T.out"; then
		echo "1..1"
		echo "ok 1 - $1 ($_rt_secs s) # SKIP $(grep -m 1 '^SKIP' "$T.out" | sed 's/^SKIP:* *//')"
	elif [ $_rt_status = 0 ]; then
		echo "1..1"
		echo "ok 1 - $1 ($_rt_secs s)"
	else
		echo "1..1"
		echo "not ok 1 - $1 ($_rt_secs s, exit $_rt_status)"
	fi
	if [ $_rt_status != 0 ] && [ $_rt_status != 77 ] || [ -n "${TEST_VERBOSE:-}" ]; then
		sed 's/^/# /' "$T.out"
	fi
	rm -f "$T.out"
	[ $_rt_status = 0 ] || [ $_rt_status = 77 ]
}
