#!/bin/sh
# Tests of nbdkit-ubd-plugin: the recipes of the README and of
# nbdkit-ubd-plugin(1) (qemu-img convert, nbdcopy with four connections,
# nbdinfo --map, nbdfuse mounts read-only and read-write), the merged view
# against uml-utilities' uml_moo, writes that survive SIGKILL after a
# flush, unaligned writes, zero and trim, read-only modes, the backing
# override and its checks, the kernel's host locks against a running
# linux.uml in both directions, and bad input.
#   tests/nbdkit/run.sh BUILD_DIR [t_NAME...]
set -u

SUITE=nbdkit
. "$(dirname "$0")/../lib/runner.sh"

PLUGIN=$B/lib/nbdkit-ubd-plugin.so
COWUTIL=$B/tests/cowutil
PEER_MOO=/usr/bin/uml_moo
PEER_MKCOW=/usr/bin/uml_mkcow
# Debian's python3 with python3-libnbd, whatever python3 comes first.
NBDPY=/usr/bin/python3
MiB=1048576

# --- helpers -----------------------------------------------------------------

need() {
	for _nd_c in "$@"; do
		command -v "$_nd_c" >/dev/null 2>&1 || skip "SKIP: $_nd_c not installed"
	done
}

# Content and mtime of files, to check that nothing changed.
snap() {
	for _sn_f in "$@"; do
		printf '%s %s %s\n' "$_sn_f" "$(md5sum <"$_sn_f" | cut -c1-32)" "$(stat -c %y "$_sn_f")"
	done
}

# A pair in $T: master.img (MB MiB of random data, mtime in the past),
# c.cow (v3 by uml-utilities) with COW data in a few runs (one of zeros
# over random data, one the last sector), and exp.img, uml-utilities'
# uml_moo's merge of the pair.
#   make_pair MB
make_pair() {
	randfile "$T/master.img" $(($1 * MiB))
	touch -d '2020-02-02 02:02:02' "$T/master.img"
	"$PEER_MKCOW" "$T/c.cow" "$T/master.img" >/dev/null || fail "uml_mkcow"
	for _mp_i in 0 1 2 3 4 5; do
		_mp_off=$(( _mp_i * 5 * MiB / 4 + (_mp_i * 7 % 13) * 512 ))
		if [ $_mp_i = 3 ]; then
			head -c 65536 /dev/zero >"$T/chunk"
		else
			randfile "$T/chunk" $(( ((_mp_i * 37) % 64 + 1) * 512 ))
		fi
		"$COWUTIL" write "$T/c.cow" $_mp_off "$T/chunk" || fail "cowutil write"
	done
	randfile "$T/chunk" 512
	"$COWUTIL" write "$T/c.cow" $(($1 * MiB - 512)) "$T/chunk" || fail "cowutil write"
	rm -f "$T/chunk"
	moo_of "$T/c.cow" "$T/exp.img"
	cmp -s "$T/exp.img" "$T/master.img" && fail "COW changes nothing?"
}

# uml-utilities' merge of a COW into a new image.
moo_of() {
	rm -f "$2"
	"$PEER_MOO" "$1" "$2" >/dev/null 2>&1 || fail "uml_moo $1"
}

# What a test leaves behind when it fails half-way: a mount, a loop
# device, nbdfuse, a server.  Each test runs in its own subshell, whose
# EXIT trap this is.
leftovers() {
	umount "$T/mnt" 2>/dev/null
	[ -n "${LOOP:-}" ] && losetup -d "$LOOP" 2>/dev/null
	[ -n "${FUSE_PID:-}" ] && fusermount3 -u "$T/fuse" 2>/dev/null
	[ -n "${NBDKIT_PID:-}" ] && kill "$NBDKIT_PID" 2>/dev/null
	return 0
}

