# The kernel suite: what its tests (tests/kernel/*.t) share; each test sources
# this file, tests/lib/tap.sh runs it.
#
# Boot tests of the UML kernel built with this project's ubd driver and COW
# library (build/kernel/linux, `make kernel`), against the stock driver
# (Debian's linux.uml) and uml-utilities.
#   prove -j2 --directives --comments tests/kernel/   (make check-kernel)
#   prove -v tests/kernel/NAME.t                    (one test; B=BUILD_DIR)
# KILL_ROUNDS (default 20) sets how many times the SIGKILL test kills a guest.
# UBD_MAP=1 boots our kernel with map-on-read ('m') on every device given on
# its command line (docs/sharing.md): the whole suite must pass both ways.
# UBD_MAP_LOG=FILE appends each guest's pages_mapped counters to FILE.
set -u

SUITE=kernel
. "$(dirname "$0")/../lib/tap.sh"

OURS=$B/kernel/linux
STOCK=/usr/bin/linux.uml
COWUTIL=$B/tests/cowutil
MOO=$B/bin/uml_moo
PEER_MOO=/usr/bin/uml_moo
KILL_ROUNDS=${KILL_ROUNDS:-20}

# TAP's way to stop the whole run (prove), as the serial runner stops.
[ -x "$OURS" ] || { echo "Bail out! kernel: $OURS missing: run make kernel"; exit 1; }

# boot KERNEL UMID INIT-BODY-FILE LOG ubd-args...: the body is appended to
# the guest prologue and followed by poweroff.
boot() {
	_bk=$1 _bu=$2 _bb=$3 _bl=$4
	shift 4
	{
		guest_prologue
		cat "$_bb"
		# With UBD_MAP_LOG, what each device mapped (to see that the
		# suite run with UBD_MAP=1 maps at all).
		[ -z "${UBD_MAP_LOG:-}" ] ||
			echo 'for f in /sys/block/ubd*/pages_mapped; do [ -r "$f" ] && echo "UBD-MAPPED $f $(cat "$f")"; done'
		echo 'echo GUEST-END; poweroff -f'
	} >"$T/$_bu.init"
	UML=$_bk uml_boot "$_bu" "$T/$_bu.init" "$_bl" "$@"
	_bs=$?
	# The console ends its lines with CR LF.
	sed -i 's/\r$//' "$_bl"
	[ -z "${UBD_MAP_LOG:-}" ] ||
		sed -n "s|^UBD-MAPPED |$_bu |p" "$_bl" >>"$UBD_MAP_LOG"
	return $_bs
}
ours() {
	_ou=$1 _ob=$2 _ol=$3
	shift 3
	if [ -n "${UBD_MAP:-}" ]; then
		for _oa; do
			shift
			set -- "$@" "$(with_map "$_oa")"
		done
	fi
	boot "$OURS" "$_ou" "$_ob" "$_ol" "$@"
}
# ubd<n>[flags]=... with the 'm' flag added; any other argument as it is.
with_map() {
	printf '%s\n' "$1" | sed 's/^\(ubd\([0-9][0-9]*\|[a-p]\)[rsdctm]*\)=/\1m=/'
}
stock() { boot "$STOCK" "$@"; }
ended() { grep -q GUEST-END "$1" || { tail -n 30 "$1" >&2; fail "guest did not finish ($1)"; }; }

# A backing file of random bytes, sized in MiB, and its md5.
rand_backing() { head -c $(($2 * 1048576)) /dev/urandom >"$1"; }
md5() { md5sum <"$1" | cut -d' ' -f1; }

# Guest snippet writing a marker pattern: PATTERN-<tag>-<offset> in 4 KiB
# blocks at the given 4 KiB block numbers of /dev/ubda, synced.
guest_marks() { # tag blocks...
	_gm_tag=$1
	shift
	for _gm_b in "$@"; do
		echo "yes PATTERN-$_gm_tag-$_gm_b | head -c 4096 | dd of=/dev/ubda bs=4096 seek=$_gm_b conv=notrunc status=none"
	done
	echo 'sync; blockdev --flushbufs /dev/ubda'
}
# The same, applied on the host to an image.
host_marks() { # image tag blocks...
	_hm_img=$1 _hm_tag=$2
	shift 2
	for _hm_b in "$@"; do
		yes "PATTERN-$_hm_tag-$_hm_b" | head -c 4096 |
			dd of="$_hm_img" bs=4096 seek="$_hm_b" conv=notrunc status=none
	done
}






# --- hot-plug through mconsole ----------------------------------------------

mcon() { uml_mconsole "$T/uml/$1/mconsole" "$2"; }


# --- huge sparse devices in a small guest ------------------------------------

# Read LEN bytes at OFF of COW's merged view on the host, through the
# library.
cow_read() { # cow off len
	"$COWUTIL" read "$1" "$2" "$3"
}


# --- changed-block tracking (docs/cbt.md) ---------------------------------------

