#!/bin/sh
# make bench: benchmarks against the real peers, in one run, on a cached
# realistic workload.  Writes BENCHMARKS.md.
#   bench/run.sh BUILD_DIR [BENCH...]      (BENCH: names of bench/b_*.sh)
#   BENCH_BEFORE=OLD_BUILD_DIR bench/run.sh BUILD_DIR backup chain xstream
#       before/after mode: the same figures for an older build (made from an
#       older commit, e.g. a `git worktree add --detach`) and BUILD_DIR, in
#       one run, alternating, with the physical floor beside them; written as
#       a section of its own (bench/results/NAME.vs.md) after NAME's.
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
BEFORE=
[ -z "${BENCH_BEFORE:-}" ] || BEFORE=$(cd "$BENCH_BEFORE" && pwd)
export B T CACHE BEFORE
. "$ROOT/tests/lib/common.sh"
. "$ROOT/bench/workload.sh"

# CPU seconds (user + system) of the shell's waited-for children so far,
# into _cpu; the difference of two readings is what the commands between
# them used (10 ms ticks).  Not in a command substitution: a subshell's
# count starts at zero.
cpu_now() {
	times >"$T/cpu.now"
	_cpu=$(awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); n += p[1] * 60 + p[2] } printf "%.3f\n", n }' "$T/cpu.now")
}

# Median of the numbers in a file, with three decimals.
median_of() { sort -n "$1" | awk '{ a[NR] = $1 } END { if (NR) printf "%.3f\n", a[int((NR + 1) / 2)]; else print "n/a" }'; }

# Median wall time in seconds of a command run REPEAT times; PREP, when
# set, runs before each repetition, untimed (e.g. removing the output).
# With BUILDS set to two build directories (before/after mode), the runs
# alternate between them, the order turned round every round (ABBA), BB
# is the build of each run (for a command that is a function reading it),
# and one median per build is printed, in BUILDS' order.  The medians of
# the CPU time the runs used go to $T/cpu.medians, in the same order.
#   t=$(median_time CMD...)
median_time() {
	_mt_builds=${BUILDS:-$B}
	_mt_k=0
	for BB in $_mt_builds; do
		_mt_k=$((_mt_k + 1))
		: >"$T/times.$_mt_k"
		: >"$T/cpus.$_mt_k"
	done
	_mt_i=0
	while [ "$_mt_i" -lt "$REPEAT" ]; do
		_mt_order=$(_mt_k=0; for _mt_b in $_mt_builds; do _mt_k=$((_mt_k + 1)); echo "$_mt_k $_mt_b"; done)
		[ $((_mt_i % 2)) -eq 1 ] && _mt_order=$(echo "$_mt_order" | sort -rn)
		while read -r _mt_k BB; do
			export BB
			[ -n "${PREP:-}" ] && sh -c "$PREP"
			cpu_now
			_mt_c=$_cpu
			_mt_a=$(date +%s%N)
			"$@" >/dev/null 2>"$T/err" </dev/null || { cat "$T/err" >&2; echo "bench: failed: $* (build $BB)" >&2; return 1; }
			_mt_b=$(date +%s%N)
			cpu_now
			echo $(( _mt_b - _mt_a )) >>"$T/times.$_mt_k"
			awk -v a="$_mt_c" -v b="$_cpu" 'BEGIN { printf "%.3f\n", b - a }' >>"$T/cpus.$_mt_k"
		done <<EOS
$_mt_order
EOS
		_mt_i=$((_mt_i + 1))
	done
	_mt_k=0
	: >"$T/cpu.medians"
	for _mt_b in $_mt_builds; do
		_mt_k=$((_mt_k + 1))
		median_of "$T/cpus.$_mt_k" >>"$T/cpu.medians"
		sort -n "$T/times.$_mt_k" | awk '{ a[NR] = $1 } END { printf "%.3f\n", a[int((NR + 1) / 2)] / 1e9 }'
	done | paste -sd' '
	_mt_cm=$(paste -sd' ' "$T/cpu.medians")
	echo "$_mt_cm" >"$T/cpu.medians"
}