# Serve in the foreground, in the background: serve ARGS...; sets URI and
# NBDKIT_PID.  Waits (bounded) until the socket answers.
serve() {
	rm -f "$T/s.sock" "$T/n.pid"
	nbdkit -f -U "$T/s.sock" -P "$T/n.pid" "$PLUGIN" "$@" 2>"$T/nbdkit.err" &
	NBDKIT_PID=$!
	trap leftovers EXIT
	URI="nbd+unix:///?socket=$T/s.sock"
	_sv_i=0
	until [ -s "$T/n.pid" ] && nbdinfo --size "$URI" >/dev/null 2>&1; do
		_sv_i=$((_sv_i + 1))
		kill -0 $NBDKIT_PID 2>/dev/null || fail "nbdkit died: $(cat "$T/nbdkit.err")"
		[ $_sv_i -lt 100 ] || { kill $NBDKIT_PID; fail "nbdkit not serving"; }
		sleep 0.1
	done
}

# Stop the server started by serve (SIGTERM: a clean shutdown).
unserve() {
	kill "$NBDKIT_PID" 2>/dev/null
	wait "$NBDKIT_PID"
	NBDKIT_PID=
}

# Run nbdkit on the plugin, expect it to refuse: exit non-zero, one error
# line naming MATCH, the --run command never run.
#   refused MATCH ARGS...
refused() {
	_rf_match=$1
	shift
	nbdkit -U - "$PLUGIN" "$@" --run 'echo SERVED' >out.txt 2>err.txt &&
		fail "nbdkit $* served"
	grep -q SERVED out.txt && fail "nbdkit $* ran the command"
	[ "$(wc -l <err.txt)" = 1 ] || fail "nbdkit $*: not a one-line error: $(cat err.txt)"
	grep -q '^nbdkit: .*error: ' err.txt || fail "nbdkit $*: not an nbdkit error: $(cat err.txt)"
	grep -qF -- "$_rf_match" err.txt || fail "nbdkit $*: error does not say '$_rf_match': $(cat err.txt)"
}

# Wait (bounded) until a guest's log shows a line.
#   wait_log LOG PATTERN PID
wait_log() {
	_wl_i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		_wl_i=$((_wl_i + 1))
		kill -0 "$3" 2>/dev/null || fail "guest ended before '$2': $(tail -n 5 "$1")"
		[ $_wl_i -lt 600 ] || { kill "$3"; fail "guest never said '$2'"; }
		sleep 0.1
	done
}

# An ext4 master.img (32 MiB) and a guest that writes files through
# guest.cow (the kernel creates it).
make_ext4_pair() {
	mkdir -p "$T/tree/etc"
	echo "version=1" >"$T/tree/etc/app.conf"
	mkfs.ext4 -q -F -b 4096 -d "$T/tree" "$T/master.img" 32M >/dev/null || fail "mkfs.ext4"
	rm -rf "$T/tree"
	touch -d '2021-03-03 03:03:03' "$T/master.img"
	{
		guest_prologue
		cat <<'EOS'
mount /dev/ubda /mnt || echo "GUEST-ERROR mount"
echo "written by the guest" >/mnt/new.txt
echo "version=2" >/mnt/etc/app.conf
dd if=/dev/urandom of=/mnt/big.bin bs=65536 count=8 2>/dev/null
echo "GUEST-BIG $(md5sum </mnt/big.bin | cut -c1-32)"
umount /mnt && echo "GUEST-DONE"
poweroff -f
EOS
	} >"$T/init.sh"
	uml_boot "nw$$" "$T/init.sh" "$T/guest.log" ubda="$T/guest.cow,$T/master.img"
	grep -q GUEST-DONE "$T/guest.log" || fail "guest: $(tail -n 5 "$T/guest.log")"
}

