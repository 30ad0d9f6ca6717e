# Chain incrementals (uml_backup -i): a guest on our kernel
# ($B/kernel/linux) with 1 GiB of data in its COW changes about 1% of it
# between backups (164 scattered writes of 4..64 KiB, each at a 64 KiB
# boundary, so 164 chunks of 64 KiB change).
#   - tracking source (live, the kernel's changed-block tracking): bytes
#     read and stored per incremental against the changed bytes rounded up
#     to 64 KiB (target: within 1.2x), and its whole run against a full
#     backup of the same guest (target: at least 10x faster);
#   - comparison source (--offline, the tracking record moved away):
#     stored bytes against the changed (within 1.2x), time against the
#     floor, reading every allocated extent of the COW once (within 1.5x);
#     page cache warm for both.
# Needs nothing cached: the guest fills its disk itself.

# The writes of one round, as a guest script; prints the changed bytes
# rounded up to 64 KiB.  164 distinct blocks of the 16384.
_ch_round() {
	python3 - "$1" "$2" <<'EOS'
import random, sys
path, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
blocks = rng.sample(range(16384), 164)
with open(path, "w") as f:
    for b in blocks:
        k = rng.randint(1, 16)
        f.write("dd if=/dev/urandom of=/dev/ubda bs=4096 seek=%d count=%d "
                "conv=notrunc oflag=direct status=none\n" % (b * 16, k))
print(len(blocks) * 65536)
EOS
}

# figures from the last summary in an error file
_ch_read() { sed -n 's/.* \([0-9.]*\) MiB of COW data read.*/\1/p' "$1" | tail -n 1; }
_ch_stored() { sed -En 's/.*stored, ([a-z0-9]+ )?([0-9.]+) MiB;.*/\2/p' "$1" | tail -n 1; }
_ch_bytes() { awk -v m="$1" 'BEGIN { printf "%.0f", m * 1048576 }'; }

# Boot guest G (umid bench-G) on our kernel over a fresh 1 GiB COW
# $T/G.cow that it fills with random data; then it holds the device open
# (the kernel tracks a device while it is open) and runs each round's
# script $T/G.d/round.N as it appears, until $T/G.d/end.  Sets _pid_G.
_ch_boot() {
	truncate -s 1G "$T/$1.img"
	"$B/bin/uml_mkcow" -q "$T/$1.cow" "$T/$1.img" || return 1
	mkdir -p "$T/$1.d"
	# Not guest_prologue: its tmpfs on /tmp would hide $T from the guest.
	cat >"$T/$1-init.sh" <<EOS
#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc 2>/dev/null
dd if=/dev/urandom of=/dev/ubda bs=1M count=1024 oflag=direct status=none
sync
exec 3</dev/ubda
echo FILLED
r=0
while :; do
	r=\$((r + 1))
	# $T/$1.d through hostfs: polled by listing it, which always asks the host.
	while ! ls "$T/$1.d" | grep -qx "round.\$r"; do
		ls "$T/$1.d" | grep -qx end && break 2
		sleep 0.02
	done
	sh "$T/$1.d/round.\$r"
	sync
	echo "ROUND-DONE \$r"
done
exec 3<&-
sync
echo GUEST-DONE
poweroff -f
EOS
	UML=$_ours UML_MEM=256M UML_TIMEOUT=900 uml_boot "bench-$1" "$T/$1-init.sh" "$T/$1.log" \
		ubda="$T/$1.cow,$T/$1.img" &
	eval "_pid_$1=\$!"
}

# Wait for a line of guest G's console.
#   _ch_wait_log G PATTERN
_ch_wait_log() {
	_wl=0
	while ! grep -q "$2" "$T/$1.log" 2>/dev/null; do
		_wl=$((_wl + 1))
		[ $_wl -lt 30000 ] || { echo "bench: chain: guest $1: no '$2'" >&2; return 1; }
		eval "kill -0 \$_pid_$1" 2>/dev/null || { tail "$T/$1.log" >&2; return 1; }
		sleep 0.02
	done
}