# Guest lines writing PATTERN-<tag>-<b> to 4 KiB blocks of /dev/ubda with
# O_DIRECT: one request each, no file system, no page cache.
guest_direct() { # tag blocks...
	_gd_tag=$1
	shift
	for _gd_b in "$@"; do
		echo "yes PATTERN-$_gd_tag-$_gd_b | head -c 4096 | dd of=/dev/ubda bs=4096 seek=$_gd_b iflag=fullblock oflag=direct conv=notrunc status=none || echo WRITE-FAILED"
	done
}
# The "run START COUNT" lines (64 KiB blocks) that 4 KiB blocks make.
want_runs() { # blocks...
	for _wr_b in "$@"; do echo $((_wr_b / 16)); done | sort -n -u |
		awk 'NR > 1 && $1 == e { n++; e++; next }
		     NR > 1 { print "run", s, n }
		     { s = $1; n = 1; e = $1 + 1 }
		     END { if (NR) print "run", s, n }'
}
# Wait (polling) until FILE has a line matching PATTERN.
wait_line() { # file pattern
	_wl_i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		sleep 0.05
		_wl_i=$((_wl_i + 1))
		[ $_wl_i -lt 600 ] || { tail -n 20 "$1" >&2; fail "no '$2' in $1"; }
	done
}
# Guest lines: say STEP<n>, then wait for the host's sig/<n> (listing
# the directory: hostfs would keep a failed lookup of the name cached).
# The body must first umount the prologue's /tmp, which hides $T.
guest_step() { # n
	echo "echo STEP$1; until ls $T/sig | grep -qx $1; do sleep 0.05; done"
}
# The map's runs and the line of one of its header keys.
map_runs() { "$COWUTIL" cbt-map "$1" | grep '^run '; }
map_key() { "$COWUTIL" cbt-map "$1" | sed -n "s/^$2=//p"; }
rec_key() { "$COWUTIL" cbt-record "$1" | sed -n "s/^$2=//p"; }
# Stop the guest, checkpoint, go; the reply in ckpt.out, its time in ms.
checkpoint() { # umid name
	mcon "$1" stop >stop.out 2>&1 || fail "stop: $(cat stop.out)"
	_ck_t0=$(date +%s%N)
	mcon "$1" "cbt ubd0 checkpoint $2" >ckpt.out 2>&1
	_ck_st=$?
	_ck_ms=$(( ($(date +%s%N) - _ck_t0) / 1000000 ))
	mcon "$1" go >go.out 2>&1 || fail "go: $(cat go.out)"
	[ $_ck_st = 0 ] && grep -q '^OK ' ckpt.out || fail "checkpoint $2: $(cat ckpt.out)"
	echo "checkpoint $2 while stopped: $_ck_ms ms: $(cat ckpt.out)"
}

# --- map-on-read ('m', docs/sharing.md) ---------------------------------

MAPTOOL=$B/tests/maptool

# An ext4 master (4 KiB blocks) holding data.bin (random, MiB given) and
# maptool, a binary to run from it; expect.bin: data.bin as the guest of
# map_body leaves it.
map_master() { # MiB
	mkdir -p m
	head -c $(($1 * 1048576)) /dev/urandom >m/data.bin
	cp "$MAPTOOL" m/maptool
	mkfs.ext4 -q -F -b 4096 -d m master.img $(($1 + 32))M || fail "mkfs.ext4"
	cp master.img master.orig
	cp m/data.bin expect.bin
	yes WRITE-PAGE | head -c 4096 |
		dd of=expect.bin bs=4096 seek=10 conv=notrunc status=none
	yes DIRECT-PAGE | head -c 4096 |
		dd of=expect.bin bs=4096 seek=20 conv=notrunc status=none
	printf MMAP-WRITE |
		dd of=expect.bin bs=1 seek=$((30 * 4096)) conv=notrunc status=none
	printf COHERENT-TEXT |
		dd of=expect.bin bs=1 seek=$((40 * 4096)) conv=notrunc status=none
}

# Guest body: read every page of data.bin (mapped), then write pages that
# are mapped with write(), O_DIRECT and a shared writable mapping, and
# check a read-only mapping sees another process's write.
map_body() {
	cat <<'EOS'
mount /dev/ubda /mnt || echo MOUNT-FAILED
s=/sys/block/ubda
echo "MAP=$(cat $s/map_on_read)"
echo "SUM0=$(md5sum </mnt/data.bin | cut -d' ' -f1)"
echo "MAPPED=$(cat $s/pages_mapped)"
cat /mnt/maptool >/dev/null
/mnt/maptool 2>/dev/null; echo "BIN=$?"
yes WRITE-PAGE | head -c 4096 | dd of=/mnt/data.bin bs=4096 seek=10 conv=notrunc status=none
echo "UNW=$(cat $s/pages_unmapped_on_write)"
yes DIRECT-PAGE | head -c 4096 | dd of=/mnt/data.bin bs=4096 seek=20 conv=notrunc oflag=direct status=none
/mnt/maptool mwrite /mnt/data.bin $((30 * 4096)) MMAP-WRITE || echo MWRITE-FAILED
/mnt/maptool coherent /mnt/data.bin $((40 * 4096)) COHERENT-TEXT
echo "UNM=$(cat $s/pages_unmapped_on_map)"
echo "SUM1=$(md5sum </mnt/data.bin | cut -d' ' -f1)"
sync
echo 3 >/proc/sys/vm/drop_caches
echo "SUM2=$(md5sum </mnt/data.bin | cut -d' ' -f1)"
echo "FALLBACKS=$(cat $s/map_fallbacks)"
umount /mnt
EOS
}

guest_val() { sed -n "s/^$2=//p" "$1" | head -n 1; }

# Does a child of host process $1 map file $3 at address $2?
child_maps_file_at() { # PID ADDR FILE
	for _cm in $(pgrep -P "$1"); do
		while read -r _cm_r _cm_p _cm_o _cm_d _cm_i _cm_f; do
			[ "$_cm_f" = "$3" ] || continue
			[ $(( $2 >= 0x${_cm_r%-*} && $2 < 0x${_cm_r#*-} )) = 1 ] &&
				return 0
		done <"/proc/$_cm/maps"
	done 2>/dev/null
	return 1
}
