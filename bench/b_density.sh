# Host memory of many guests on one master (issue 20): how many copies of
# the master's pages the host holds when N guests read the same files, boot
# to a login prompt, and drop their caches.
#
# The master ($B/density/master.img, built once, DENSITY_VERSION): a Debian
# root file system made with mmdebstrap (minbase + sysvinit-core, the
# host's release) on a 1 GiB ext4 with 4 KiB blocks, plus a fixed file set
# /srv/bench/data (64 files of 4 MiB, pseudo-random from a fixed seed).
# Kernels, in one run: Debian's linux.uml (stock), ours (build/kernel/linux)
# without map-on-read, and with it (flag `m`, ubd0m=) when a kernel has it:
# ours, or DENSITY_KERNEL_MAP=PATH (another checkout's build, described by
# PATH.commit when that exists, as KBENCH_PREVIOUS is); a kernel whose
# device shows no /sys/block/ubda/map_on_read is skipped, and that is said.
#
# 1. Reads (_dn_read_round): N = 1, 4, 8 guests at mem=256M started together,
#    each on a fresh COW over the master, the host's root as hostfs root;
#    each mounts the master read-only and, with the master's own binaries
#    (chroot), cats the file set, sha256sums it (checked against the host's
#    sums) and runs a fixed set of programs; then idles.  Host figures from
#    `sync; echo 3 >/proc/sys/vm/drop_caches` onward, taken when all are idle.
#    Then each guest in turn drops its caches and the host watches that
#    guest's physmem file (the tmpfs file UML maps) for up to 10 s.
# 2. Boot (_dn_boot_round): 8 guests with root=/dev/ubda (their own COWs) booted
#    to a getty; host memory when all eight show the login prompt.
# 3. Throughput (_dn_fio): fio in one guest on master files, buffered,
#    sequential and 4 KiB random, cold and warm guest cache, our kernel
#    without and with mapping.
# Besides /proc/meminfo deltas, which other work on a shared host moves,
# each table has the guests' own memory: their physmem files' blocks plus
# the master's and COWs' pages in the host's page cache (fincore).
# DENSITY_TIMEOUT caps each wait for guests (seconds, default 300).
# DENSITY_PARTS picks parts to run (default "read boot fio", all); the
# section then holds only their tables and says which ran.  DENSITY_SIZES
# picks the N of the read part (default "1 4 8"); the section says so.

DENSITY_VERSION=1
DN_SIZES=${DENSITY_SIZES:-1 4 8}
DN_BOOT_N=8
DN_TIMEOUT=${DENSITY_TIMEOUT:-300}
DN_DROP_MIN_KIB=4096
DN_PARTS=${DENSITY_PARTS:-read boot fio}

bench_density() {
	: >"$T/dn.read"
	: >"$T/dn.drop"
	: >"$T/dn.boot"
	for _p in $DN_PARTS; do
		case $_p in
		read | boot | fio) ;;
		*) echo "bench: density: unknown part '$_p' in DENSITY_PARTS (read, boot, fio)" >&2; return 1 ;;
		esac
	done
	for _n in $DN_SIZES; do
		case $_n in
		'' | *[!0-9]* | 0) echo "bench: density: DENSITY_SIZES holds '$_n', not a number of guests" >&2; return 1 ;;
		esac
	done
	_dn_master || return 1
	_dn_kernels || return 1
	if _dn_part read; then
		for _n in $DN_SIZES; do
			_dn_read_rounds "$_n" || return 1
		done
	fi
	! _dn_part boot || _dn_boot_rounds || return 1
	! _dn_part fio || _dn_fio || return 1
	_dn_emit
}

