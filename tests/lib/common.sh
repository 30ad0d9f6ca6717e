# Shared shell helpers for tests, the demo and the benchmarks.  Source it.
# Needs: B (build dir, absolute), T (scratch dir, absolute).

: "${UML:=linux.uml}"
UML_TIMEOUT=${UML_TIMEOUT:-180}

# Boot a UML guest on the host's root (read-only hostfs) with INIT as init.
#   uml_boot UMID INIT LOG ubd-args...
# The guest's console goes to LOG; returns linux.uml's status.
uml_boot() {
	_ub_umid=$1 _ub_init=$2 _ub_log=$3
	shift 3
	mkdir -p "$T/uml"
	chmod +x "$_ub_init"
	timeout -k 10 "$UML_TIMEOUT" "$UML" mem="${UML_MEM:-128M}" root=/dev/root \
		rootfstype=hostfs hostfs=/ ro init="$_ub_init" "$@" \
		umid="$_ub_umid" uml_dir="$T/uml" con=null con0=fd:0,fd:1 \
		</dev/null >"$_ub_log" 2>&1
}

# Start a UML guest in the background whose console reads a FIFO, so that
# the caller can type lines to the guest's init (uml_type) while it runs.
#   uml_start UMID LOG kernel-args...
# Console to LOG, input from $T/UMID.in; the kernel's pid comes later in
# $T/uml/UMID/pid (uml_pid); uml_started_pid is the launcher's, for wait.
uml_start() {
	_us_umid=$1 _us_log=$2
	shift 2
	mkdir -p "$T/uml"
	rm -f "$T/$_us_umid.in"
	mkfifo "$T/$_us_umid.in"
	# Opened read-write: the guest never sees an end of file.
	timeout -k 10 "$UML_TIMEOUT" "$UML" mem="${UML_MEM:-128M}" "$@" \
		umid="$_us_umid" uml_dir="$T/uml" con=null con0=fd:3,fd:1 \
		3<>"$T/$_us_umid.in" </dev/null >"$_us_log" 2>&1 &
	uml_started_pid=$!
}

# Type a line on the console of a guest started with uml_start; gives up
# (status 1) rather than block when the guest is gone.
uml_type() {
	timeout 10 sh -c 'printf "%s\n" "$1" >"$2"' _ "$2" "$T/$1.in"
}

# The host pid of a running guest's kernel (empty until it wrote it).
uml_pid() { cat "$T/uml/$1/pid" 2>/dev/null; }

# Wait until FILE has a line matching a grep pattern, at most SECONDS;
# fails when the time is up or the process PID (if given) is gone.
#   wait_line FILE PATTERN SECONDS [PID]
wait_line() {
	_wl_end=$(( $(date +%s) + $3 ))
	until grep -q -- "$2" "$1" 2>/dev/null; do
		[ "$(date +%s)" -lt "$_wl_end" ] || return 1
		[ -z "${4:-}" ] || kill -0 "$4" 2>/dev/null || grep -q -- "$2" "$1" || return 1
		sleep 0.1
	done
}

# KiB the host holds for a guest's "physical" memory: the blocks of the
# unlinked tmpfs file UML maps as physmem, found among the fds of the
# guest's kernel process (the largest unlinked O_TMPFILE file).
uml_physmem_kib() {
	_pk_best=0 _pk_kib=
	for _pk_fd in /proc/"$1"/fd/*; do
		case $(readlink "$_pk_fd" 2>/dev/null) in
		*/\#*" (deleted)") ;;
		*) continue ;;
		esac
		set -- "$1" $(stat -L -c '%s %b %B' "$_pk_fd" 2>/dev/null)
		[ $# = 4 ] && [ "$2" -gt "$_pk_best" ] || continue
		_pk_best=$2 _pk_kib=$(( $3 * $4 / 1024 ))
	done
	[ -n "$_pk_kib" ] && echo "$_pk_kib"
}

# Start of every guest init script: a usable PATH, /proc, scratch space.
guest_prologue() {
	cat <<'EOS'
#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sys /sys 2>/dev/null
mount -t tmpfs tmp /tmp 2>/dev/null
EOS
}

