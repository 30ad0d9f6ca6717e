# Live backup (uml_backup): the pause of a guest with a 1 GB dirty COW,
# against the naive `uml_mconsole stop; cp --sparse=always COW; uml_mconsole
# go`, in the same run, while the guest keeps writing; the time to copy the
# COW's allocated data as the floor; compression speed and ratio next to
# the lz4 and gzip programs.
#
# The 1 GB COW is built once and cached: $CACHE/backup-1g.cow is the
# workload's guest.cow plus about 700 MB of real files (/usr/lib/gcc,
# /usr/bin, /usr/libexec, /usr/lib/python3) a linux.uml guest copied in.

BACKUP_WORKLOAD_VERSION=1

backup_workload() {
	_bw=$CACHE/backup-1g.cow
	if [ -f "$CACHE/backup-1g.ok" ] &&
		[ "$(cat "$CACHE/backup-1g.ok")" = "$BACKUP_WORKLOAD_VERSION" ] &&
		"$B/tests/cowutil" check "$_bw" >/dev/null 2>&1; then
		return 0
	fi
	echo "bench: building the 1 GB COW in $_bw (once; a few minutes)" >&2
	rm -f "$CACHE/backup-1g.ok"
	cp --sparse=always "$CACHE/guest.cow" "$_bw" || return 1
	{
		guest_prologue
		cat <<'EOS'
mount /dev/ubda /mnt || { echo "GUEST-ERROR mount"; poweroff -f; }
mkdir -p /mnt/more
cp -a /usr/lib/gcc /usr/bin /usr/libexec /usr/lib/python3 /mnt/more/
umount /mnt
sync
echo "GUEST-DONE"
poweroff -f
EOS
	} >"$T/fill1g.sh"
	UML_MEM=256M UML_TIMEOUT=1800 uml_boot bench-fill1g "$T/fill1g.sh" "$CACHE/fill1g.log" \
		ubda="$_bw,$CACHE/master.img" || true
	grep -q GUEST-DONE "$CACHE/fill1g.log" ||
		{ echo "bench: the filling guest failed, see $CACHE/fill1g.log" >&2; return 1; }
	echo "$BACKUP_WORKLOAD_VERSION" >"$CACHE/backup-1g.ok"
}

# median of numbers on stdin
_bk_median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) printf "%.3f\n", a[int((NR + 1) / 2)]; else print "n/a" }'; }

# The live guest: boots on a copy of the 1 GB COW and keeps writing (an
# fsynced record and 64 KiB of buffered writes, over and over) until
# $T/stop-work appears.  Sets _live, _sock, _guest, _cow_data, _cow_alloc.
_bk_guest_start() {
	backup_workload || return 1
	_live=$T/live.cow
	_sock=$T/uml/bench-bk/mconsole
	cp --sparse=always "$CACHE/backup-1g.cow" "$_live"
	_cow_data=$(( $("$B/tests/cowutil" info "$_live" | sed -n 's/^cow_sectors=//p') * 512 ))
	_cow_alloc=$(( $(stat -c %b "$_live") * 512 ))
	cat >"$T/work.sh" <<EOS
#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc 2>/dev/null
mount /dev/ubda /mnt || { echo GUEST-ERROR; poweroff -f; }
echo GUEST-READY
n=0
while [ ! -e "$T/stop-work" ]; do
	n=\$((n + 1))
	echo "record \$n" | dd of=/mnt/records oflag=append conv=notrunc,fsync status=none
	dd if=/dev/urandom of=/mnt/scratch bs=64k count=1 seek=\$((n % 64)) conv=notrunc status=none
	echo "N \$n"
done
umount /mnt
poweroff -f
EOS
	UML_MEM=256M UML_TIMEOUT=3600 uml_boot bench-bk "$T/work.sh" "$T/work.log" \
		ubda="$_live,$CACHE/master.img" &
	_guest=$!
	_i=0
	until grep -q '^N 5' "$T/work.log" 2>/dev/null; do
		sleep 0.2
		_i=$((_i + 1))
		[ $_i -lt 600 ] || { cat "$T/work.log" >&2; echo "bench: guest did not start" >&2; return 1; }
	done
	cat "$_live" >/dev/null
}