# Is part $1 (read, boot, fio) to run?
_dn_part() { case " $DN_PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

# --- the master --------------------------------------------------------------

_dn_master() {
	DN=$B/density
	DN_MASTER=$DN/master.img
	DN_SUMS=$DN/data.sha256
	if [ -f "$DN/ok" ] && [ "$(cat "$DN/ok")" = "$DENSITY_VERSION" ] &&
		[ -f "$DN_MASTER" ] && [ -s "$DN_SUMS" ]; then
		return 0
	fi
	command -v mmdebstrap >/dev/null ||
		{ echo "bench: mmdebstrap missing (scripts/deps.sh bench installs it)" >&2; return 1; }
	[ "$(id -u)" = 0 ] ||
		{ echo "bench: the density master is built as root (mmdebstrap, file owners)" >&2; return 1; }
	rm -rf "$DN"
	mkdir -p "$DN"
	_dn_suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
	echo "bench: building the Debian $_dn_suite root file system for density in $DN (once; a few minutes)" >&2
	_dn_root=$DN/root
	mmdebstrap --mode=root --variant=minbase --include=sysvinit-core \
		"$_dn_suite" "$_dn_root" >"$DN/mmdebstrap.log" 2>&1 ||
		{ tail -n 20 "$DN/mmdebstrap.log" >&2; echo "bench: mmdebstrap failed" >&2; return 1; }
	# One getty, on the console UML gives the first console channel
	# (con0 = tty0), and a root on the first ubd device.
	sed -i '/^[0-9]*:[0-9]*:respawn:\/sbin\/getty/d' "$_dn_root/etc/inittab"
	echo '0:2345:respawn:/sbin/getty --noclear -L 38400 tty0 linux' >>"$_dn_root/etc/inittab"
	echo '/dev/ubda / ext4 defaults,noatime 0 0' >"$_dn_root/etc/fstab"
	echo density >"$_dn_root/etc/hostname"
	mkdir -p "$_dn_root/srv/bench/data"
	python3 - "$_dn_root/srv/bench/data" <<'EOF' || return 1
import random, sys
r = random.Random(20)
for i in range(64):
    with open("%s/f%02d" % (sys.argv[1], i), "wb") as f:
        f.write(r.randbytes(4 << 20))
EOF
	(cd "$_dn_root" && sha256sum srv/bench/data/*) >"$DN_SUMS.tmp" || return 1
	mkfs.ext4 -q -F -b 4096 -L density -d "$_dn_root" "$DN_MASTER" 1G >/dev/null ||
		{ echo "bench: mkfs.ext4 of the density master failed" >&2; return 1; }
	rm -rf "$_dn_root"
	mv "$DN_SUMS.tmp" "$DN_SUMS"
	echo "$DENSITY_VERSION" >"$DN/ok"
}

# --- kernels -------------------------------------------------------------------

# DN_KERNELS: "name path ubd-flag" lines: stock, ours, and map (ours with
# `m`) when a kernel with map-on-read is at hand.
_dn_kernels() {
	_ours=$B/kernel/linux
	[ -x "$_ours" ] || "$ROOT/kernel/build.sh" "$B" ours >&2 || return 1
	DN_KERNELS="stock /usr/bin/linux.uml -
ours $_ours -"
	DN_MAP_NOTE=
	for _k in ${DENSITY_KERNEL_MAP:-} "$_ours"; do
		if _dn_has_map "$_k"; then
			DN_KERNELS="$DN_KERNELS
map $_k m"
			DN_MAP_KERNEL=$_k
			return 0
		fi
		DN_MAP_NOTE="$DN_MAP_NOTE \`$_k\`"
	done
	echo "bench: density: no kernel maps on read (no /sys/block/ubda/map_on_read with ubd0m=):$DN_MAP_NOTE; map rows skipped" >&2
}

# Does kernel $1 take ubd0m= and show map_on_read for the device?
_dn_has_map() {
	[ -x "$1" ] || return 1
	rm -f "$T/dn-probe.cow"
	{
		guest_prologue
		echo 'echo "PROBE-MAP=$(cat /sys/block/ubda/map_on_read 2>/dev/null || echo none)"'
		echo 'poweroff -f'
	} >"$T/dn-probe.init"
	UML=$1 UML_TIMEOUT=120 uml_boot dnprobe "$T/dn-probe.init" "$T/dn-probe.log" \
		ubd0m="$T/dn-probe.cow,$DN_MASTER" || true
	rm -f "$T/dn-probe.cow"
	grep -q '^PROBE-MAP=[0-9]' "$T/dn-probe.log"
}

# --- host figures ---------------------------------------------------------------

# "used shmem filecache" in KiB: MemTotal-MemFree, Shmem, Cached-Shmem.
_dn_meminfo() {
	awk '{ v[$1] = $2 } END { print v["MemTotal:"] - v["MemFree:"], v["Shmem:"], v["Cached:"] - v["Shmem:"] }' /proc/meminfo
}

_dn_drop_host_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# A process and its descendants.
_dn_tree() {
	ps -e -o pid=,ppid= | awk -v r="$1" '{ par[$1] = $2 }
		END { keep[r] = 1
		      do { ch = 0; for (p in par) if (!(p in keep) && (par[p] in keep)) { keep[p] = 1; ch = 1 } } while (ch)
		      for (p in keep) print p }'
}

# "pss_shmem pss_file cpu_seconds physmem_kib" of a guest: smaps_rollup summed over its
# host processes, once per address space (the I/O and SIGIO helpers share
# the kernel's: same maps); CPU of the kernel process, its reaped children
# (guest processes that ended) and its live descendants.
_dn_guest_figures() {
	_gf_root=$1
	for _gf_p in $(_dn_tree "$_gf_root"); do
		_gf_mm=$(md5sum <"/proc/$_gf_p/maps" 2>/dev/null | cut -c1-32)
		awk -v mm="$_gf_mm" '/^Pss_Shmem:/ { s = $2 } /^Pss_File:/ { f = $2 } END { print "pss", s + 0, f + 0, mm }' \
			"/proc/$_gf_p/smaps_rollup" 2>/dev/null
		sed 's/^.*) //' "/proc/$_gf_p/stat" 2>/dev/null | awk -v root="$([ "$_gf_p" = "$_gf_root" ] && echo 1)" \
			'{ t = $12 + $13; if (root) t += $14 + $15; print "cpu", t }'
	done | awk -v hz="$(getconf CLK_TCK)" '$1 == "pss" && !seen[$4]++ { s += $2; f += $3 } $1 == "cpu" { c += $2 }
		END { printf "%d %d %.2f ", s, f, c / hz }'
	uml_physmem_kib "$_gf_root" || echo 0
}

# KiB of the files' pages in the host's page cache.
_dn_cached_kib() {
	fincore -b -n -o RES "$@" | awk '{ s += $1 } END { printf "%d\n", s / 1024 }'
}

# KiB of guest memory that the guest's kernel process $1 shows from the
# master (map-on-read: its mappings of the master file) or from the host's
# zero page (read-only private anonymous mappings among physmem's), none
# of which is in its physmem file.  Sizes of those mappings, not their Rss:
# every page of them is mapped (MAP_POPULATE), zero-page ptes never count in
# Rss, and a master page the host has since reclaimed is still the guest's
# page.  smaps lists mappings in address order: a zero-page mapping counts
# when it lies between physmem's or the master's mappings (substitutions
# split physmem's mapping); physmem is the unlinked O_TMPFILE file.
_dn_mapped_kib() {
	awk -v master="$(realpath "$DN_MASTER")" '
		/^[0-9a-f]+-[0-9a-f]+ / {
			name = ""
			for (i = 6; i <= NF; i++) name = name (i > 6 ? " " : "") $i
			if (name == master) kind = "m"
			else if (name ~ /\/#[0-9]+ \(deleted\)$/) kind = "p"
			else if (name == "" && $2 == "r--p") kind = "z"
			else kind = "o"
			next
		}
		/^Size:/ {
			if (kind == "m" || kind == "p") {
				if (inside) mapped += pending
				inside = 1
				pending = 0
				if (kind == "m") mapped += $2
			} else if (kind == "z") {
				if (inside) pending += $2
			} else {
				inside = 0
				pending = 0
			}
		}
		END { print mapped + 0 }' "/proc/$1/smaps"
}

# --- 1. N guests read the same files ----------------------------------------------

# Guest init: read the file set with the master's own programs, report,
# then wait for "drop" and "halt" on the console.
_dn_read_init() {
	guest_prologue
	cat <<'EOS'
mount -o ro /dev/ubda /mnt || { echo "GUEST-ERROR mount"; poweroff -f; }
echo "MAP=$(cat /sys/block/ubda/map_on_read 2>/dev/null || echo none)"
t0=$(date +%s%N)
chroot /mnt /bin/sh -c 'cat /srv/bench/data/* >/dev/null' || echo "GUEST-ERROR cat"
chroot /mnt /bin/sh -c 'cd / && sha256sum srv/bench/data/*' >/tmp/sums || echo "GUEST-ERROR sha256sum"
for p in 'perl -e 1' 'apt-get --version' 'dpkg --version' 'bash -c :' 'tar --version' 'gpgv --version' 'gzip --version' 'find /usr/lib -name "*.so*"' 'sed --version' 'grep --version'; do
	chroot /mnt /bin/sh -c "$p" >/dev/null 2>&1 || echo "GUEST-ERROR $p"
done
t1=$(date +%s%N)
echo "READ-DONE $(( (t1 - t0) / 1000000 )) $(sha256sum </tmp/sums | cut -c1-64)"
memfree() { sed -n 's/^MemFree: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
read -r cmd
f0=$(memfree)
sync; echo 3 >/proc/sys/vm/drop_caches
echo "DROPPED $(( $(memfree) - f0 ))"
read -r cmd
umount /mnt
poweroff -f
EOS
}

# One round: kernel name $1 (from DN_KERNELS), N guests; appends to
# $T/dn.read "kernel N used shmem filecache pss_shmem pss_file readms cpu
# own" (own: the guests' physmem files and the master's and COWs' pages in
# the host's page cache, which other work on the host does not move)
# and to $T/dn.drop what _dn_drop_one measures of each guest.
_dn_read_round() {
	_rk=$1 _rn=$2
	_rkern=$(echo "$DN_KERNELS" | awk -v k="$_rk" '$1 == k { print $2 }')
	_rflag=$(echo "$DN_KERNELS" | awk -v k="$_rk" '$1 == k { print $3 }' | tr -d -)
	_dn_read_init >"$T/dn-read.init"
	chmod +x "$T/dn-read.init"
	_dn_drop_host_caches
	set -- $(_dn_meminfo)
	_b_used=$1 _b_shmem=$2 _b_file=$3
	_i=1
	while [ "$_i" -le "$_rn" ]; do
		rm -f "$T/dn$_i.cow"
		UML=$_rkern UML_MEM=256M UML_TIMEOUT=$((DN_TIMEOUT + 120)) uml_start "dn$_i" "$T/dn$_i.log" \
			root=/dev/root rootfstype=hostfs hostfs=/ ro init="$T/dn-read.init" \
			"ubd0$_rflag=$T/dn$_i.cow,$DN_MASTER"
		eval "_launcher$_i=\$uml_started_pid"
		_i=$((_i + 1))
	done
	_want=$(sha256sum <"$DN_SUMS" | cut -c1-64)
	_ok=1 _i=1 _pss_s=0 _pss_f=0 _cpu=0 _readms=0 _own=0
	while [ "$_i" -le "$_rn" ]; do
		eval "_l=\$_launcher$_i"
		if ! wait_line "$T/dn$_i.log" '^READ-DONE' "$DN_TIMEOUT" "$_l"; then
			tail -n 20 "$T/dn$_i.log" >&2
			echo "bench: density: guest $_i of $_rn ($_rk) did not finish reading" >&2
			_ok=
			break
		fi
		# (The log stays open in the guest: no sed -i on it.)
		tr -d '\r' <"$T/dn$_i.log" >"$T/dn$_i.out"
		if grep -q '^GUEST-ERROR' "$T/dn$_i.out" || ! grep -q "^READ-DONE [0-9]* $_want\$" "$T/dn$_i.out"; then
			grep -e '^GUEST-ERROR' -e '^READ-DONE' "$T/dn$_i.out" >&2
			echo "bench: density: guest $_i of $_rn ($_rk) read wrong data or failed" >&2
			_ok=
			break
		fi
		_i=$((_i + 1))
	done
	if [ -n "$_ok" ]; then
		# All idle: the host's figures.
		set -- $(_dn_meminfo)
		_used=$(($1 - _b_used)) _shmem=$(($2 - _b_shmem)) _file=$(($3 - _b_file))
		_i=1
		while [ "$_i" -le "$_rn" ]; do
			set -- $(_dn_guest_figures "$(uml_pid "dn$_i")")
			_pss_s=$((_pss_s + $1)) _pss_f=$((_pss_f + $2))
			_cpu=$(awk -v a="$_cpu" -v b="$3" 'BEGIN { print a + b }')
			_own=$((_own + $4 + $(_dn_cached_kib "$T/dn$_i.cow")))
			_ms=$(sed -n 's/^READ-DONE \([0-9]*\) .*/\1/p' "$T/dn$_i.out")
			[ "$_ms" -le "$_readms" ] || _readms=$_ms
			_i=$((_i + 1))
		done
		_own=$((_own + $(_dn_cached_kib "$DN_MASTER")))
		echo "$_rk $_rn $_used $_shmem $_file $((_pss_s / _rn)) $((_pss_f / _rn)) $_readms $_cpu $_own" >>"$T/dn.read"
		# Each guest in turn drops its caches; its physmem file is watched.
		_i=1
		while [ "$_i" -le "$_rn" ] && [ -n "$_ok" ]; do
			_dn_drop_one "$_rk" "$_rn" "dn$_i" || _ok=
			_i=$((_i + 1))
		done
	fi
	_i=1
	while [ "$_i" -le "$_rn" ]; do
		uml_type "dn$_i" halt || true
		_i=$((_i + 1))
	done
	_i=1
	while [ "$_i" -le "$_rn" ]; do
		eval "_l=\$_launcher$_i"
		wait "$_l" || true
		rm -f "$T/dn$_i.cow"
		_i=$((_i + 1))
	done
	[ -n "$_ok" ]
}

# Guest $3 drops its caches.  What it frees (MemFree) is of two kinds:
# pages it showed from the master or the zero page (map-on-read), which
# were never in its physmem file and which freeing unmaps (the host's page
# cache keeps the master's pages, shared, for the host to reclaim), and the
# rest, which was in physmem and which free page reporting should punch out
# of it.  Appends "kernel N freed returned t80 mapped" to $T/dn.drop:
# returned, what left the physmem file within 10 s of the command; mapped,
# what the kernel process no longer maps from the master (_dn_mapped_kib);
# t80, when returned reached 80% of freed - mapped (or "-").  Stops early
# once all of that is back, or when nothing moved for 3 s after the
# guest's drop ended.
_dn_drop_one() {
	_dk=$1 _dnn=$2 _du=$3
	_dpid=$(uml_pid "$_du")
	_p0=$(uml_physmem_kib "$_dpid") || return 1
	_m0=$(_dn_mapped_kib "$_dpid") || return 1
	_t0=$(date +%s%N)
	uml_type "$_du" drop || return 1
	_freed='' _t80=- _last=$_p0 _still=$_t0
	while :; do
		_now=$(date +%s%N)
		_p=$(uml_physmem_kib "$_dpid") || return 1
		_m=$(_dn_mapped_kib "$_dpid") || return 1
		[ "$_p" = "$_last" ] || { _last=$_p _still=$_now; }
		if [ -z "$_freed" ] && grep -q '^DROPPED' "$T/$_du.log"; then
			_freed=$(sed -n 's/^DROPPED \([-0-9]*\).*/\1/p' "$T/$_du.log")
			_still=$_now
		fi
		if [ -n "$_freed" ] && [ "$_freed" -gt 0 ]; then
			# What was in physmem: the freeing unmapped the rest
			# before DROPPED (arch_free_page(), synchronous).
			_due=$((_freed - (_m0 - _m)))
			[ "$_t80" != - ] || [ $(( (_p0 - _p) * 10 )) -lt $((_due * 8)) ] ||
				_t80=$(awk -v a="$_t0" -v b="$_now" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
			[ $((_p0 - _p)) -lt "$_due" ] || break
			[ $((_now - _still)) -lt 3000000000 ] || break
		fi
		[ $((_now - _t0)) -lt 10000000000 ] || break
		sleep 0.1
	done
	[ -n "$_freed" ] || { echo "bench: density: $_du did not drop its caches" >&2; return 1; }
	echo "$_dk $_dnn $_freed $((_p0 - _p)) $_t80 $((_m0 - _m))" >>"$T/dn.drop"
}

_dn_read_rounds() {
	_r=0
	while [ "$_r" -lt "$REPEAT" ]; do
		for _k in $(echo "$DN_KERNELS" | cut -d' ' -f1); do
			echo "bench: density: $1 guest(s), $_k, round $((_r + 1))" >&2
			_dn_read_round "$_k" "$1" || return 1
		done
		_r=$((_r + 1))
	done
}

# --- 2. eight guests boot to a login prompt ----------------------------------------

# Appends "kernel used shmem filecache pss_shmem pss_file seconds own" to
# $T/dn.boot: host figures when all DN_BOOT_N guests show the prompt.
_dn_boot_round() {
	_bk=$1
	_bkern=$(echo "$DN_KERNELS" | awk -v k="$_bk" '$1 == k { print $2 }')
	_bflag=$(echo "$DN_KERNELS" | awk -v k="$_bk" '$1 == k { print $3 }' | tr -d -)
	_dn_drop_host_caches
	set -- $(_dn_meminfo)
	_b_used=$1 _b_shmem=$2 _b_file=$3
	_bt0=$(date +%s%N)
	_i=1
	while [ "$_i" -le "$DN_BOOT_N" ]; do
		rm -f "$T/db$_i.cow"
		UML=$_bkern UML_MEM=256M UML_TIMEOUT=$((DN_TIMEOUT + 120)) uml_start "db$_i" "$T/db$_i.log" \
			root=/dev/ubda rw "ubd0$_bflag=$T/db$_i.cow,$DN_MASTER"
		eval "_launcher$_i=\$uml_started_pid"
		_i=$((_i + 1))
	done
	_ok=1 _i=1
	while [ "$_i" -le "$DN_BOOT_N" ]; do
		eval "_l=\$_launcher$_i"
		if ! wait_line "$T/db$_i.log" 'density login:' "$DN_TIMEOUT" "$_l"; then
			tail -n 20 "$T/db$_i.log" >&2
			echo "bench: density: boot $_i ($_bk) shows no login prompt" >&2
			_ok=
			break
		fi
		_i=$((_i + 1))
	done
	if [ -n "$_ok" ]; then
		_secs=$(awk -v a="$_bt0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
		set -- $(_dn_meminfo)
		_used=$(($1 - _b_used)) _shmem=$(($2 - _b_shmem)) _file=$(($3 - _b_file))
		_pss_s=0 _pss_f=0 _own=$(_dn_cached_kib "$DN_MASTER") _i=1
		while [ "$_i" -le "$DN_BOOT_N" ]; do
			set -- $(_dn_guest_figures "$(uml_pid "db$_i")")
			_pss_s=$((_pss_s + $1)) _pss_f=$((_pss_f + $2))
			_own=$((_own + $4 + $(_dn_cached_kib "$T/db$_i.cow")))
			_i=$((_i + 1))
		done
		echo "$_bk $_used $_shmem $_file $((_pss_s / DN_BOOT_N)) $((_pss_f / DN_BOOT_N)) $_secs $_own" >>"$T/dn.boot"
	fi
	_i=1
	while [ "$_i" -le "$DN_BOOT_N" ]; do
		uml_mconsole "$T/uml/db$_i/mconsole" halt >/dev/null 2>&1 || true
		_i=$((_i + 1))
	done
	_i=1
	while [ "$_i" -le "$DN_BOOT_N" ]; do
		eval "_l=\$_launcher$_i"
		wait "$_l" || true
		rm -f "$T/db$_i.cow"
		_i=$((_i + 1))
	done
	[ -n "$_ok" ]
}

_dn_boot_rounds() {
	_r=0
	while [ "$_r" -lt "$REPEAT" ]; do
		for _k in $(echo "$DN_KERNELS" | cut -d' ' -f1); do
			echo "bench: density: boot of $DN_BOOT_N, $_k, round $((_r + 1))" >&2
			_dn_boot_round "$_k" || return 1
		done
		_r=$((_r + 1))
	done
}

# --- 3. in-guest read throughput of master data -------------------------------------

# fio on 32 of the data files (128 MiB), buffered psync reads, in one
# mem=384M guest: cold (guest caches dropped; the master is in the host's
# page cache) then warm (the same reads again), sequential 1 MiB and random
# 4 KiB; three passes of each per boot, the best kept (other work on the
# shared host only ever slows a pass down).  Our kernel without and with
# mapping, alternating boots.
_dn_fio() {
	command -v fio >/dev/null || { echo "bench: fio missing (apt-get install fio)" >&2; return 1; }
	_files=$(i=0; while [ $i -lt 32 ]; do printf '/mnt/srv/bench/data/f%02d:' $i; i=$((i + 1)); done | sed 's/:$//')
	{
		guest_prologue
		cat <<EOS
mount -o ro /dev/ubda /mnt || { echo "GUEST-ERROR mount"; poweroff -f; }
run() { # name rw bs extra...
	n=\$1 rw=\$2 bs=\$3
	shift 3
	fio --name=\$n --filename=$_files --rw=\$rw --bs=\$bs --ioengine=psync \
		--direct=0 --size=128M --randseed=20 --output-format=json "\$@" >/tmp/\$n.json 2>/tmp/\$n.err ||
		{ echo "FIO-FAILED \$n"; cat /tmp/\$n.err; }
	bw=\$(jq ".jobs[0].read.bw_bytes" /tmp/\$n.json)
	echo "PASS \$n \$bw"
	[ "\$bw" -le "\$(cat /tmp/best.\$n 2>/dev/null || echo 0)" ] || echo "\$bw" >/tmp/best.\$n
}
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
for p in 1 2 3; do
	cold; run seqcold read 1M
	run seqwarm read 1M --invalidate=0
done
for p in 1 2 3; do
	cold; run randcold randread 4k
	run randwarm randread 4k --invalidate=0
done
for n in seqcold seqwarm randcold randwarm; do
	echo "RESULT \$n \$(cat /tmp/best.\$n)"
done
echo BENCH-END
poweroff -f
EOS
	} >"$T/dn-fio.init"
	_fk="ours"
	echo "$DN_KERNELS" | grep -q '^map ' && _fk="ours map"
	: >"$T/dn.fio"
	_r=0
	while [ "$_r" -lt "$REPEAT" ]; do
		for _k in $_fk; do
			echo "bench: density: fio, $_k, round $((_r + 1))" >&2
			_fkern=$(echo "$DN_KERNELS" | awk -v k="$_k" '$1 == k { print $2 }')
			_fflag=$(echo "$DN_KERNELS" | awk -v k="$_k" '$1 == k { print $3 }' | tr -d -)
			rm -f "$T/dnf.cow"
			# The master's data in the host's page cache, as other guests leave it.
			cat "$DN_MASTER" >/dev/null
			UML=$_fkern UML_MEM=384M UML_TIMEOUT=$DN_TIMEOUT uml_boot dnfio "$T/dn-fio.init" "$T/dn-fio.log" \
				"ubd0$_fflag=$T/dnf.cow,$DN_MASTER" || true
			sed -i 's/\r$//' "$T/dn-fio.log"
			grep -q BENCH-END "$T/dn-fio.log" && ! grep -q -e FIO-FAILED -e GUEST-ERROR "$T/dn-fio.log" ||
				{ tail -n 30 "$T/dn-fio.log" >&2; echo "bench: density: fio guest ($_k) failed" >&2; return 1; }
			sed -n "s/^RESULT /$_k /p" "$T/dn-fio.log" >>"$T/dn.fio"
			echo "bench: density: fio, $_k: $(sed -n 's/^PASS //p' "$T/dn-fio.log" | tr '\n' ' ')" >&2
		done
		_r=$((_r + 1))
	done
	rm -f "$T/dnf.cow"
}

# --- the tables ----------------------------------------------------------------------

# Median of column $3 of the lines of file $1 whose first fields are $2
# (e.g. "ours 8"); "-" entries are left out; prints "-" when none is left.
_dn_med() {
	awk -v key="$2" -v c="$3" 'index($0, key " ") == 1 && $c != "-" { print $c }' "$1" |
		sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }'
}
_dn_mib() { [ "$1" = - ] && echo - || awk -v k="$1" 'BEGIN { m = sprintf("%.0f", k / 1024); print (m == "-0" ? 0 : m) }'; }
_dn_kernel_name() {
	case $1 in
	stock) echo "Debian linux.uml" ;;
	ours) echo "ubdkit" ;;
	map) echo "ubdkit, map-on-read (\`m\`)" ;;
	esac
}