# Peak resident set size in KiB of one run of a command.
peak_rss_kib() {
	/usr/bin/time -f '%M' -o "$T/rss" "$@" >/dev/null 2>&1 || return 1
	tail -n 1 "$T/rss"
}

# Read every allocated extent of each file once, holes skipped: the floor
# of a pass over a sparse file's data (python's start, about 20 ms, included).
read_extents() {
	python3 - "$@" <<'EOS'
import os, sys
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY)
    end = os.fstat(fd).st_size
    off = 0
    while off < end:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        h = os.lseek(fd, d, os.SEEK_HOLE)
        p = d
        while p < h:
            n = len(os.pread(fd, min(1 << 20, h - p), p))
            if n == 0:
                break
            p += n
        off = h
    os.close(fd)
EOS
}

# Before/after mode: the header of a table and one row of it (what, the
# two medians of wall time, after / before, the same for CPU time, the
# floor and each wall time against it; "-" for none).
#   vs_head UNIT; vs_row WHAT BEFORE AFTER [FLOOR [CPU_BEFORE CPU_AFTER]]
vs_head() {
	emit "| what | before ($1) | after ($1) | after / before | CPU before (s) | CPU after (s) | CPU after / before | floor ($1) | before / floor | after / floor |"
	emit "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
}
vs_row() {
	_vr_cpu="- | - | -"
	[ -z "${5:-}" ] || _vr_cpu="$5 | $6 | $(ratio "$6" "$5")"
	_vr_fl="- | - | -"
	[ -z "${4:-}" ] || _vr_fl="$4 | $(ratio "$2" "$4") | $(ratio "$3" "$4")"
	emit "| $1 | $2 | $3 | $(ratio "$3" "$2") | $_vr_cpu | $_vr_fl |"
}

# Before/after mode: the last commit that changed the sources a build
# directory was made from (the build's source tree is its parent; bench/
# and BENCHMARKS.md left out), marked when they differ from it.
vs_label() {
	_vl=$(git -C "$1/.." log -1 --format=%h -- . ':!bench' ':!BENCHMARKS.md' 2>/dev/null) || { echo "$1"; return; }
	if [ -n "$(git -C "$1/.." status --porcelain --untracked-files=no -- . ':!bench' ':!BENCHMARKS.md' 2>/dev/null)" ]; then
		_vl="$_vl with uncommitted changes"
	fi
	echo "\`$_vl\`"
}

# Before/after mode: which side a run's build is (for per-side file names).
side() { if [ "$BB" = "$B" ]; then echo after; else echo before; fi; }

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
	echo "bench: $b${BEFORE:+ (before/after: $BEFORE)}" >&2
	. "$ROOT/bench/b_$b.sh"
	CURRENT=$b
	fn=bench_$b
	if [ -n "$BEFORE" ]; then
		CURRENT=$b.vs
		fn=bench_${b}_vs
		command -v "$fn" >/dev/null || { echo "bench: $b has no before/after mode" >&2; exit 1; }
	fi
	: >"$RESULTS/$CURRENT.md.tmp"
	emit "<!-- $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r), median of $REPEAT${BEFORE:+, load average at the start $(cut -d' ' -f1-3 /proc/loadavg)} -->"
	"$fn"
	if [ -n "$BEFORE" ]; then
		emit "<!-- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) -->"
		emit ""
	fi
	mv "$RESULTS/$CURRENT.md.tmp" "$RESULTS/$CURRENT.md"
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
	echo "\`bench/run.sh build NAME\`. The sections \"before and after\" compare"
	echo "two builds in one run: \`BENCH_BEFORE=OLD_BUILD_DIR bench/run.sh build"
	echo "backup chain xstream\` (OLD_BUILD_DIR: \`make\` in a worktree of an older commit)."
	echo
	echo "Workload: $(workload_describe)"
	echo
	cat "$RESULTS"/*.md
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "bench: results in $OUT" >&2