# nbdfuse on $URI at $T/fuse/disk, then a loop device on it: sets LOOP.
#   fuse_loop [-r]
fuse_loop() {
	[ -c /dev/fuse ] || skip "SKIP: no /dev/fuse"
	[ "$(id -u)" = 0 ] || skip "SKIP: loop mounts need root"
	mkdir -p "$T/fuse" "$T/mnt"
	nbdfuse ${1:-} "$T/fuse/disk" "$URI" 2>"$T/nbdfuse.err" &
	FUSE_PID=$!
	_fl_i=0
	until [ -e "$T/fuse/disk" ]; do
		_fl_i=$((_fl_i + 1))
		kill -0 $FUSE_PID 2>/dev/null || fail "nbdfuse: $(cat "$T/nbdfuse.err")"
		[ $_fl_i -lt 100 ] || fail "nbdfuse not mounted"
		sleep 0.1
	done
	LOOP=$(losetup -f --show ${1:-} "$T/fuse/disk") || skip "SKIP: no loop device"
}

unfuse_loop() {
	losetup -d "$LOOP"
	LOOP=
	fusermount3 -u "$T/fuse"
	wait "$FUSE_PID"
	FUSE_PID=
}

# --- the recipes ---------------------------------------------------------------

# README: convert a pair to qcow2 without merging it first.
t_convert_to_qcow2() {
	need nbdkit qemu-img
	make_pair 8
	before=$(snap master.img c.cow)
	nbdkit -U - "$PLUGIN" c.cow --run 'qemu-img convert -O qcow2 "$uri" out.qcow2' ||
		fail "nbdkit --run qemu-img convert"
	qemu-img compare -q out.qcow2 exp.img || fail "out.qcow2 differs from uml_moo's merge"
	[ "$(snap master.img c.cow)" = "$before" ] || fail "the pair changed"
}

# nbdcopy over four connections (multi-conn) equals uml_moo's merge.
t_nbdcopy_four_connections() {
	need nbdkit nbdcopy
	make_pair 8
	nbdkit -U - "$PLUGIN" c.cow readonly=true \
		--run 'nbdcopy --connections=4 "$uri" out.img' || fail "nbdcopy"
	cmp out.img exp.img || fail "nbdcopy output differs from uml_moo's merge"
}

# nbdinfo --map --totals: data is what the bitmap counts (uml_imgstat
# --json), over a backing file that is all hole; with data in the backing
# file, that data shows too, and the COW's zeros are data (present).
t_map_totals_match_bitmap() {
	need nbdkit nbdinfo
	truncate -s 16M master.img
	"$PEER_MKCOW" c.cow master.img >/dev/null || fail "uml_mkcow"
	randfile chunk 12288 && "$COWUTIL" write c.cow 4096 chunk || fail "cowutil write"
	head -c 8192 /dev/zero >zeros && "$COWUTIL" write c.cow $((5 * MiB)) zeros || fail "cowutil write"
	randfile chunk 512 && "$COWUTIL" write c.cow $((16 * MiB - 512)) chunk || fail "cowutil write"
	cow_bytes=$("$B/bin/uml_imgstat" --json c.cow | jq -r '.usage.cow_bytes')
	[ "$cow_bytes" = $((12288 + 8192 + 512)) ] || fail "uml_imgstat cow_bytes '$cow_bytes'"
	nbdkit -U - "$PLUGIN" c.cow --run 'nbdinfo --map --totals "$uri"' >totals.txt ||
		fail "nbdinfo --map --totals"
	data=$(awk '$NF == "data" { print $1 }' totals.txt)
	zero=$(awk '$NF == "hole,zero" { print $1 }' totals.txt)
	[ "$data" = "$cow_bytes" ] || fail "map data $data, bitmap $cow_bytes: $(cat totals.txt)"
	[ "$zero" = $((16 * MiB - cow_bytes)) ] || fail "map hole,zero $zero: $(cat totals.txt)"
	# Backing data at 8 MiB (1 MiB of it), not covered by the COW.
	randfile chunk $MiB && dd if=chunk of=master.img bs=1M seek=8 conv=notrunc status=none
	touch -d "@$(info_get c.cow mtime)" master.img
	nbdkit -U - "$PLUGIN" c.cow --run 'nbdinfo --map "$uri"' >map.txt || fail "nbdinfo --map"
	awk '{ print $1, $2, $NF }' map.txt >got.txt
	cat >want.txt <<EOF
0 4096 hole,zero
4096 12288 data
16384 5226496 hole,zero
5242880 8192 data
5251072 3137536 hole,zero
8388608 1048576 data
9437184 7339520 hole,zero
16776704 512 data
EOF
	diff want.txt got.txt >&2 || fail "nbdinfo --map differs"
}