# Write an unsigned integer at a byte offset of a file, without truncating.
#   put_int FILE OFFSET VALUE BYTES be|le
put_int() {
	# sh has no locals: these names must not clash with any caller's.
	_pi_f=$1 _pi_off=$2 _pi_v=$3 _pi_n=$4 _pi_order=$5 _pi_s= _pi_i=0
	while [ "$_pi_i" -lt "$_pi_n" ]; do
		if [ "$_pi_order" = be ]; then
			_pi_shift=$(( (_pi_n - 1 - _pi_i) * 8 ))
		else
			_pi_shift=$(( _pi_i * 8 ))
		fi
		_pi_s="$_pi_s\\$(printf %03o $(( (_pi_v >> _pi_shift) & 255 )))"
		_pi_i=$((_pi_i + 1))
	done
	# shellcheck disable=SC2059
	printf "$_pi_s" | dd of="$_pi_f" bs=1 seek="$_pi_off" conv=notrunc status=none
}

# Write a string (no NUL added) at a byte offset.
put_str() {
	printf '%s' "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# Copy one sector of SRC into DST: copy_sector SRC SRCOFF DST DSTOFF SS
copy_bytes() {
	dd if="$1" of="$3" bs="$5" count=1 iflag=skip_bytes oflag=seek_bytes \
		skip="$2" seek="$4" conv=notrunc status=none
}

mtime_of() { stat -c %Y "$1"; }
size_of() { stat -c %s "$1"; }
blocks_of() { stat -c %b "$1"; }

# Value of KEY from `cowutil info`.
info_get() {
	"$B/tests/cowutil" info "$1" | sed -n "s/^$2=//p"
}

# Hand-built COW files of the old layouts, from the documented layout.
#   build_old LAYOUT COW BACKING SECTORS SS ALIGN "sector..."
# Writes the header, sets the bits, fills those sectors with random data,
# and builds $COW.expect, the merged image the layout implies.
build_old() {
	_lay=$1 _cow=$2 _back=$3 _sectors=$4 _ss=$5 _align=$6 _set=$7
	_size=$((_sectors * _ss))
	_mt=$(mtime_of "$_back")
	rm -f "$_cow"
	case $_lay in
	v1)
		_bo=280
		_bl=$(( (_size + _ss - 1) / (8 * _ss) ))
		_do=$(( (_bo + _bl + _ss - 1) / _ss * _ss ))
		put_int "$_cow" 0 $((0x4f4f4f4d)) 4 le
		put_int "$_cow" 4 1 4 le
		put_str "$_cow" 8 "$_back"
		put_int "$_cow" 264 "$_mt" 4 le
		put_int "$_cow" 268 "$_size" 8 le
		put_int "$_cow" 276 "$_ss" 4 le ;;
	v2)
		_bo=4120
		_bl=$(( (_size + _ss - 1) / (8 * _ss) ))
		_do=$(( (_bo + _bl + _ss - 1) / _ss * _ss ))
		put_int "$_cow" 0 $((0x4f4f4f4d)) 4 be
		put_int "$_cow" 4 2 4 be
		put_str "$_cow" 8 "$_back"
		put_int "$_cow" 4104 "$_mt" 4 be
		put_int "$_cow" 4108 "$_size" 8 be
		put_int "$_cow" 4116 "$_ss" 4 be ;;
	v3b)
		_bo=$(( (4136 + _align - 1) / _align * _align ))
		_bl=$(( (_sectors + 7) / 8 ))
		_do=$(( (_bo + _bl + _align - 1) / _align * _align ))
		put_int "$_cow" 0 $((0x4f4f4f4d)) 4 be
		put_int "$_cow" 4 3 4 be
		put_int "$_cow" 8 "$_mt" 4 be
		put_int "$_cow" 16 "$_size" 8 be
		put_int "$_cow" 24 "$_ss" 4 be
		put_int "$_cow" 28 "$_align" 4 be
		put_str "$_cow" 36 "$_back" ;;
	esac
	truncate -s $((_do + _size)) "$_cow"
	cp "$_back" "$_cow.expect"
	for _n in $_set; do
		_byte=$((_bo + _n / 8))
		_old=$(od -An -tu1 -j "$_byte" -N1 "$_cow" | tr -d ' ')
		put_int "$_cow" "$_byte" $((_old | (1 << (_n % 8)))) 1 le
		head -c "$_ss" /dev/urandom >"$T/sector"
		copy_bytes "$T/sector" 0 "$_cow" $((_do + _n * _ss)) "$_ss"
		copy_bytes "$T/sector" 0 "$_cow.expect" $((_n * _ss)) "$_ss"
	done
}