# Round R's writes to each guest named; prints the changed bytes.
#   _ch_write R G...
_ch_write() {
	_wr=$1
	shift
	_chg=$(_ch_round "$T/round.$_wr" "$_wr") || return 1
	for _g in "$@"; do
		cp "$T/round.$_wr" "$T/$_g.d/round.$_wr.tmp"
		mv "$T/$_g.d/round.$_wr.tmp" "$T/$_g.d/round.$_wr"
	done
	for _g in "$@"; do _ch_wait_log "$_g" "ROUND-DONE $_wr" || return 1; done
	echo "$_chg"
}

# Stop each guest named and move its tracking record away (so that the next
# incremental compares).
_ch_end() {
	for _g in "$@"; do touch "$T/$_g.d/end"; done
	for _g in "$@"; do
		eval "wait \$_pid_$_g"
		grep -q GUEST-DONE "$T/$_g.log" || { tail "$T/$_g.log" >&2; return 1; }
		mv "$T/$_g.cow.cbt" "$T/$_g.cow.cbt.away"
	done
}

# An incremental (or full) point of guest G, live, into CHAIN by build BB;
# prints its wall and CPU times; its messages in $T/ch.err.
#   _ch_point G CHAIN
_ch_point() {
	cpu_now
	_c0=$_cpu
	_t0=$(date +%s%N)
	"$BB/bin/uml_backup" -i -u "$T/uml" "bench-$1" "$2" 2>"$T/ch.err" ||
		{ cat "$T/ch.err" >&2; return 1; }
	_t1=$(date +%s%N)
	cpu_now
	awk -v a="$_t0" -v b="$_t1" -v c="$_c0" -v d="$_cpu" 'BEGIN { printf "%.3f %.3f\n", (b - a) / 1e9, d - c }'
}
# The comparison source's point, offline (timed by median_time).
_ch_offline() { "$BB/bin/uml_backup" -i --offline "$T/$1.cow" "$2" 2>"$T/ch.err.$(side)"; }

bench_chain() {
	_ours=$B/kernel/linux
	[ -x "$_ours" ] || { echo "bench: chain: no $_ours (make kernel)" >&2; return 1; }
	BB=$B
	_ch_boot ch || return 1
	_ch_wait_log ch FILLED || return 1
	_data=$(( $("$B/tests/cowutil" info "$T/ch.cow" | sed -n 's/^cow_sectors=//p') * 512 ))

	# The full point, timed (its page cache warm: the guest just wrote it).
	_t_full=$(_ch_point ch "$T/chain") || return 1
	_t_full=${_t_full%% *}

	: >"$T/ch.rows"
	for r in 1 2 3; do
		_chg=$(_ch_write $r ch) || return 1
		_t=$(_ch_point ch "$T/chain") || return 1
		_t=${_t%% *}
		grep -q "changes: tracking" "$T/ch.err" || { cat "$T/ch.err" >&2; echo "bench: chain: round $r did not track" >&2; return 1; }
		echo "$r $_chg $(_ch_bytes "$(_ch_read "$T/ch.err")") $(_ch_bytes "$(_ch_stored "$T/ch.err")") $_t" >>"$T/ch.rows"
	done

	# The comparison source: the guest gone, its record moved away.
	_chg_c=$(_ch_write 4 ch) || return 1
	_ch_end ch || return 1
	read_extents "$T/ch.cow"
	_t_floor=$(median_time read_extents "$T/ch.cow")
	_t_cmp=$(REPEAT=1 median_time _ch_offline ch "$T/chain") || return 1
	grep -q "changes: comparison" "$T/ch.err.after" || { cat "$T/ch.err.after" >&2; return 1; }
	_st_c=$(_ch_bytes "$(_ch_stored "$T/ch.err.after")")

	mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
	emit "## Chain incrementals: tracking and comparison sources"
	emit ""
	emit "A guest on our kernel with $(mib "$_data") MiB of data in its 1 GiB COW; between"
	emit "backups it makes 164 writes of 4..64 KiB, each at its own 64 KiB boundary"
	emit "(1% of the disk; \"changed\" is those 164 chunks, 10.25 MiB). A full point of"
	emit "it (\`uml_backup -i\`, live) took $_t_full s."
	emit ""
	emit "| source | round | changed (64 KiB chunks) | read | read / changed | stored | stored / changed | time | full / this |"
	emit "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	while read -r r chg rd st t; do
		emit "| tracking (live) | $r | $(mib "$chg") MiB | $(mib "$rd") MiB | $(ratio "$rd" "$chg") | $(mib "$st") MiB | $(ratio "$st" "$chg") | $t s | $(ratio "$_t_full" "$t") |"
	done <"$T/ch.rows"
	emit "| comparison (--offline) | 4 | $(mib "$_chg_c") MiB | all data | - | $(mib "$_st_c") MiB | $(ratio "$_st_c" "$_chg_c") | $_t_cmp s | $(ratio "$_t_full" "$_t_cmp") |"
	emit ""
	emit "Comparison source against its floor, reading every allocated extent of"
	emit "the COW once (page cache warm for both): $_t_cmp s vs $_t_floor s,"
	emit "$(ratio "$_t_cmp" "$_t_floor") times (target 1.5). Targets: tracking reads and stores within"
	emit "1.2 times the changed chunks and runs at least 10 times faster than a full"
	emit "point; comparison stores within 1.2 times."
	emit ""
	emit "Reproduce: \`bench/run.sh build chain\`."
	emit ""
}

