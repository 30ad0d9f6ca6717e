#!/bin/sh
# make bench: benchmarks against the real peers, in one run, on a cached
# realistic workload.  Writes BENCHMARKS.md.
#   bench/run.sh BUILD_DIR [BENCH...]      (BENCH: names of bench/b_*.sh)
# Times are the median of BENCH_REPEAT runs (default 3) with a warm page
# cache; what matters are the ratios between tools measured in the same run.
set -eu

B=$(cd "${1:?usage: run.sh BUILD_DIR [BENCH...]}" && pwd)
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${BENCH_CACHE:-$ROOT/bench/cache}
T=$(mktemp -d "${TMPDIR:-/tmp}/ubdk-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
REPEAT=${BENCH_REPEAT:-3}
OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
export B T CACHE
. "$ROOT/tests/lib/common.sh"
. "$ROOT/bench/workload.sh"

# Median wall time in seconds of a command run REPEAT times; PREP, when
# set, runs before each repetition, untimed (e.g. removing the output).
#   t=$(median_time CMD...)
median_time() {
	_mt_i=0
	: >"$T/times"
	while [ "$_mt_i" -lt "$REPEAT" ]; do
		[ -n "${PREP:-}" ] && sh -c "$PREP"
		_mt_a=$(date +%s%N)
		"$@" >/dev/null 2>"$T/err" || { cat "$T/err" >&2; echo "bench: failed: $*" >&2; return 1; }
		_mt_b=$(date +%s%N)
		echo $(( _mt_b - _mt_a )) >>"$T/times"
		_mt_i=$((_mt_i + 1))
	done
	sort -n "$T/times" | awk '{ a[NR] = $1 } END { printf "%.3f\n", a[int((NR + 1) / 2)] / 1e9 }'
}

# Peak resident set size in KiB of one run of a command.
peak_rss_kib() {
	/usr/bin/time -f '%M' -o "$T/rss" "$@" >/dev/null 2>&1 || return 1
	tail -n 1 "$T/rss"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# Each bench writes its section with emit; sections are kept in
# bench/results/NAME.md, so running one bench keeps the others' results.
RESULTS=$ROOT/bench/results
emit() { printf '%s\n' "$*" >>"$RESULTS/$CURRENT.md.tmp"; }

workload_ensure
mkdir -p "$RESULTS"

benches=$*
[ -n "$benches" ] || benches=$(cd "$ROOT/bench" && ls b_*.sh | sed 's/^b_//; s/\.sh$//')
for b in $benches; do
	echo "bench: $b" >&2
	CURRENT=$b
	: >"$RESULTS/$b.md.tmp"
	emit "<!-- $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r), median of $REPEAT -->"
	. "$ROOT/bench/b_$b.sh"
	"bench_$b"
	mv "$RESULTS/$b.md.tmp" "$RESULTS/$b.md"
done

{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` (bench/run.sh); each section says when and"
	echo "where it ran. Times are medians of warm-cache runs; compare ratios"
	echo "measured in the same run, not absolute times across runs: the"
	echo "machines are shared and noisy."
	echo
	echo "Reproduce everything with \`make bench\`, one benchmark with"
	echo "\`bench/run.sh build NAME\`."
	echo
	echo "Workload: $(workload_describe)"
	echo
	cat "$RESULTS"/*.md
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "bench: results in $OUT" >&2
