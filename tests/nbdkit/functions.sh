# The nbdkit suite: what its tests (tests/nbdkit/*.t) share; each test sources
# this file, tests/lib/tap.sh runs it.
#
# Tests of nbdkit-ubd-plugin: the recipes of the README and of
# nbdkit-ubd-plugin(1) (qemu-img convert, nbdcopy with four connections,
# nbdinfo --map, nbdfuse mounts read-only and read-write), the merged view
# against uml-utilities' uml_moo, writes that survive SIGKILL after a
# flush, unaligned writes, zero and trim, read-only modes, the backing
# override and its checks, the kernel's host locks against a running
# linux.uml in both directions, and bad input.
#   prove -j2 --directives --comments tests/nbdkit/   (make check-nbdkit)
#   prove -v tests/nbdkit/NAME.t                    (one test; B=BUILD_DIR)
set -u

SUITE=nbdkit
. "$(dirname "$0")/../lib/tap.sh"

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
