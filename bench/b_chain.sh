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

# Read every allocated extent of a file once (the comparison's floor).
_ch_read_extents() {
	python3 - "$1" <<'EOS'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
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
EOS
}

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

# figure KEY from the last summary in $T/ch.err
_ch_read() { sed -n 's/.* \([0-9.]*\) MiB of COW data read.*/\1/p' "$T/ch.err" | tail -n 1; }
_ch_stored() { sed -En 's/.*stored, ([a-z0-9]+ )?([0-9.]+) MiB;.*/\2/p' "$T/ch.err" | tail -n 1; }
_ch_bytes() { awk -v m="$1" 'BEGIN { printf "%.0f", m * 1048576 }'; }

bench_chain() {
	_ours=$B/kernel/linux
	[ -x "$_ours" ] || { echo "bench: chain: no $_ours (make kernel)" >&2; return 1; }
	_bk=$B/bin/uml_backup
	truncate -s 1G "$T/ch.img"
	"$B/bin/uml_mkcow" -q "$T/ch.cow" "$T/ch.img" || return 1
	# Not guest_prologue: its tmpfs on /tmp would hide $T from the guest.
	{
		cat <<EOS
#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc 2>/dev/null
dd if=/dev/urandom of=/dev/ubda bs=1M count=1024 oflag=direct status=none
sync
# Held open: the kernel tracks a device while it is open.
exec 3</dev/ubda
echo FILLED
r=0
while :; do
	r=\$((r + 1))
	# $T through hostfs: polled by listing it, which always asks the host.
	while ! ls "$T" | grep -qx "round.\$r"; do
		ls "$T" | grep -qx end && break 2
		sleep 0.02
	done
	sh "$T/round.\$r"
	sync
	echo "ROUND-DONE \$r"
done
exec 3<&-
sync
echo GUEST-DONE
poweroff -f
EOS
	} >"$T/ch-init.sh"
	UML=$_ours UML_MEM=256M UML_TIMEOUT=900 uml_boot bench-ch "$T/ch-init.sh" "$T/ch.log" \
		ubda="$T/ch.cow,$T/ch.img" &
	_pid=$!
	_wait_log() {
		_wl=0
		while ! grep -q "$1" "$T/ch.log" 2>/dev/null; do
			_wl=$((_wl + 1))
			[ $_wl -lt 30000 ] || { echo "bench: chain: guest: no '$1'" >&2; return 1; }
			kill -0 $_pid 2>/dev/null || { tail "$T/ch.log" >&2; return 1; }
			sleep 0.02
		done
	}
	_wait_log FILLED || return 1
	_data=$(( $("$B/tests/cowutil" info "$T/ch.cow" | sed -n 's/^cow_sectors=//p') * 512 ))

	# The full point, timed (its page cache warm: the guest just wrote it).
	_t0=$(date +%s%N)
	"$_bk" -i -u "$T/uml" bench-ch "$T/chain" 2>"$T/ch.err" || { cat "$T/ch.err" >&2; return 1; }
	_t_full=$(awk -v a="$_t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')

	: >"$T/ch.rows"
	for r in 1 2 3; do
		_chg=$(_ch_round "$T/round.$r.tmp" "$r") || return 1
		mv "$T/round.$r.tmp" "$T/round.$r"
		_wait_log "ROUND-DONE $r" || return 1
		_t0=$(date +%s%N)
		"$_bk" -i -u "$T/uml" bench-ch "$T/chain" 2>"$T/ch.err" ||
			{ cat "$T/ch.err" >&2; return 1; }
		_t=$(awk -v a="$_t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
		grep -q "changes: tracking" "$T/ch.err" || { cat "$T/ch.err" >&2; echo "bench: chain: round $r did not track" >&2; return 1; }
		echo "$r $_chg $(_ch_bytes "$(_ch_read)") $(_ch_bytes "$(_ch_stored)") $_t" >>"$T/ch.rows"
	done

	# The comparison source: the guest gone, its record moved away.
	_chg_c=$(_ch_round "$T/round.4.tmp" 4) || return 1
	mv "$T/round.4.tmp" "$T/round.4"
	_wait_log "ROUND-DONE 4" || return 1
	touch "$T/end"
	wait $_pid
	grep -q GUEST-DONE "$T/ch.log" || { tail "$T/ch.log" >&2; return 1; }
	mv "$T/ch.cow.cbt" "$T/ch.cow.cbt.away"
	_ch_read_extents "$T/ch.cow"
	_t_floor=$(median_time _ch_read_extents "$T/ch.cow")
	_t0=$(date +%s%N)
	"$_bk" -i --offline "$T/ch.cow" "$T/chain" 2>"$T/ch.err" || { cat "$T/ch.err" >&2; return 1; }
	_t_cmp=$(awk -v a="$_t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	grep -q "changes: comparison" "$T/ch.err" || { cat "$T/ch.err" >&2; return 1; }
	_st_c=$(_ch_bytes "$(_ch_stored)")

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