_dn_emit() {
	_kn=$(echo "$DN_KERNELS" | cut -d' ' -f1)
	emit "## Many guests on one master: host memory (issue 20)"
	emit ""
	emit "Master: a Debian $(. /etc/os-release && echo "$VERSION_CODENAME") root file system (mmdebstrap, minbase +"
	emit "sysvinit-core) on a 1 GiB ext4 with 4 KiB blocks, plus a fixed file set of"
	emit "256 MiB (64 files of 4 MiB). Every guest has mem=256M and its own fresh COW"
	emit "over the master. Kernels: Debian's linux.uml (stock driver), ubdkit's"
	emit "kernel (build/kernel/linux) without map-on-read$(echo "$DN_KERNELS" | grep -q '^map ' && echo ", and with it (\`ubd0m=\`, kernel \`$(cat "$DN_MAP_KERNEL.commit" 2>/dev/null || echo "$DN_MAP_KERNEL")\`)")."
	echo "$DN_KERNELS" | grep -q '^map ' ||
		emit "Rows with map-on-read were skipped: no kernel took \`ubd0m=\` and showed /sys/block/ubda/map_on_read (tried:$DN_MAP_NOTE)."
	emit "The host's vm.max_map_count is $(cat /proc/sys/vm/max_map_count) (each mapped page may cost a mapping)."
	emit "Host figures are deltas from \`sync; echo 3 >/proc/sys/vm/drop_caches\` just"
	emit "before the guests start; medians of $REPEAT rounds, kernels alternating. The"
	emit "machine is shared: other work (compiles, other guests) moves MemTotal-MemFree,"
	emit "Shmem and Cached by hundreds of MiB. \"Guests' own\" is what that does not move:"
	emit "the allocated blocks of the guests' physmem files (the unlinked tmpfs files UML"
	emit "maps) plus the pages of the master and the COWs in the host's page cache"
	emit "(fincore). Pss (smaps_rollup, summed over each guest's host processes, each"
	emit "address space once) is per guest."
	[ "$DN_PARTS" = "read boot fio" ] ||
		emit "This run had only these parts (DENSITY_PARTS): $DN_PARTS."
	! _dn_part read || [ "$DN_SIZES" = "1 4 8" ] ||
		emit "The read part ran only N = $DN_SIZES (DENSITY_SIZES)."
	emit ""
	! _dn_part read || _dn_emit_read
	! _dn_part boot || _dn_emit_boot
	! _dn_part fio || _dn_emit_fio
	emit "Reproduce: \`make kernel && bench/run.sh build density\` (as root: the"
	emit "master is built once with mmdebstrap, a few minutes, into build/density/;"
	emit "DENSITY_KERNEL_MAP=PATH adds a kernel with map-on-read built elsewhere,"
	emit "DENSITY_PARTS=\"boot fio\" runs only some parts, DENSITY_SIZES=\"8\" only"
	emit "some N of the read part)."
	emit ""
}

_dn_emit_read() {
	emit "### N guests read the same 256 MiB, then idle"
	emit ""
	emit "Each guest mounts the master read-only and, with the master's own programs"
	emit "(chroot), runs \`cat\` over the file set, \`sha256sum\` over it (the sums"
	emit "checked against the host's), and a fixed set of programs (perl, apt-get,"
	emit "dpkg, bash, tar, gpgv, gzip, find, sed, grep). Figures when every guest is"
	emit "idle after that. Read time: the slowest guest's, from its own clock. Host"
	emit "CPU: all guests' host processes from boot to idle."
	emit ""
	emit "| kernel | N | MemTotal-MemFree (MiB) | vs stock | guests' own (MiB) | vs stock | Shmem (MiB) | Cached-Shmem (MiB) | Pss_Shmem per guest (MiB) | Pss_File per guest (MiB) | read time (s) | host CPU (s) |"
	emit "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for _n in $DN_SIZES; do
		_su=$(_dn_med "$T/dn.read" "stock $_n" 3)
		_so=$(_dn_med "$T/dn.read" "stock $_n" 10)
		for _k in $_kn; do
			_u=$(_dn_med "$T/dn.read" "$_k $_n" 3)
			_o=$(_dn_med "$T/dn.read" "$_k $_n" 10)
			_rt=$(_dn_med "$T/dn.read" "$_k $_n" 8)
			emit "| $(_dn_kernel_name "$_k") | $_n | $(_dn_mib "$_u") | $(ratio "$_u" "$_su") | $(_dn_mib "$_o") | $(ratio "$_o" "$_so") | $(_dn_mib "$(_dn_med "$T/dn.read" "$_k $_n" 4)") | $(_dn_mib "$(_dn_med "$T/dn.read" "$_k $_n" 5)") | $(_dn_mib "$(_dn_med "$T/dn.read" "$_k $_n" 6)") | $(_dn_mib "$(_dn_med "$T/dn.read" "$_k $_n" 7)") | $(awk -v m="$_rt" 'BEGIN { printf "%.1f", m / 1000 }') | $(_dn_med "$T/dn.read" "$_k $_n" 9) |"
		done
	done
	emit ""
	emit "Goal: 8 guests at most 35% of the stock kernel's MemTotal-MemFree."
	emit ""
	emit "### A guest drops its caches"
	emit ""
	emit "Then each guest in turn runs \`sync; echo 3 >/proc/sys/vm/drop_caches\`."
	emit "\"Freed\" is what that added to the guest's MemFree. With map-on-read, most"
	emit "of it are pages the guest showed from the master (its kernel process's"
	emit "mappings of the master file) or from the host's zero page: they never were in"
	emit "the guest's physmem file (its page was punched when the page was mapped), and"
	emit "freeing them unmaps them (\`arch_free_page()\`), which leaves the master's"
	emit "pages in the host's page cache, shared with the other guests, reclaimable by"
	emit "the host like any file page. \"Mapped from the master\" is what the kernel"
	emit "process stopped mapping from the master and the zero page during the drop (the"
	emit "sizes of those mappings in /proc/PID/smaps, before and after; 0 without"
	emit "map-on-read). \"Physmem returned\" is what left the physmem file (the unlinked"
	emit "tmpfs file UML maps, its allocated blocks) within 10 s of the command, through"
	emit "free page reporting. \"Back\" = physmem returned / (freed - mapped from the"
	emit "master): of what the guest freed that the host held for it alone, how much the"
	emit "host got back; without map-on-read that is all of what it freed. A guest whose"
	emit "freed - mapped is under $((DN_DROP_MIN_KIB / 1024)) MiB is left out of \"back\", the time and the"
	emit "guests reaching 80%, and counted apart: it had nothing measurable in physmem"
	emit "to give back (what the drop itself allocates and frees moves both figures by"
	emit "a few MiB; mapped can exceed freed). Watching stops earlier once all of it is"
	emit "back, or when nothing moved for 3 s after the guest's drop ended. Medians"
	emit "over all guests of all rounds; physmem returned is negative when the file grew."
	emit ""
	emit "| kernel | N | freed in the guest (MiB) | of which mapped from the master (MiB) | physmem returned (MiB) | back | time to 80% back (s) | guests reaching 80% |"
	emit "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for _n in $DN_SIZES; do
		for _k in $_kn; do
			# Guests that had less than DN_DROP_MIN_KIB of what they freed in
			# physmem are left out of "back" and counted apart: a drop's own
			# allocations and frees move the figures by a few MiB.
			awk -v key="$_k $_n" -v min="$DN_DROP_MIN_KIB" 'index($0, key " ") == 1 && $3 - $6 >= min { print $4 / ($3 - $6) * 100 }' "$T/dn.drop" >"$T/dn.pct"
			# (A physmem file that grew a little while watched is 0% back, not "-0%".)
			_pct=$(sort -g "$T/dn.pct" | awk '{ a[NR] = $1 } END { if (NR) { m = a[int((NR + 1) / 2)]; printf "%.0f%%", ((m > -0.5 && m < 0.5) ? 0 : m) } else print "-" }')
			_reach=$(awk -v key="$_k $_n" -v min="$DN_DROP_MIN_KIB" 'index($0, key " ") != 1 { next }
				$3 - $6 < min { few++; next } { n++; if ($5 != "-") r++ }
				END { if (n) printf "%d of %d", r, n; else printf "-"
				      if (few) printf " (%d of %d had < %d MiB in physmem)", few, n + few, min / 1024 }' "$T/dn.drop")
			awk -v min="$DN_DROP_MIN_KIB" '$3 - $6 >= min' "$T/dn.drop" >"$T/dn.due"
			emit "| $(_dn_kernel_name "$_k") | $_n | $(_dn_mib "$(_dn_med "$T/dn.drop" "$_k $_n" 3)") | $(_dn_mib "$(_dn_med "$T/dn.drop" "$_k $_n" 6)") | $(_dn_mib "$(_dn_med "$T/dn.drop" "$_k $_n" 4)") | $_pct | $(_dn_med "$T/dn.due" "$_k $_n" 5) | $_reach |"
		done
	done
	emit ""
	emit "Goal: at least 80% back within 10 s."
	emit ""
}

_dn_emit_boot() {
	emit "### $DN_BOOT_N guests boot to a login prompt"
	emit ""
	emit "$DN_BOOT_N guests started together with root=/dev/ubda (the master through"
	emit "each one's COW) and /sbin/init (sysvinit), each to a getty on its console;"
	emit "host figures when all $DN_BOOT_N show \`density login:\`."
	emit ""
	emit "| kernel | MemTotal-MemFree (MiB) | vs stock | guests' own (MiB) | vs stock | Shmem (MiB) | Cached-Shmem (MiB) | Pss_Shmem per guest (MiB) | Pss_File per guest (MiB) | all prompts after (s) |"
	emit "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	_su=$(_dn_med "$T/dn.boot" stock 2)
	_so=$(_dn_med "$T/dn.boot" stock 8)
	for _k in $_kn; do
		_u=$(_dn_med "$T/dn.boot" "$_k" 2)
		_o=$(_dn_med "$T/dn.boot" "$_k" 8)
		emit "| $(_dn_kernel_name "$_k") | $(_dn_mib "$_u") | $(ratio "$_u" "$_su") | $(_dn_mib "$_o") | $(ratio "$_o" "$_so") | $(_dn_mib "$(_dn_med "$T/dn.boot" "$_k" 3)") | $(_dn_mib "$(_dn_med "$T/dn.boot" "$_k" 4)") | $(_dn_mib "$(_dn_med "$T/dn.boot" "$_k" 5)") | $(_dn_mib "$(_dn_med "$T/dn.boot" "$_k" 6)") | $(_dn_med "$T/dn.boot" "$_k" 7) |"
	done
	emit ""
	emit "Goal: at least 25% less host memory than stock (aim: 40%)."
	emit ""
}

_dn_emit_fio() {
	emit "### In-guest read throughput of master data"
	emit ""
	emit "fio in one mem=384M guest on 32 of the data files (128 MiB) of the master,"
	emit "mounted read-only: buffered psync reads, sequential 1 MiB and random 4 KiB;"
	emit "cold: the guest's caches dropped (the master in the host's page cache), warm:"
	emit "the same reads again. Each boot runs three passes of each and keeps the best"
	emit "(other work on the shared host only slows a pass down); medians of $REPEAT"
	emit "boots per kernel, alternating."
	emit ""
	if echo "$DN_KERNELS" | grep -q '^map '; then
		emit "| workload | ubdkit (MB/s) | map-on-read (MB/s) | map / ubdkit |"
		emit "| --- | ---: | ---: | ---: |"
	else
		emit "| workload | ubdkit (MB/s) |"
		emit "| --- | ---: |"
	fi
	for _t in seqcold seqwarm randcold randwarm; do
		case $_t in
		seqcold) _d="sequential 1 MiB, cold guest cache" ;;
		seqwarm) _d="sequential 1 MiB, warm" ;;
		randcold) _d="random 4 KiB, cold guest cache" ;;
		randwarm) _d="random 4 KiB, warm" ;;
		esac
		_o=$(awk -v t="$_t" '$1 == "ours" && $2 == t { print $3 / 1e6 }' "$T/dn.fio" | sort -g | awk '{ a[NR] = $1 } END { printf "%.1f", a[int((NR + 1) / 2)] }')
		if echo "$DN_KERNELS" | grep -q '^map '; then
			_m=$(awk -v t="$_t" '$1 == "map" && $2 == t { print $3 / 1e6 }' "$T/dn.fio" | sort -g | awk '{ a[NR] = $1 } END { printf "%.1f", a[int((NR + 1) / 2)] }')
			emit "| $_d | $_o | $_m | $(ratio "$_m" "$_o") |"
		else
			emit "| $_d | $_o |"
		fi
	done
	emit ""
	emit "Goal: map-on-read at least 0.9x ubdkit without it everywhere."
	emit ""
}