# Hold the kernel's kind of host lock (an fcntl write lock; flock(1) is
# another kind) on FILE from a background process, as a running guest
# does; returns once it is held, with the holder's pid in $lock_holder.
# The caller kills it (it gives up by itself after 60 s).
hold_lock() {
	rm -f "$T/.locked"
	python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "r+b")
fcntl.lockf(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(60)
' "$1" "$T/.locked" &
	lock_holder=$!
	_hl_i=0
	while [ ! -e "$T/.locked" ] && [ $_hl_i -lt 100 ]; do sleep 0.1; _hl_i=$((_hl_i + 1)); done
	[ -e "$T/.locked" ]
}

# Is a write (w) or read (r) fcntl lock on FILE refused, i.e. does another
# process hold a conflicting one?
lock_refused() {
	python3 - "$1" "$2" <<'EOF'
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, (fcntl.LOCK_EX if sys.argv[2] == "w" else fcntl.LOCK_SH) | fcntl.LOCK_NB)
except OSError:
    sys.exit(0)
sys.exit(1)
EOF
}

# Serve FILE (a COW) read-write with our nbdkit-ubd-plugin in the
# background, as a user's NBD server would: it holds the kernel's locks
# (a write lock on the COW, a read lock on its backing file).  Returns
# once the server answers, with its pid in $nbd_pid and its URI in
# $nbd_uri; skips the test where nbdkit or nbdinfo is missing.  nbd_stop
# stops it; the test's EXIT trap does too if the test fails first.
nbd_serve() {
	for _ns_c in nbdkit nbdinfo; do
		command -v $_ns_c >/dev/null 2>&1 || skip "SKIP: $_ns_c not installed"
	done
	rm -rf "$T.nbd" && mkdir "$T.nbd"
	nbdkit -f -U "$T.nbd/sock" -P "$T.nbd/pid" "$B/lib/nbdkit-ubd-plugin.so" "$1" \
		2>"$T.nbd/err" &
	nbd_pid=$!
	trap nbd_stop EXIT
	nbd_uri="nbd+unix:///?socket=$T.nbd/sock"
	_ns_i=0
	until [ -s "$T.nbd/pid" ] && nbdinfo --size "$nbd_uri" >/dev/null 2>&1; do
		kill -0 $nbd_pid 2>/dev/null || fail "nbdkit died: $(cat "$T.nbd/err")"
		_ns_i=$((_ns_i + 1))
		[ $_ns_i -lt 100 ] || fail "nbdkit not serving: $(cat "$T.nbd/err")"
		sleep 0.1
	done
}

nbd_stop() {
	[ -n "${nbd_pid:-}" ] && kill "$nbd_pid" 2>/dev/null && wait "$nbd_pid" 2>/dev/null
	nbd_pid=
	rm -rf "$T.nbd"
	return 0
}

# Wait (bounded) until process PID is stopped, as a test hook's SIGSTOP
# leaves it; fails if it ends first.
wait_stopped() {
	_wst_i=0
	while :; do
		_wst_s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
		case $_wst_s in
		T) return 0 ;;
		Z | '') fail "process $1 ended before it stopped" ;;
		esac
		_wst_i=$((_wst_i + 1))
		[ $_wst_i -lt 3000 ] || fail "process $1 never stopped"
		sleep 0.01
	done
}

# Content and mtime of files, to check that nothing changed.
snap() {
	for _sn_f in "$@"; do
		printf '%s %s %s\n' "$_sn_f" "$(md5sum <"$_sn_f" | cut -c1-32)" "$(stat -c %y "$_sn_f")"
	done
}