# A guest writes files through the COW; the pair is mounted read-only on
# the host through nbdfuse and a loop device, without merging.
t_mount_readonly_nbdfuse() {
	need nbdkit nbdfuse "$UML" mkfs.ext4
	make_ext4_pair
	before=$(snap master.img guest.cow)
	serve guest.cow readonly=true
	fuse_loop -r
	mount -o ro,noload "$LOOP" mnt || { unfuse_loop; unserve; fail "mount"; }
	got=$(cat mnt/new.txt; cat mnt/etc/app.conf; md5sum <mnt/big.bin | cut -c1-32)
	umount mnt
	unfuse_loop
	unserve
	want=$(printf 'written by the guest\nversion=2\n%s' \
		"$(sed -n 's/^GUEST-BIG //p' guest.log | tr -d '\r')")
	[ "$got" = "$want" ] || fail "read '$got', expected '$want'"
	[ "$(snap master.img guest.cow)" = "$before" ] || fail "the pair changed"
}

# Read-write: a file written on the host through the mount is seen by
# Debian's linux.uml booted on the same COW afterwards.
t_mount_readwrite_then_guest() {
	need nbdkit nbdfuse "$UML" mkfs.ext4
	make_ext4_pair
	master_before=$(snap master.img)
	serve guest.cow
	fuse_loop
	mount "$LOOP" mnt || { unfuse_loop; unserve; fail "mount"; }
	echo "written on the host" >mnt/host.txt
	umount mnt
	unfuse_loop
	unserve
	[ "$(snap master.img)" = "$master_before" ] || fail "the backing file changed"
	{
		guest_prologue
		cat <<'EOS'
mount -o ro /dev/ubda /mnt || echo "GUEST-ERROR mount"
echo "GUEST-HOST $(cat /mnt/host.txt)"
echo "GUEST-NEW $(cat /mnt/new.txt)"
umount /mnt
poweroff -f
EOS
	} >init2.sh
	uml_boot "nr$$" "$T/init2.sh" guest2.log ubda="$T/guest.cow,$T/master.img"
	grep -q "GUEST-HOST written on the host" guest2.log || fail "guest: $(tail -n 5 guest2.log)"
	grep -q "GUEST-NEW written by the guest" guest2.log || fail "guest: $(tail -n 5 guest2.log)"
}

# --- writes --------------------------------------------------------------------

# Writes acknowledged by a flush are in the COW, bitmap included, after
# nbdkit is killed with SIGKILL (no shutdown, no write-back at exit).
t_flushed_writes_survive_sigkill() {
	need nbdkit qemu-io
	make_pair 8
	serve c.cow
	# qemu-io's default cache mode sends FUA with each write; writeback
	# makes the flush the only barrier.
	qemu-io -f raw -t writeback -c 'write -P 0xab 0 64k' -c 'write -P 0xcd 3m 4k' \
		-c 'write -P 0xef 8388096 512' -c flush "$URI" >qemu.txt 2>&1 ||
		fail "qemu-io: $(cat qemu.txt)"
	kill -9 "$NBDKIT_PID"
	wait "$NBDKIT_PID"
	cp exp.img want.img
	head -c 65536 /dev/zero | tr '\0' '\253' | dd of=want.img conv=notrunc status=none
	head -c 4096 /dev/zero | tr '\0' '\315' | dd of=want.img bs=1M seek=3 conv=notrunc status=none
	head -c 512 /dev/zero | tr '\0' '\357' | dd of=want.img bs=512 seek=16383 conv=notrunc status=none
	moo_of c.cow got.img
	cmp got.img want.img || fail "uml_moo after SIGKILL differs"
	"$COWUTIL" merged c.cow lib.img && cmp lib.img want.img || fail "merged view after SIGKILL differs"
	"$COWUTIL" runs c.cow | grep -q '^0 128$' || fail "bits of the first write missing: $("$COWUTIL" runs c.cow)"
}