# The guest's loops so far (_n_end), a last backup of it to compress
# ($_cow, holding _data bytes), and the guest stopped.
_bk_guest_stop() {
	_n_end=$(sed -n 's/^N \([0-9]*\).*/\1/p' "$T/work.log" | tail -n 1)
	rm -rf "$T/dest"
	"$B/bin/uml_backup" -q "$_sock" "$T/dest" 2>"$T/err" || { cat "$T/err" >&2; return 1; }
	touch "$T/stop-work"
	wait $_guest
	_cow=$T/dest/ubd0.cow
	_data=$(( $(stat -c %b "$_cow") * 512 ))
}

# The naive backup (stopped for the whole copy) and the floors: copying
# the COW's allocated data with the guest running, and with a sync (the
# floor of a durable backup).  Sets t_naive, t_floor, t_floor_sync and
# their ms_ forms.
_bk_floors() {
	PREP="rm -f $T/naive.cow; sync"
	t_naive=$(median_time sh -c "uml_mconsole '$_sock' stop >/dev/null 2>&1 &&
		cp --sparse=always '$_live' '$T/naive.cow'; uml_mconsole '$_sock' go >/dev/null 2>&1")
	t_floor=$(median_time cp --sparse=always "$_live" "$T/naive.cow")
	t_floor_sync=$(median_time sh -c "cp --sparse=always '$_live' '$T/naive.cow' && sync '$T/naive.cow'")
	unset PREP
	rm -f "$T/naive.cow"
	ms_naive=$(awk -v t="$t_naive" 'BEGIN { printf "%.1f", t * 1000 }')
	ms_floor=$(awk -v t="$t_floor" 'BEGIN { printf "%.1f", t * 1000 }')
	ms_floor_sync=$(awk -v t="$t_floor_sync" 'BEGIN { printf "%.1f", t * 1000 }')
}

# Live backups with each method by the builds in BUILDS (alternating, the
# order turned round every round): the pause from the manifest and the
# whole run (wall and CPU), into $T/pauses.METHOD.SIDE, $T/walls.METHOD.SIDE
# and $T/cpus.METHOD.SIDE.
_bk_live_runs() {
	_bk_builds=${BUILDS:-$B}
	for _m in auto copy compare; do
		for BB in $_bk_builds; do
			: >"$T/pauses.$_m.$(side)"
			: >"$T/walls.$_m.$(side)"
			: >"$T/cpus.$_m.$(side)"
		done
		_r=0
		while [ $_r -lt "$REPEAT" ]; do
			_order=$_bk_builds
			[ $((_r % 2)) -eq 0 ] || _order=$(printf '%s\n' $_bk_builds | tac | paste -sd' ')
			for BB in $_order; do
				rm -rf "$T/dest"
				sync
				cpu_now
				_c=$_cpu
				_a=$(date +%s%N)
				"$BB/bin/uml_backup" -q -j -m $_m "$_sock" "$T/dest" >"$T/m.json" 2>"$T/err" ||
					{ cat "$T/err" >&2; echo "bench: uml_backup failed ($BB)" >&2; return 1; }
				_b=$(date +%s%N)
				cpu_now
				awk -v a="$_c" -v b="$_cpu" 'BEGIN { printf "%.3f\n", b - a }' >>"$T/cpus.$_m.$(side)"
				sed -n 's/.*"pause_ms": \([0-9.]*\).*/\1/p' "$T/m.json" >>"$T/pauses.$_m.$(side)"
				echo $(( (_b - _a) / 1000000 )) >>"$T/walls.$_m.$(side)"
				[ $_m = auto ] && _method=$(sed -n 's/.*"method": "\([a-z]*\)".*/\1/p' "$T/m.json")
			done
			_r=$((_r + 1))
		done
	done
	rm -rf "$T/dest"
}

# The compression step of `uml_backup -c lz4|gzip` on the backup $_cow, by
# the builds in BUILDS, as the manifest times it (reading the copy,
# checksums, compression, fsync) into $T/ct.FORMAT.SIDE, the medians of
# the whole runs' CPU time into $T/ct.FORMAT.cpu; each side's last backup
# stays in $T/dFORMAT.SIDE.
_bk_compress_one() {
	rm -rf "$T/d$_f.$(side)"
	"$BB/bin/uml_backup" -q -j -c $_f "$_cow" "$T/d$_f.$(side)" >"$T/c.json"
	sed -n 's/.*"checksum_compress": \([0-9.]*\).*/\1/p' "$T/c.json" |
		awk '{ printf "%.3f\n", $1 / 1000 }' >>"$T/ct.$_f.$(side)"
}
_bk_compress_runs() {
	for _f in lz4 gzip; do
		for BB in ${BUILDS:-$B}; do : >"$T/ct.$_f.$(side)"; done
		median_time _bk_compress_one >/dev/null || return 1
		cp "$T/cpu.medians" "$T/ct.$_f.cpu"
	done
}
_bk_restore() { "$BB/bin/uml_backup" -q restore "$T/d$_f.$(side)"/ubd0.ubdx.* "$T/r.$(side).cow"; }

# median of numbers on stdin
_bk_median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) printf "%.3f\n", a[int((NR + 1) / 2)]; else print "n/a" }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", a * 100 / b }'; }

