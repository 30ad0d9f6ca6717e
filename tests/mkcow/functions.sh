# The mkcow suite: what its tests (tests/mkcow/*.t) share; each test sources
# this file, tests/lib/tap.sh runs it.
#
# Tests of uml_mkcow through its command line: drop-in behaviour against
# uml-utilities, mass cloning with real guests, atomicity, bad input, rebase.
#   prove -j2 --directives --comments tests/mkcow/   (make check-mkcow)
#   prove -v tests/mkcow/NAME.t                    (one test; B=BUILD_DIR)
set -u

SUITE=mkcow
. "$(dirname "$0")/../lib/tap.sh"

MKCOW=$B/bin/uml_mkcow
COWUTIL=$B/tests/cowutil
PEER_MKCOW=/usr/bin/uml_mkcow

# --diff: the sectors where IMAGE differs from BACKING, as "START COUNT"
# lines like `cowutil runs` prints (cmp -l reads both files: small ones).
#   changed_runs IMAGE BACKING [SECTORSIZE]
changed_runs() {
	cmp -l "$1" "$2" | awk -v ss="${3:-512}" '
		BEGIN { last = -2 }
		{ s = int(($1 - 1) / ss) }
		s == last { next }
		s == last + 1 { n++; last = s; next }
		{ if (last >= 0) print start, n; start = s; n = 1; last = s }
		END { if (last >= 0) print start, n }'
}

# The COW --diff made: its sectors are exactly the changed ones, the merge
# (uml-utilities' uml_moo and ours) is IMAGE, and the kernel would take it.
check_diff() {
	_cd_img=$1 _cd_cow=$2 _cd_back=$3
	changed_runs "$_cd_img" "$_cd_back" >want.runs
	"$COWUTIL" runs "$_cd_cow" >got.runs || fail "cowutil runs"
	cmp -s want.runs got.runs ||
		fail "COW sectors: $(head -c 300 got.runs | tr '\n' ' ') expected $(head -c 300 want.runs | tr '\n' ' ')"
	"$COWUTIL" check "$_cd_cow" >/dev/null || fail "backing check of the new COW"
	rm -f merged.img
	uml_moo "$_cd_cow" merged.img >/dev/null || fail "uml_moo (uml-utilities)"
	cmp merged.img "$_cd_img" || fail "merged (uml-utilities) differs from the image"
	rm -f merged.img
	"$B/bin/uml_moo" -q "$_cd_cow" merged.img || fail "uml_moo (ours)"
	cmp merged.img "$_cd_img" || fail "merged (ours) differs from the image"
	rm -f merged.img
}
