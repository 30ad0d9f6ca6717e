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

bench_backup() {
	backup_workload || return 1
	_live=$T/live.cow
	_sock=$T/uml/bench-bk/mconsole
	cp --sparse=always "$CACHE/backup-1g.cow" "$_live"
	_cow_data=$(( $("$B/tests/cowutil" info "$_live" | sed -n 's/^cow_sectors=//p') * 512 ))
	_cow_alloc=$(( $(stat -c %b "$_live") * 512 ))

	# The guest works all along: an fsynced record and 64 KiB of buffered
	# writes, over and over.
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

	# Naive: stopped for the whole copy.
	PREP="rm -f $T/naive.cow; sync"
	t_naive=$(median_time sh -c "uml_mconsole '$_sock' stop >/dev/null 2>&1 &&
		cp --sparse=always '$_live' '$T/naive.cow'; uml_mconsole '$_sock' go >/dev/null 2>&1")
	# The floor: copying the COW's allocated data (the guest running);
	# and with a sync, the floor of a durable backup.
	t_floor=$(median_time cp --sparse=always "$_live" "$T/naive.cow")
	t_floor_sync=$(median_time sh -c "cp --sparse=always '$_live' '$T/naive.cow' && sync '$T/naive.cow'")
	unset PREP
	rm -f "$T/naive.cow"

	# Ours, each method: the pause and the whole run.
	for _m in auto copy compare; do
		: >"$T/pauses.$_m"
		: >"$T/walls.$_m"
		_r=0
		while [ $_r -lt "$REPEAT" ]; do
			rm -rf "$T/dest"
			sync
			_a=$(date +%s%N)
			"$B/bin/uml_backup" -q -j -m $_m "$_sock" "$T/dest" >"$T/m.json" 2>"$T/err" ||
				{ cat "$T/err" >&2; echo "bench: uml_backup failed" >&2; return 1; }
			_b=$(date +%s%N)
			sed -n 's/.*"pause_ms": \([0-9.]*\).*/\1/p' "$T/m.json" >>"$T/pauses.$_m"
			echo $(( (_b - _a) / 1000000 )) >>"$T/walls.$_m"
			_r=$((_r + 1))
		done
		[ $_m = auto ] && _method=$(sed -n 's/.*"method": "\([a-z]*\)".*/\1/p' "$T/m.json")
	done
	p_auto=$(_bk_median <"$T/pauses.auto")
	p_copy=$(_bk_median <"$T/pauses.copy")
	p_cmp=$(_bk_median <"$T/pauses.compare")
	w_auto=$(_bk_median <"$T/walls.auto")
	w_copy=$(_bk_median <"$T/walls.copy")
	w_cmp=$(_bk_median <"$T/walls.compare")
	ms_naive=$(awk -v t="$t_naive" 'BEGIN { printf "%.1f", t * 1000 }')
	ms_floor=$(awk -v t="$t_floor" 'BEGIN { printf "%.1f", t * 1000 }')
	ms_floor_sync=$(awk -v t="$t_floor_sync" 'BEGIN { printf "%.1f", t * 1000 }')
	_n_end=$(sed -n 's/^N \([0-9]*\).*/\1/p' "$T/work.log" | tail -n 1)

	# Compression, on the backup just taken (the COW as a stream).
	rm -rf "$T/dest"
	"$B/bin/uml_backup" -q "$_sock" "$T/dest" 2>"$T/err" || { cat "$T/err" >&2; return 1; }
	touch "$T/stop-work"
	wait $_guest
	_cow=$T/dest/ubd0.cow
	_apparent=$(stat -c %s "$_cow")
	_data=$(( $(stat -c %b "$_cow") * 512 ))
	# Ours compress as part of a backup: the manifest times that step
	# (reading the copy, checksums, compression, fsync).
	for _f in lz4 gzip; do
		: >"$T/ct.$_f"
		_r=0
		while [ $_r -lt "$REPEAT" ]; do
			rm -rf "$T/d$_f"
			"$B/bin/uml_backup" -q -j -c $_f "$_cow" "$T/d$_f" >"$T/c.json" 2>"$T/err" ||
				{ cat "$T/err" >&2; return 1; }
			sed -n 's/.*"checksum_compress": \([0-9.]*\).*/\1/p' "$T/c.json" |
				awk '{ printf "%.3f\n", $1 / 1000 }' >>"$T/ct.$_f"
			_r=$((_r + 1))
		done
	done
	t_ours_lz4=$(_bk_median <"$T/ct.lz4")
	t_ours_gz=$(_bk_median <"$T/ct.gzip")
	s_ours_lz4=$(stat -c %s "$T/dlz4/ubd0.ubdx.lz4")
	s_ours_gz=$(stat -c %s "$T/dgzip/ubd0.ubdx.gz")
	t_lz4=$(median_time sh -c "lz4 -1 -q -c '$_cow' >'$T/cli.lz4'")
	s_lz4=$(stat -c %s "$T/cli.lz4")
	t_gzip=$(REPEAT=1 median_time sh -c "gzip -6 -c '$_cow' >'$T/cli.gz'")
	s_gzip=$(stat -c %s "$T/cli.gz")
	t_r_lz4=$(PREP="rm -f $T/r.cow" median_time "$B/bin/uml_backup" -q restore "$T/dlz4/ubd0.ubdx.lz4" "$T/r.cow")
	t_r_gz=$(PREP="rm -f $T/r.cow" median_time "$B/bin/uml_backup" -q restore "$T/dgzip/ubd0.ubdx.gz" "$T/r.cow")
	t_d_lz4=$(median_time sh -c "lz4 -d -q -c '$T/cli.lz4' >/dev/null")
	t_d_gz=$(REPEAT=1 median_time sh -c "gunzip -c '$T/cli.gz' >/dev/null")
	rm -rf "$T/dlz4" "$T/dgzip" "$T/cli.lz4" "$T/cli.gz" "$T/r.cow" "$T/dest"
	mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
	pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", a * 100 / b }'; }

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