# Before/after mode: two guests on our kernel side by side, the same writes
# in each, one backed up by each build (so that each chain's tracking
# checkpoint stays its own); full points, tracking rounds and comparisons
# alternate between the builds, the order turned round every round.
bench_chain_vs() {
	_ours=${BENCH_KERNEL:-$B/kernel/linux}
	[ -x "$_ours" ] || { echo "bench: chain: no $_ours (make kernel, or BENCH_KERNEL=PATH)" >&2; return 1; }
	_ch_boot chb || return 1
	_ch_boot cha || return 1
	_ch_wait_log chb FILLED || return 1
	_ch_wait_log cha FILLED || return 1
	_data=$(( $("$B/tests/cowutil" info "$T/cha.cow" | sed -n 's/^cow_sectors=//p') * 512 ))
	_fl_full=$(PREP="rm -f $T/floor.cow" median_time sh -c "cp --sparse=always '$T/cha.cow' '$T/floor.cow' && sync '$T/floor.cow'")
	rm -f "$T/floor.cow"
	_ch_order() { if [ $(($1 % 2)) -eq 0 ]; then echo "before after"; else echo "after before"; fi; }
	_ch_guest() { if [ "$1" = before ]; then echo chb; else echo cha; fi; }
	_ch_build() { if [ "$1" = before ]; then echo "$BEFORE"; else echo "$B"; fi; }

	# Full points: each build backs up both guests REPEAT times, into a
	# throwaway chain, so that what differs between the guests (their COW
	# files, their place in memory) weighs on both builds alike; measured
	# with one guest per build, a full point's CPU time came out 2 times
	# apart in both directions run to run.  Then each build's own guest
	# once more, untimed: a full point is the base of the tracking rounds,
	# and its checkpoint must be the chain's own.
	: >"$T/full.before"
	: >"$T/full.after"
	_r=0
	while [ $_r -lt "$REPEAT" ]; do
		_gs="chb cha"
		[ $(((_r / 2) % 2)) -eq 0 ] || _gs="cha chb"
		for _s in $(_ch_order $_r); do
			for _g in $_gs; do
				rm -rf "$T/chain.x"
				BB=$(_ch_build $_s) _ch_point "$_g" "$T/chain.x" >>"$T/full.$_s" || return 1
			done
		done
		_r=$((_r + 1))
	done
	rm -rf "$T/chain.x"
	for _s in before after; do
		rm -rf "$T/chain.$_s"
		BB=$(_ch_build $_s) _ch_point "$(_ch_guest $_s)" "$T/chain.$_s" >/dev/null || return 1
	done

	# Tracking rounds: the same writes in both guests, then a point of each.
	for _s in before after; do : >"$T/trk.$_s"; done
	_r=1
	while [ $_r -le "$REPEAT" ]; do
		_chg=$(_ch_write $_r chb cha) || return 1
		for _s in $(_ch_order $_r); do
			_t=$(BB=$(_ch_build $_s) _ch_point "$(_ch_guest $_s)" "$T/chain.$_s") || return 1
			grep -q "changes: tracking" "$T/ch.err" ||
				{ cat "$T/ch.err" >&2; echo "bench: chain: round $_r did not track ($_s)" >&2; return 1; }
			echo "$_t $(_ch_bytes "$(_ch_read "$T/ch.err")") $(_ch_bytes "$(_ch_stored "$T/ch.err")")" >>"$T/trk.$_s"
		done
		_r=$((_r + 1))
	done

	# Comparison: one more round of writes, the guests gone, their records
	# moved away; each side's point repeated from a saved copy of its chain.
	_chg_c=$(_ch_write $_r chb cha) || return 1
	_ch_end chb cha || return 1
	for _s in before after; do cp -a "$T/chain.$_s" "$T/chain.$_s.save"; done
	read_extents "$T/cha.cow"
	_fl_cmp=$(median_time read_extents "$T/cha.cow")
	_ch_offline_side() { _ch_offline "$(_ch_guest "$(side)")" "$T/chain.$(side)"; }
	set -- $(PREP='s=before; [ "$BB" = "$B" ] && s=after; rm -rf "$T/chain.$s" && cp -a "$T/chain.$s.save" "$T/chain.$s"' \
		BUILDS="$BEFORE $B" median_time _ch_offline_side) || return 1
	_t_cmp_b=$1 _t_cmp_a=$2
	read -r _c_cmp_b _c_cmp_a <"$T/cpu.medians"
	for _s in before after; do
		grep -q "changes: comparison" "$T/ch.err.$_s" || { cat "$T/ch.err.$_s" >&2; return 1; }
	done

	_med() { awk -v k="$1" '{ print $k }' "$2" | sort -n | awk '{ a[NR] = $1 } END { printf "%.3f\n", a[int((NR + 1) / 2)] }'; }
	_medb() { _med "$1" "$2" | awk '{ printf "%.0f\n", $1 }'; }
	mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
	emit "## Chain incrementals, before and after"
	emit ""
	emit "The figures of \"Chain incrementals\" by two builds in one run: two guests on"
	emit "one kernel ($(vs_label "$(dirname "$(dirname "$_ours")")")), each with $(mib "$_data") MiB of data in its"
	emit "1 GiB COW and the same 164 writes per round (10.25 MiB of changed 64 KiB"
	emit "chunks), one backed up by each build: before is $(vs_label "$BEFORE"), after"
	emit "$(vs_label "$B"). Medians of $((REPEAT * 2)) full points (each build backs up both"
	emit "guests $REPEAT times), $REPEAT tracking rounds and $REPEAT comparisons per build,"
	emit "the builds alternating. Floors: a durable copy of"
	emit "the COW's data (\`cp --sparse=always\` + \`sync\`, guest running) for a full"
	emit "point, reading its allocated extents once for the comparison. CPU:"
	emit "user + system time of each run."
	emit ""
	vs_head s
	vs_row "full point (\`uml_backup -i\`, live)" "$(_med 1 "$T/full.before")" "$(_med 1 "$T/full.after")" "$_fl_full" \
		"$(_med 2 "$T/full.before")" "$(_med 2 "$T/full.after")"
	vs_row "tracking (live)" "$(_med 1 "$T/trk.before")" "$(_med 1 "$T/trk.after")" "" \
		"$(_med 2 "$T/trk.before")" "$(_med 2 "$T/trk.after")"
	vs_row "comparison (\`--offline\`)" "$_t_cmp_b" "$_t_cmp_a" "$_fl_cmp" "$_c_cmp_b" "$_c_cmp_a"
	emit ""
	emit "Bytes per tracking round (medians; changed: $(mib "$_chg") MiB): read $(mib "$(_medb 3 "$T/trk.before")") /"
	emit "$(mib "$(_medb 3 "$T/trk.after")") MiB, stored $(mib "$(_medb 4 "$T/trk.before")") / $(mib "$(_medb 4 "$T/trk.after")") MiB; comparison stored"
	emit "$(mib "$(_ch_bytes "$(_ch_stored "$T/ch.err.before")")") / $(mib "$(_ch_bytes "$(_ch_stored "$T/ch.err.after")")") MiB of $(mib "$_chg_c") MiB changed (before / after)."
	emit ""
	emit "Reproduce: \`git worktree add --detach /tmp/before OLD && make -C /tmp/before -j2\`,"
	emit "then \`make kernel && BENCH_BEFORE=/tmp/before/build bench/run.sh build chain\`"
	emit "(OLD: the before commit; BENCH_KERNEL=PATH: another kernel for both guests)."
	emit ""
}