bench_backup() {
	_bk_guest_start || return 1
	_bk_floors || return 1
	_bk_live_runs || return 1
	p_auto=$(_bk_median <"$T/pauses.auto.after")
	p_copy=$(_bk_median <"$T/pauses.copy.after")
	p_cmp=$(_bk_median <"$T/pauses.compare.after")
	w_auto=$(_bk_median <"$T/walls.auto.after")
	w_copy=$(_bk_median <"$T/walls.copy.after")
	w_cmp=$(_bk_median <"$T/walls.compare.after")
	_bk_guest_stop || return 1
	_apparent=$(stat -c %s "$_cow")
	_bk_compress_runs || return 1
	t_ours_lz4=$(_bk_median <"$T/ct.lz4.after")
	t_ours_gz=$(_bk_median <"$T/ct.gzip.after")
	s_ours_lz4=$(stat -c %s "$T/dlz4.after/ubd0.ubdx.lz4")
	s_ours_gz=$(stat -c %s "$T/dgzip.after/ubd0.ubdx.gz")
	t_lz4=$(median_time sh -c "lz4 -1 -q -c '$_cow' >'$T/cli.lz4'")
	s_lz4=$(stat -c %s "$T/cli.lz4")
	t_gzip=$(REPEAT=1 median_time sh -c "gzip -6 -c '$_cow' >'$T/cli.gz'")
	s_gzip=$(stat -c %s "$T/cli.gz")
	t_r_lz4=$(_f=lz4 PREP="rm -f $T/r.after.cow" median_time _bk_restore)
	t_r_gz=$(_f=gzip PREP="rm -f $T/r.after.cow" median_time _bk_restore)
	t_d_lz4=$(median_time sh -c "lz4 -d -q -c '$T/cli.lz4' >/dev/null")
	t_d_gz=$(REPEAT=1 median_time sh -c "gunzip -c '$T/cli.gz' >/dev/null")
	rm -rf "$T"/dlz4.* "$T"/dgzip.* "$T/cli.lz4" "$T/cli.gz" "$T"/r.*.cow "$T/dest"

	emit "## Live backup (uml_backup)"
	emit ""
	emit "A linux.uml guest on a COW holding $(mib "$_cow_data") MiB of sectors ($(mib "$_cow_alloc") MiB"
	emit "allocated, 6 GiB device) keeps writing (an fsynced record and 64 KiB of"
	emit "buffered data per loop; $_n_end loops during the benchmark). The pause is"
	emit "from \`stop\` to the answer to \`go\`. Page cache warm; ext4, so no reflink."
	emit ""
	emit "| how | pause (ms) | pause vs naive | whole run (ms) |"
	emit "| --- | ---: | ---: | ---: |"
	emit "| naive: \`uml_mconsole stop; cp --sparse=always COW; uml_mconsole go\` | $ms_naive | 1.00 | $ms_naive |"
	emit "| \`uml_backup\` (default: $_method) | $p_auto | $(ratio "$ms_naive" "$p_auto")x shorter | $w_auto |"
	emit "| \`uml_backup -m compare\` (no tracer: compare in the pause) | $p_cmp | $(ratio "$ms_naive" "$p_cmp")x shorter | $w_cmp |"
	emit "| \`uml_backup -m copy\` (copy the allocated data in the pause) | $p_copy | $(ratio "$ms_naive" "$p_copy")x shorter | $w_copy |"
	emit ""
	emit "Floor, same run: copying the COW's allocated data (\`cp --sparse=always\`,"
	emit "guest running) takes $ms_floor ms. The default pause is $(ratio "$ms_floor" "$p_auto") times"
	emit "shorter than that; \`-m copy\`, which copies all of it while stopped, takes $(ratio "$p_copy" "$ms_floor") times it."
	emit "The whole run of the default (pre-copy, guest sync, pause, checksums,"
	emit "fsync of the copy) takes $(ratio "$w_auto" "$ms_floor_sync") times a durable copy"
	emit "(\`cp --sparse=always\` + \`sync\`: $ms_floor_sync ms)."
	emit ""
	emit "Goals (issue 6): a pause at least 5 times shorter than the naive one, and"
	emit "within 1.2 times of the time it takes to copy the COW's allocated data."
	emit ""
	emit "Compression of the backup ($(mib "$_apparent") MiB apparent, $(mib "$_data") MiB allocated),"
	emit "as a stream (ours skip holes; the programs read them as zeros):"
	emit ""
	emit "| compressor | time (s) | size (MiB) | of the data | restore (s) |"
	emit "| --- | ---: | ---: | ---: | ---: |"
	emit "| \`uml_backup -c lz4\` (its compression step) | $t_ours_lz4 | $(mib "$s_ours_lz4") | $(pct "$s_ours_lz4" "$_data") | $t_r_lz4 (\`uml_backup restore\`, sparse) |"
	emit "| \`lz4 -1\` | $t_lz4 | $(mib "$s_lz4") | $(pct "$s_lz4" "$_data") | $t_d_lz4 (\`lz4 -d\` to /dev/null) |"
	emit "| \`uml_backup -c gzip\` (level 6; its compression step) | $t_ours_gz | $(mib "$s_ours_gz") | $(pct "$s_ours_gz" "$_data") | $t_r_gz (\`uml_backup restore\`, sparse) |"
	emit "| \`gzip -6\` (one run) | $t_gzip | $(mib "$s_gzip") | $(pct "$s_gzip" "$_data") | $t_d_gz (\`gunzip\` to /dev/null, one run) |"
	emit ""
	emit "Reproduce: \`bench/run.sh build backup\`"
	emit ""
}