# Requests that ignore the minimum block size, zero (with and without
# may-trim, fast) and trim, against a model of the merged view; the COW
# afterwards, read by uml_moo, equals the model.  Trim and zero make
# whole sectors present and zero, as the ubd driver does; the partial
# edges of a trim keep their data.
t_unaligned_zero_trim() {
	need nbdkit
	"$NBDPY" -c 'import nbd' 2>/dev/null || skip "SKIP: python3-libnbd not installed"
	make_pair 8
	master_before=$(snap master.img)
	serve c.cow
	"$NBDPY" - "$URI" exp.img model.img <<'EOF' || fail "nbd client"
import nbd, sys
uri, exp, out = sys.argv[1:4]
m = bytearray(open(exp, "rb").read())
h = nbd.NBD()
h.set_strict_mode(h.get_strict_mode() & ~nbd.STRICT_ALIGN)
h.connect_uri(uri)
assert h.get_block_size(nbd.SIZE_MINIMUM) == 512
assert h.can_fast_zero() and h.can_multi_conn() and h.can_fua()

def write(off, data, flags=0):
    h.pwrite(data, off, flags)
    m[off:off + len(data)] = data

def zero(off, n, flags=0):
    h.zero(n, off, flags)
    m[off:off + n] = bytes(n)

def trim(off, n):
    h.trim(n, off)
    lo, hi = (off + 511) // 512 * 512, (off + n) // 512 * 512
    if off + n == len(m):
        hi = len(m)
    if hi > lo:
        m[lo:hi] = bytes(hi - lo)

write(100, b"A" * 200)                    # inside one sector
write(1000, b"B" * 3000)                  # both edges partial
write(8192 + 7, b"C" * 1, nbd.CMD_FLAG_FUA)
write(len(m) - 3, b"END")                 # the last sector's tail
zero(20000, 5000)                         # edges and whole sectors
zero(40960, 8192, nbd.CMD_FLAG_NO_HOLE)   # zeroed in place, not punched
zero(65536 + 100, 50, nbd.CMD_FLAG_FAST_ZERO)
zero(131072, 65536, nbd.CMD_FLAG_FAST_ZERO)
trim(300000, 10000)
trim(5 * 1048576 // 4 + 3000, 3000)       # over backing and COW data
for off, n in ((0, 70000), (len(m) - 70000, 70000), (290000, 30000)):
    got = h.pread(n, off)
    assert got == bytes(m[off:off + n]), "read at %d differs" % off
h.flush()
h.shutdown()
open(out, "wb").write(m)
EOF
	unserve
	moo_of c.cow got.img
	cmp got.img model.img || fail "the COW differs from the model"
	[ "$(snap master.img)" = "$master_before" ] || fail "the backing file changed"
	# The sectors zeroed and trimmed are present, over random backing data.
	runs=$("$COWUTIL" runs c.cow)
	for r in '^39 10$' '^80 16$' '^256 128$' '^586 19$'; do
		echo "$runs" | grep -q "$r" || fail "no COW run $r: $runs"
	done
}

# --- read-only -----------------------------------------------------------------

t_readonly() {
	need nbdkit qemu-io nbdinfo
	make_pair 8
	before=$(snap master.img c.cow)
	for ro in "readonly=true" "-r"; do
		if [ "$ro" = -r ]; then
			set -- -r "$PLUGIN" c.cow
		else
			set -- "$PLUGIN" c.cow readonly=true
		fi
		nbdkit -U - "$@" --run 'nbdinfo "$uri"; qemu-io -f raw -c "write -P 1 0 4k" "$uri"' \
			>out.txt 2>&1
		grep -q 'read_only: true\|is_read_only: true' out.txt || fail "$ro: not read-only: $(cat out.txt)"
		grep -qi 'permission\|read-only\|not permitted' out.txt || fail "$ro: write not refused: $(cat out.txt)"
	done
	[ "$(snap master.img c.cow)" = "$before" ] || fail "the pair changed"
	# readonly=true takes the kernel's read lock: two readers at once, no
	# writer.
	serve c.cow readonly=true
	nbdkit -U - "$PLUGIN" c.cow readonly=true --run 'nbdcopy "$uri" out.img' 2>err.txt ||
		{ unserve; fail "a second reader refused: $(cat err.txt)"; }
	randfile chunk 512
	"$COWUTIL" write c.cow 0 chunk 2>err.txt && { unserve; fail "written while served"; }
	unserve
	grep -q locked err.txt || fail "no lock error: $(cat err.txt)"
	cmp out.img exp.img || fail "read-only copy differs"
	[ "$(snap master.img c.cow)" = "$before" ] || fail "the pair changed"
}

# --- the backing file ----------------------------------------------------------

# backing= replaces the header's path, with the kernel's size and mtime
# checks; a failed check is one line and touches nothing.
t_backing_override_and_checks() {
	need nbdkit nbdcopy
	make_pair 8
	mkdir moved
	mv master.img moved/m.img
	before=$(snap moved/m.img c.cow)
	refused "cannot open backing file $T/master.img" c.cow
	nbdkit -U - "$PLUGIN" c.cow backing=moved/m.img --run 'nbdcopy "$uri" out.img' ||
		fail "with backing="
	cmp out.img exp.img || fail "merged view with backing= differs"
	[ "$(snap moved/m.img c.cow)" = "$before" ] || fail "the pair changed"
	cp -p moved/m.img other.img
	touch -d '2022-01-01' other.img
	before=$(snap other.img c.cow)
	refused "mtime" c.cow backing=other.img
	touch -d '2020-02-02 02:02:02' other.img
	truncate -s +512 other.img
	touch -d '2020-02-02 02:02:02' other.img
	refused "bytes but the header says" c.cow backing=other.img
	refused "cannot open backing file $T/missing.img" c.cow backing=missing.img
	truncate -s -512 other.img
	touch -d '2022-01-01' other.img
	[ "$(snap other.img c.cow)" = "$before" ] || fail "the pair changed"
}

# --- bad input -----------------------------------------------------------------

t_bad_input() {
	need nbdkit
	make_pair 8
	randfile notcow.img 65536
	cp --sparse=always c.cow short.cow
	truncate -s 8200 short.cow                       # ends inside the bitmap
	cp --sparse=always c.cow cut.cow
	truncate -s $(($(info_get c.cow data_offset) + MiB)) cut.cow   # data cut short
	before=$(snap master.img c.cow notcow.img short.cow cut.cow)
	refused "not a COW file" notcow.img
	refused "short.cow" short.cow
	refused "cut short" cut.cow
	refused "no-such.cow" no-such.cow
	refused "no COW file given"
	refused "unknown parameter 'bogus'" c.cow bogus=1
	refused "boolean (maybe)" c.cow readonly=maybe
	refused "file given twice" c.cow file=c.cow
	[ "$(snap master.img c.cow notcow.img short.cow cut.cow)" = "$before" ] ||
		fail "an input changed"
}

# Sector sizes: what uml_mkcow makes (512 to 65536) is served, the merged
# view whole through nbdcopy; what no UML kernel or uml_mkcow makes is
# refused at start, saying why and what to use: 1 (every byte a sector:
# served, a 64 MiB copy took 40 s), 131072 and 2^31 (no NBD block size
# fits: every connection died).
t_sector_sizes() {
	need nbdkit nbdcopy
	randfile master.img $((4 * MiB))
	touch -d '2020-02-02 02:02:02' master.img
	randfile chunk 65536
	for ss in 1 131072 2147483648; do
		"$COWUTIL" create -s $ss c$ss.cow master.img || fail "cowutil create -s $ss"
		refused "c$ss.cow: sector size $ss is not served (512 to 65536 bytes, as uml_mkcow makes them and a UML kernel reads them); uml_moo can merge it" c$ss.cow
	done
	"$COWUTIL" create -s 65536 c.cow master.img || fail "cowutil create -s 65536"
	"$COWUTIL" write c.cow 131072 chunk || fail "cowutil write"
	"$COWUTIL" merged c.cow exp.img >/dev/null || fail "cowutil merged"
	nbdkit -U - "$PLUGIN" c.cow --run 'nbdcopy "$uri" got.img' >out.txt 2>err.txt ||
		fail "sector size 65536 not served: $(cat err.txt)"
	cmp got.img exp.img || fail "sector size 65536: the merged view differs"
}

# --- host locks against a running guest ----------------------------------------

# A COW that a running linux.uml holds is refused; once the guest is gone
# it is served.
t_guest_holds_cow_refused() {
	need nbdkit "$UML"
	truncate -s 16M master.img
	mkfs.ext4 -q -F master.img || fail "mkfs.ext4"
	{
		guest_prologue
		echo 'mount /dev/ubda /mnt && echo "GUEST-READY"'
		echo 'sleep 3'
		echo 'umount /mnt'
		echo 'poweroff -f'
	} >init.sh
	uml_boot "gh$$" "$T/init.sh" gh.log ubda="$T/guest.cow,$T/master.img" &
	pid=$!
	wait_log gh.log GUEST-READY $pid
	refused "in use" guest.cow
	wait $pid
	nbdkit -U - "$PLUGIN" guest.cow --run 'nbdinfo --size "$uri"' >out.txt 2>err.txt ||
		fail "not served after the guest: $(cat err.txt)"
	[ "$(cat out.txt)" = $((16 * MiB)) ] || fail "size $(cat out.txt)"
}

# A COW the plugin holds, daemonised (the locks taken after the fork), is
# refused by linux.uml; the guest changes nothing.
t_plugin_holds_cow_guest_refused() {
	need nbdkit "$UML"
	truncate -s 16M master.img
	mkfs.ext4 -q -F master.img || fail "mkfs.ext4"
	touch -d '2021-03-03 03:03:03' master.img
	"$PEER_MKCOW" guest.cow master.img >/dev/null || fail "uml_mkcow"
	before=$(snap master.img guest.cow)
	nbdkit -U "$T/s.sock" -P "$T/n.pid" "$PLUGIN" guest.cow || fail "nbdkit did not start"
	# The daemon writes its pid file after the parent has returned.
	i=0
	until [ -s n.pid ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "nbdkit wrote no pid file"
		sleep 0.1
	done
	pid=$(cat n.pid)
	[ "$pid" ] && kill -0 "$pid" || fail "no daemon"
	{
		guest_prologue
		echo 'if mount /dev/ubda /mnt; then echo "GUEST-MOUNTED"; echo x >/mnt/x; umount /mnt; fi'
		echo 'echo "GUEST-END"'
		echo 'poweroff -f'
	} >init.sh
	uml_boot "ph$$" "$T/init.sh" ph.log ubda="$T/guest.cow,$T/master.img"
	nbdinfo --size "nbd+unix:///?socket=$T/s.sock" >size.txt 2>&1
	kill "$pid"
	grep -q GUEST-END ph.log || fail "guest: $(tail -n 5 ph.log)"
	grep -q GUEST-MOUNTED ph.log && fail "the guest mounted a COW the plugin holds"
	grep -qi "failed to lock" ph.log || fail "no lock failure in the guest's log: $(tail -n 20 ph.log)"
	[ "$(cat size.txt)" = $((16 * MiB)) ] || fail "daemon not serving: $(cat size.txt)"
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "nbdkit did not exit"
		sleep 0.1
	done
	[ "$(snap master.img guest.cow)" = "$before" ] || fail "the pair changed"
}

run_tests "$@"