# Before/after mode: the same live backups, compression steps and restores
# by both builds in turn, with the floors of the section above.
bench_backup_vs() {
	_bk_guest_start || return 1
	_bk_floors || return 1
	BUILDS="$BEFORE $B" _bk_live_runs || return 1
	_bk_guest_stop || return 1
	t_read=$(median_time read_extents "$_cow")
	t_copy_sync=$(PREP="rm -f $T/floor.cow" median_time sh -c "cp --sparse=always '$_cow' '$T/floor.cow' && sync '$T/floor.cow'")
	rm -f "$T/floor.cow"
	BUILDS="$BEFORE $B" _bk_compress_runs || return 1
	set -- $(_f=lz4 PREP="rm -f $T/r.*.cow" BUILDS="$BEFORE $B" median_time _bk_restore)
	t_r_lz4_b=$1 t_r_lz4_a=$2
	read -r c_r_lz4_b c_r_lz4_a <"$T/cpu.medians"
	set -- $(_f=gzip PREP="rm -f $T/r.*.cow" BUILDS="$BEFORE $B" median_time _bk_restore)
	t_r_gz_b=$1 t_r_gz_a=$2
	read -r c_r_gz_b c_r_gz_a <"$T/cpu.medians"
	_sz() { stat -c %s "$T/d$1.$2"/ubd0.ubdx.*; }
	s_lz4_b=$(_sz lz4 before) s_lz4_a=$(_sz lz4 after) s_gz_b=$(_sz gzip before) s_gz_a=$(_sz gzip after)
	rm -rf "$T"/dlz4.* "$T"/dgzip.* "$T"/r.*.cow "$T/dest"

	emit "## Live backup, before and after"
	emit ""
	emit "The figures of \"Live backup\" (the same guest, COW and work: $(mib "$_cow_data") MiB"
	emit "of sectors; $_n_end loops of the guest's writes during the benchmark) by two"
	emit "builds in one run, alternating: before is $(vs_label "$BEFORE"), after $(vs_label "$B")."
	emit "Pauses as the manifest gives them; whole runs from start to exit."
	emit "Floors: the naive backup's pause (\`uml_mconsole stop\`; \`cp --sparse=always\`;"
	emit "\`go\`) for a pause, copying the COW's allocated data with the guest running"
	emit "(\`cp --sparse=always\`) for \`-m copy\`'s pause, and a durable copy (the same"
	emit "and \`sync\`) for a whole run. CPU: user + system time of the whole run."
	emit ""
	vs_head ms
	for _m in auto compare copy; do
		case $_m in
		auto) _lbl="\`uml_backup\` (default: $_method)" _fl=$ms_naive ;;
		compare) _lbl="\`uml_backup -m compare\`" _fl=$ms_naive ;;
		copy) _lbl="\`uml_backup -m copy\`" _fl=$ms_floor ;;
		esac
		vs_row "$_lbl, pause" "$(_bk_median <"$T/pauses.$_m.before")" "$(_bk_median <"$T/pauses.$_m.after")" "$_fl"
		vs_row "$_lbl, whole run" "$(_bk_median <"$T/walls.$_m.before")" "$(_bk_median <"$T/walls.$_m.after")" "$ms_floor_sync" \
			"$(_bk_median <"$T/cpus.$_m.before")" "$(_bk_median <"$T/cpus.$_m.after")"
	done
	emit ""
	emit "Compression of that backup ($(mib "$_data") MiB allocated) and restore of it."
	emit "Floors: reading the COW's data extents once (a python script) for the"
	emit "compression step, copying them durably (\`cp --sparse=always\` + \`sync\`)"
	emit "for a restore. Sizes: lz4 $s_lz4_b / $s_lz4_a bytes, gzip $s_gz_b / $s_gz_a"
	emit "bytes (before / after). CPU: user + system time of the whole run"
	emit "(\`uml_backup -c\` reads, sums, compresses and fsyncs the copy)."
	emit ""
	vs_head s
	vs_row "\`uml_backup -c lz4\`, its compression step" "$(_bk_median <"$T/ct.lz4.before")" "$(_bk_median <"$T/ct.lz4.after")" "$t_read" $(cat "$T/ct.lz4.cpu")
	vs_row "\`uml_backup -c gzip\`, its compression step" "$(_bk_median <"$T/ct.gzip.before")" "$(_bk_median <"$T/ct.gzip.after")" "$t_read" $(cat "$T/ct.gzip.cpu")
	vs_row "\`uml_backup restore\` of the lz4 stream" "$t_r_lz4_b" "$t_r_lz4_a" "$t_copy_sync" "$c_r_lz4_b" "$c_r_lz4_a"
	vs_row "\`uml_backup restore\` of the gzip stream" "$t_r_gz_b" "$t_r_gz_a" "$t_copy_sync" "$c_r_gz_b" "$c_r_gz_a"
	emit ""
	emit "Reproduce: \`git worktree add --detach /tmp/before OLD && make -C /tmp/before -j2\`,"
	emit "then \`BENCH_BEFORE=/tmp/before/build bench/run.sh build backup\` (OLD: the before commit)."
	emit ""
}
