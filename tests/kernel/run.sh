#!/bin/sh
# Boot tests of the UML kernel built with this project's ubd driver and COW
# library (build/kernel/linux, `make kernel`), against the stock driver
# (Debian's linux.uml) and uml-utilities.
#   tests/kernel/run.sh BUILD_DIR [t_NAME...]
# KILL_ROUNDS (default 20) sets how many times the SIGKILL test kills a guest.
# UBD_MAP=1 boots our kernel with map-on-read ('m') on every device given on
# its command line (docs/sharing.md): the whole suite must pass both ways.
# UBD_MAP_LOG=FILE appends each guest's pages_mapped counters to FILE.
set -u

SUITE=kernel
. "$(dirname "$0")/../lib/runner.sh"

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

# --- the build ----------------------------------------------------------

t_build_uses_our_driver_and_library() {
	o=$B/kernel/obj
	grep -qx 'CONFIG_UBDK_UBD=y' "$o/.config" || fail "CONFIG_UBDK_UBD not set"
	! grep -q '^CONFIG_BLK_DEV_UBD=y' "$o/.config" || fail "stock ubd enabled"
	[ -f "$o/arch/um/drivers/ubdk/built-in.a" ] || fail "ubdk not built"
	grep -qx 'CONFIG_PAGE_REPORTING=y' "$o/.config" || fail "CONFIG_PAGE_REPORTING not set"
	for f in cow/cow.o cow/header.o cow/bitmap.o cow/bmap.o cow/cbt.o cow/cbt_file.o cow/crc32.o cow/ubdk_os_posix.o ubd_host.o ubd_host_io.o ubd_host_cbt.o ubd_kern.o ubd_map.o ubd_map_host.o page_report.o; do
		[ -f "$o/arch/um/drivers/ubdk/$f" ] || fail "$f not built"
	done
	# The library's one OS layer, also used by the tools, is linked in
	# (ubdk_os_map only exists there); the driver keeps no bitmap code.
	nm "$OURS" | grep -q ' [tT] ubdk_os_map$' || fail "ubdk_os_posix.c not linked"
	nm "$OURS" | grep -q ' [tT] ubdk_cow_pwritev$' || fail "ubdk_cow_pwritev not linked"
	! grep -q 'ubdk_bitmap_\|write_bitmap' "$ROOT/ubd/ubd_host.c" || fail "the driver still handles the bitmap itself"
	# The stock driver and the kernel's own COW code are not compiled.
	for f in ubd_kern.o ubd_user.o cow_user.o; do
		[ ! -e "$o/arch/um/drivers/$f" ] || fail "stock $f was built"
	done
	nm "$OURS" | grep -q ' [tT] ubdk_cow_open$' || fail "library not linked"
	! nm "$OURS" | grep -q ' [tT] read_cow_header$' || fail "stock COW code linked"
}

t_boot_plain_device() {
	rand_backing disk.img 8
	cat >body <<'EOS'
echo HELLO-UBDK
grep ' ubd$' /proc/devices
ls /sys/block | grep ubd
echo "SUM=$(md5sum </dev/ubda | cut -d' ' -f1)"
echo "SIZE=$(blockdev --getsize64 /dev/ubda)"
echo "RO=$(blockdev --getro /dev/ubda)"
echo "SERIAL=$(cat /sys/block/ubda/serial)"
echo "DISCARD=$(cat /sys/block/ubda/queue/discard_max_bytes)"
echo "DEV=$(stat -c %t:%T /dev/ubda)"
yes PLAIN-WRITE | head -c 8192 | dd of=/dev/ubda bs=4096 seek=100 conv=notrunc,fsync status=none
EOS
	ours plainb body log ubda="$T/disk.img,,SER-42" || true
	ended log
	grep -q HELLO-UBDK log || fail "no greeting"
	grep -q '^ *98 ubd$' log || fail "major 98 not registered: $(grep ubd log)"
	grep -qx 'ubda' log || fail "no ubda"
	grep -qx "SIZE=$((8 * 1048576))" log || fail "size"
	grep -qx "RO=0" log || fail "read-only"
	grep -qx "SERIAL=SER-42" log || fail "serial"
	grep -qx "DEV=62:0" log || fail "major:minor not 98:0 (hex 62:0)"
	grep -q "^DISCARD=[1-9]" log || fail "discard off"
	cp disk.img expect.img
	# The read happened before the write.
	sum=$(md5 disk.img)
	yes PLAIN-WRITE | head -c 8192 | dd of=expect.img bs=4096 seek=100 conv=notrunc status=none
	cmp disk.img expect.img || fail "write not in the file"
	[ "$sum" != "$(grep '^SUM=' log | cut -d= -f2)" ] || fail "the read saw the later write"
}

t_flags_r_t_d_c_s() {
	rand_backing disk.img 4
	truncate -s 4M back.img
	cp disk.img orig.img
	cat >body <<'EOS'
echo "RO=$(blockdev --getro /dev/ubda)"
dd if=/dev/zero of=/dev/ubda bs=4096 count=1 conv=notrunc,fsync status=none 2>/dev/null && echo WRITE-OK || echo WRITE-FAILED
echo "DISCARD=$(cat /sys/block/ubdb/queue/discard_max_bytes)"
echo "MAGIC=$(head -c 4 /dev/ubdc)"
echo "CSIZE=$(blockdev --getsize64 /dev/ubdc)"
yes SYNC-WRITE | head -c 4096 | dd of=/dev/ubdd bs=4096 seek=3 conv=notrunc status=none
sync
EOS
	"$COWUTIL" create d.cow back.img || fail "cowutil create"
	cp disk.img s.img
	ours flags body log ubd0r="$T/disk.img" ubdbt="$T/orig.img" ubdcd="$T/d.cow" \
		ubddsc="$T/s.img" || true
	ended log
	grep -qx RO=1 log || fail "r: not read-only"
	grep -qx WRITE-FAILED log || fail "r: write went through"
	cmp disk.img orig.img || fail "r: file changed"
	grep -qx DISCARD=0 log || fail "t: discard still on"
	grep -qx MAGIC=OOOM log || fail "d: COW file not used raw"
	grep -qx "CSIZE=$(( $(size_of d.cow) ))" log || fail "d: size"
	yes SYNC-WRITE | head -c 4096 | dd of=orig.img bs=4096 seek=3 conv=notrunc status=none
	cmp s.img orig.img || fail "s,c: write missing"
}

# --- ext4 made and filled in the guest, checked from the host ------------

t_ext4_made_in_guest_read_from_host() {
	truncate -s 64M back.img
	cat >body <<'EOS'
mkfs.ext4 -q -F /dev/ubda || echo MKFS-FAILED
mkdir -p /tmp/m && mount -t ext4 /dev/ubda /tmp/m || echo MOUNT-FAILED
i=0
while [ $i -lt 20 ]; do
	head -c $((i * 37000 + 1)) /dev/urandom >/tmp/m/f$i
	echo "SUM f$i $(md5sum </tmp/m/f$i | cut -d' ' -f1)"
	i=$((i + 1))
done
mkdir /tmp/m/dir && cp /bin/ls /tmp/m/dir/ls
sync
umount /tmp/m
EOS
	ours ext4 body log ubda="$T/g.cow,$T/back.img" || true
	ended log
	! grep -q FAILED log || fail "guest: $(grep FAILED log)"
	grep -q 'Creating .*g.cow.* as COW file' log || fail "no creation message"
	[ "$(info_get g.cow layout)" = v3 ] || fail "not a v3 COW"
	[ "$(info_get g.cow backing)" = "$T/back.img" ] || fail "backing path"
	"$COWUTIL" merged g.cow merged.img || fail "cowutil merged"
	e2fsck -fn merged.img >fsck.txt 2>&1 || { cat fsck.txt; fail "fsck of the merged view"; }
	grep '^SUM ' log | while read -r _ f sum; do
		debugfs -R "dump /$f $T/out" merged.img 2>/dev/null
		[ "$(md5 out)" = "$sum" ] || { echo "$f differs" >&2; exit 1; }
	done || fail "file contents"
	debugfs -R "dump /dir/ls $T/ls" merged.img 2>/dev/null
	cmp ls /bin/ls || fail "dir/ls"
	"$MOO" g.cow moo.img >/dev/null || fail "our uml_moo"
	cmp merged.img moo.img || fail "our uml_moo differs from the merged view"
	"$PEER_MOO" g.cow peer.img >/dev/null 2>&1 || fail "uml-utilities uml_moo"
	cmp merged.img peer.img || fail "uml-utilities' uml_moo differs"
	# The stock kernel sees the same file system.
	cat >body2 <<'EOS'
mkdir -p /tmp/m && mount -o ro -t ext4 /dev/ubda /tmp/m && echo "SUM2 $(md5sum </tmp/m/f7 | cut -d' ' -f1)"
umount /tmp/m
EOS
	stock ext4s body2 log2 ubda="$T/g.cow,$T/back.img" || true
	ended log2
	[ "$(sed -n 's/^SUM2 //p' log2)" = "$(sed -n 's/^SUM f7 //p' log)" ] || fail "stock read f7 differently"
}

# --- compatibility matrix --------------------------------------------------

# Writers: stock and ours, each on a fresh COW (created at boot) of one random
# backing, writing marker blocks.  Readers: stock, ours, uml_moo (both).
t_compat_matrix() {
	rand_backing back.img 16
	for w in stock ours; do
		guest_marks "$w" 0 1 7 100 1023 2047 4095 >body.$w
		$w "w$w" body.$w "wlog.$w" ubda="$T/$w.cow,$T/back.img" || true
		ended "wlog.$w"
		grep -q 'Creating' "wlog.$w" || fail "$w: COW not created"
		cp back.img "expect.$w"
		host_marks "expect.$w" "$w" 0 1 7 100 1023 2047 4095
	done
	# The two writers made the same header and bitmap.  (Byte for byte the
	# headers differ only past the path's NUL, where stock leaves junk.)
	"$COWUTIL" info ours.cow >info.ours && "$COWUTIL" info stock.cow >info.stock &&
		cmp info.ours info.stock || fail "headers differ: $(diff info.ours info.stock)"
	bo=$(info_get ours.cow bitmap_offset) do_=$(info_get ours.cow data_offset)
	cmp -n $((do_ - bo)) -i "$bo" ours.cow stock.cow || fail "bitmaps differ between stock and ours"
	[ "$(size_of ours.cow)" = "$(size_of stock.cow)" ] || fail "apparent sizes differ"
	echo 'echo "SUM=$(md5sum </dev/ubda | cut -d" " -f1)"' >rbody
	for w in stock ours; do
		want=$(md5 "expect.$w")
		for r in stock ours; do
			$r "r$w$r" rbody "rlog.$w.$r" ubda="$T/$w.cow,$T/back.img" || true
			ended "rlog.$w.$r"
			[ "$(sed -n 's/^SUM=//p' "rlog.$w.$r")" = "$want" ] ||
				fail "written by $w, read by $r: wrong data"
		done
		"$PEER_MOO" "$w.cow" "peer.$w" >/dev/null 2>&1 || fail "uml_moo on $w.cow"
		cmp "peer.$w" "expect.$w" || fail "written by $w, uml-utilities' uml_moo: wrong"
		"$MOO" "$w.cow" "moo.$w" >/dev/null || fail "our uml_moo on $w.cow"
		cmp "moo.$w" "expect.$w" || fail "written by $w, our uml_moo: wrong"
	done
	# Taking turns on one COW: ours writes over stock's, stock over ours.
	guest_marks ours2 1 5 4095 >body.o2
	ours to2 body.o2 l.o2 ubda="$T/stock.cow,$T/back.img" || true
	ended l.o2
	host_marks expect.stock ours2 1 5 4095
	guest_marks stock2 7 9 >body.s2
	stock ts2 body.s2 l.s2 ubda="$T/stock.cow,$T/back.img" || true
	ended l.s2
	host_marks expect.stock stock2 7 9
	"$COWUTIL" merged stock.cow turns.img || fail merged
	cmp turns.img expect.stock || fail "taking turns: wrong data"
}

t_old_layouts_and_uml_mkcow() {
	# COWs made by uml_mkcow and v2/v1 layouts made by the library.
	rand_backing back.img 4
	uml_mkcow peer.cow back.img >/dev/null
	"$COWUTIL" create -V 2 v2.cow back.img || fail "v2"
	"$COWUTIL" create -V 1 v1.cow back.img || fail "v1"
	# A sector size of 1024: the device's logical blocks follow it.
	"$COWUTIL" create -s 1024 s1k.cow back.img || fail "1024"
	{ guest_marks a 3 700; echo 'echo "SUM=$(md5sum </dev/ubda | cut -d" " -f1)"'; } >body
	cp back.img expect.img
	host_marks expect.img a 3 700
	want=$(md5 expect.img)
	for c in peer v2 v1 s1k; do
		ours "o$c" body "log.$c" ubda="$T/$c.cow,$T/back.img" || true
		ended "log.$c"
		[ "$(sed -n 's/^SUM=//p' "log.$c")" = "$want" ] || fail "$c: guest read wrong data"
		"$COWUTIL" merged "$c.cow" "m.$c" || fail "$c: merged"
		cmp "m.$c" expect.img || fail "$c: merged view wrong"
		case $c in v1|v2) [ "$(info_get "$c.cow" layout)" = "$c" ] || fail "$c: layout changed" ;; esac
	done
}

# --- backing checks and the backing-path switch ---------------------------

t_backing_checks_and_switch() {
	rand_backing back.img 4
	echo 'dd if=/dev/ubda of=/dev/null bs=4096 count=1 status=none 2>/dev/null && echo OPEN-OK || echo OPEN-FAILED' >body
	guest_marks sw 10 >wbody
	ours mk wbody log0 ubda="$T/c.cow,$T/back.img" || true
	ended log0
	cp back.img expect.img
	host_marks expect.img sw 10
	# mtime mismatch: refused, by both kernels.
	touch -d '2001-01-01' back.img
	for k in ours stock; do
		$k "mt$k" body "log.mt.$k" ubda="$T/c.cow,$T/back.img" || true
		ended "log.mt.$k"
		grep -qx OPEN-FAILED "log.mt.$k" || fail "$k: mtime mismatch not refused"
	done
	grep -q 'mtime' log.mt.ours || fail "ours: no mtime message"
	touch -d "@$(info_get c.cow mtime)" back.img
	ours ok body log.ok ubda="$T/c.cow,$T/back.img" || true
	grep -qx OPEN-OK log.ok || fail "matching mtime refused"
	# Size mismatch.
	cp -p back.img big.img && truncate -s 5M big.img && touch -d "@$(info_get c.cow mtime)" big.img
	"$COWUTIL" create s.cow back.img || fail create
	mv back.img keep.img && mv big.img back.img
	ours sz body log.sz ubda="$T/s.cow" || true
	grep -qx OPEN-FAILED log.sz || fail "size mismatch not refused"
	grep -qi 'size\|bytes' log.sz || fail "no size message"
	mv keep.img back.img
	# Moved backing: the command line names the new path; header rewritten.
	mkdir moved && mv back.img moved/new.img
	echo 'echo "SUM=$(md5sum </dev/ubda | cut -d" " -f1)"' >rbody
	ours swo rbody log.sw ubda="$T/c.cow,$T/moved/new.img" || true
	ended log.sw
	grep -q "Switching backing file to '$T/moved/new.img'" log.sw || fail "no switch message"
	[ "$(info_get c.cow backing)" = "$T/moved/new.img" ] || fail "header not rewritten: $(info_get c.cow backing)"
	[ "$(sed -n 's/^SUM=//p' log.sw)" = "$(md5 expect.img)" ] || fail "switched: wrong data"
	# The stock kernel reads the switched COW on its own.
	stock sws rbody log.sws ubda="$T/c.cow" || true
	[ "$(sed -n 's/^SUM=//p' log.sws)" = "$(md5 expect.img)" ] || fail "stock after switch: wrong data"
	# And ours follows a switch made by stock.
	mv moved/new.img moved/again.img
	stock sw2 rbody log.sw2 ubda="$T/c.cow,$T/moved/again.img" || true
	[ "$(info_get c.cow backing)" = "$T/moved/again.img" ] || fail "stock did not switch"
	ours sw3 rbody log.sw3 ubda="$T/c.cow" || true
	[ "$(sed -n 's/^SUM=//p' log.sw3)" = "$(md5 expect.img)" ] || fail "ours after stock's switch"
}

# --- host locks ---------------------------------------------------------------

# The guest waits for the host through a hostfs directory listing (a
# looked-up name may be cached as missing; a listing is read afresh).
t_host_locks() {
	mkdir sig
	rand_backing back.img 4
	# The prologue's tmpfs on /tmp hides the host's /tmp, where $T is.
	cat >body <<EOS
umount /tmp
echo GUEST-UP
dd if=/dev/ubda of=/dev/null bs=4096 count=1 status=none
exec 3</dev/ubda
until ls $T/sig | grep -q go; do sleep 0.1; done
EOS
	for k in ours stock; do
		rm -f sig/go
		$k "lk$k" body "log.$k" ubda="$T/c.cow,$T/back.img" &
		pid=$!
		i=0
		until grep -q GUEST-UP "log.$k" 2>/dev/null; do
			sleep 0.2; i=$((i + 1)); [ $i -lt 150 ] || break
		done
		lock_refused c.cow r && c_locked=1 || c_locked=0
		lock_refused back.img w && b_locked=1 || b_locked=0
		lock_refused back.img r && b_read=1 || b_read=0
		# A second guest on the same COW fails to open it.
		echo 'dd if=/dev/ubda of=/dev/null bs=4096 count=1 status=none 2>/dev/null && echo OPEN-OK || echo OPEN-FAILED' >b2
		ours "lk2$k" b2 "log2.$k" ubda="$T/c.cow,$T/back.img" || true
		touch sig/go
		wait $pid
		[ $c_locked = 1 ] || fail "$k: COW not write-locked"
		[ $b_locked = 1 ] || fail "$k: backing not read-locked"
		[ $b_read = 0 ] || fail "$k: backing write-locked"
		grep -qx OPEN-FAILED "log2.$k" || fail "ours opened a COW that $k holds"
	done
	# 'c': no locks.
	rm -f sig/go
	ours lkc body log.c ubdac="$T/c.cow,$T/back.img" &
	pid=$!
	i=0
	until grep -q GUEST-UP log.c 2>/dev/null; do sleep 0.2; i=$((i + 1)); [ $i -lt 150 ] || break; done
	lock_refused c.cow w && c_locked=1 || c_locked=0
	touch sig/go
	wait $pid
	[ $c_locked = 0 ] || fail "'c' still locks"
}

# --- hot-plug through mconsole ----------------------------------------------

mcon() { uml_mconsole "$T/uml/$1/mconsole" "$2"; }

t_hotplug_mconsole() {
	mkdir sig
	rand_backing back.img 4
	cat >body <<EOS
umount /tmp
echo GUEST-UP
i=0
while [ ! -e /sys/block/ubdb ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i + 1)); done
echo "HOT=\$(cat /sys/block/ubdb/size)"
yes HOTPLUG | head -c 4096 | dd of=/dev/ubdb bs=4096 seek=5 conv=notrunc,fsync status=none
exec 3</dev/ubdb
echo HOLDING
until ls $T/sig | grep -q release; do sleep 0.1; done
exec 3<&-
echo RELEASED
while [ -e /sys/block/ubdb ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i + 1)); done
[ -e /sys/block/ubdb ] && echo STILL-THERE || echo GONE
EOS
	ours hp body log &
	pid=$!
	i=0
	until grep -q GUEST-UP log 2>/dev/null; do sleep 0.2; i=$((i + 1)); [ $i -lt 150 ] || break; done
	mcon hp "config ubdb=$T/hot.cow,$T/back.img" >cfg.out 2>&1 || { cat cfg.out; fail "config failed"; }
	i=0
	until grep -q HOLDING log; do sleep 0.2; i=$((i + 1)); [ $i -lt 150 ] || break; done
	mcon hp "config ubdb" >get.out 2>&1
	mcon hp "remove ubdb" >busy.out 2>&1 && busy=0 || busy=1
	touch sig/release
	i=0
	until grep -q RELEASED log; do sleep 0.2; i=$((i + 1)); [ $i -lt 150 ] || break; done
	sleep 0.5
	mcon hp "remove ubdb" >rm.out 2>&1 || { cat rm.out; fail "remove failed"; }
	mcon hp "config ubdb" >get2.out 2>&1
	wait $pid
	ended log
	grep -q "OK $T/hot.cow,$T/back.img" get.out || fail "config ubdb: $(cat get.out)"
	[ $busy = 1 ] || fail "removed an open device: $(cat busy.out)"
	grep -q GONE log || fail "device still there after remove"
	grep -qx "HOT=8192" log || fail "hot-plugged size"
	cp back.img expect.img
	yes HOTPLUG | head -c 4096 | dd of=expect.img bs=4096 seek=5 conv=notrunc status=none
	"$COWUTIL" merged hot.cow m.img && cmp m.img expect.img || fail "hot-plugged write"
}

# --- discard and write-zeroes -------------------------------------------------

t_discard_and_write_zeroes() {
	rand_backing back.img 8
	cat >body <<'EOS'
dd if=/dev/urandom of=/dev/ubda bs=1M count=8 conv=fsync status=none
blkdiscard -o 1048576 -l 2097152 /dev/ubda && echo DISCARD-OK
blkdiscard -z -o 4194304 -l 1048576 /dev/ubda && echo ZERO-OK
sync
echo "Z1=$(dd if=/dev/ubda bs=1M skip=1 count=2 status=none | tr -d '\0' | wc -c)"
echo "Z2=$(dd if=/dev/ubda bs=1M skip=4 count=1 status=none | tr -d '\0' | wc -c)"
EOS
	ours dsc body log ubda="$T/c.cow,$T/back.img" || true
	ended log
	grep -qx DISCARD-OK log || fail "discard failed"
	grep -qx ZERO-OK log || fail "write-zeroes failed"
	grep -qx Z1=0 log || fail "discarded range not zero in the guest"
	grep -qx Z2=0 log || fail "zeroed range not zero in the guest"
	"$COWUTIL" merged c.cow m.img || fail merged
	[ "$(dd if=m.img bs=1M skip=1 count=2 status=none | tr -d '\0' | wc -c)" = 0 ] || fail "discarded range not zero on the host"
	[ "$(dd if=m.img bs=1M skip=4 count=1 status=none | tr -d '\0' | wc -c)" = 0 ] || fail "zeroed range not zero on the host"
	# The hole is really punched: less than 8 MiB of data allocated.
	[ $(( $(blocks_of c.cow) * 512 )) -lt $((7 * 1048576)) ] || fail "no hole punched: $(blocks_of c.cow) blocks"
	"$PEER_MOO" c.cow peer.img >/dev/null 2>&1 && cmp peer.img m.img || fail "uml_moo view differs"
}

# --- huge sparse devices in a small guest ------------------------------------

# Read LEN bytes at OFF of COW's merged view on the host, through the
# library.
cow_read() { # cow off len
	"$COWUTIL" read "$1" "$2" "$3"
}

# The bitmap of a 1 TiB device is 256 MiB, that of an 8 TiB one 2 GiB: the
# stock driver reads it whole into guest memory at open.  Ours (the
# library's sparse bitmap, in host memory) opens both in a 64 MiB guest.
# 8 TiB is the largest backing whose COW (data offset + size) still fits
# in an ext4 file (16 TiB - 4 KiB at most).
t_sparse_1t_and_8t_devices_in_64m_guest() {
	truncate -s 1T b1.img || fail "no 1 TiB file here"
	truncate -s 8T b8.img || fail "the scratch file system takes no 8 TiB file"
	# 4 KiB blocks written: scattered, the last one of each device included.
	blk_a="0 3 12345 134217728 268435453 268435455"
	blk_b="1 99999 1073741824 2147483000 2147483647"
	{
		echo 'exec 3</dev/ubda 4</dev/ubdb'
		echo 'echo "SIZEA=$(blockdev --getsize64 /dev/ubda) SIZEB=$(blockdev --getsize64 /dev/ubdb)"'
		echo 'echo "MEM0 $(cat /sys/block/ubda/cow_bitmap_mem) $(cat /sys/block/ubdb/cow_bitmap_mem)"'
		for b in $blk_a; do
			echo "yes PATTERN-a-$b | head -c 4096 | dd of=/dev/ubda bs=4096 seek=$b conv=notrunc status=none || echo WRITE-FAILED a $b"
		done
		for b in $blk_b; do
			echo "yes PATTERN-b-$b | head -c 4096 | dd of=/dev/ubdb bs=4096 seek=$b conv=notrunc status=none || echo WRITE-FAILED b $b"
		done
		echo 'sync; blockdev --flushbufs /dev/ubda; blockdev --flushbufs /dev/ubdb'
		echo 'echo "MEM1 $(cat /sys/block/ubda/cow_bitmap_mem) $(cat /sys/block/ubdb/cow_bitmap_mem)"'
		echo 'echo "CBTA $(cat /sys/block/ubda/cbt)"; echo "CBTB $(cat /sys/block/ubdb/cbt)"'
	} >body
	UML_MEM=64M ours big body log ubda="$T/a.cow,$T/b1.img" ubdb="$T/b.cow,$T/b8.img" || true
	ended log
	! grep -q WRITE-FAILED log || fail "guest: $(grep WRITE-FAILED log)"
	grep -qx "SIZEA=$((1 << 40)) SIZEB=$((8 << 40))" log || fail "sizes: $(grep SIZEA log)"
	# What the library holds stays small (a few chunks, not 256 MiB/2 GiB).
	set -- $(sed -n 's/^MEM1 //p' log)
	[ $# = 2 ] && [ "$1" -gt 0 ] && [ "$1" -lt 1048576 ] && [ "$2" -gt 0 ] &&
		[ "$2" -lt 1048576 ] || fail "bitmap memory: $(grep '^MEM' log)"
	echo "bitmap memory after the writes: 1 TiB $1 B, 8 TiB $2 B"
	# The changed-block map follows the writes too (a flat one at 64 KiB
	# would be 16 MiB for 8 TiB): one 4 KiB leaf per 2 GiB region written.
	for d in A B; do
		line=$(sed -n "s/^CBT$d //p" log)
		mem=$(echo "$line" | sed -n 's/.* mem=\([0-9]*\).*/\1/p')
		[ -n "$mem" ] && [ "$mem" -lt 131072 ] || fail "CBT memory of ubd$d: $line"
		echo "CBT map memory, ubd$d: $mem B ($line)"
	done
	echo "$(sed -n 's/^CBTB //p' log)" | grep -q "blocks=5 size=$((8 << 40)) " || fail "8 TiB CBT blocks: $(grep '^CBTB' log)"
	for c in a b; do
		eval "blks=\$blk_$c"
		[ "$(info_get $c.cow layout)" = v3 ] || fail "$c.cow: not v3"
		# The library's bitmap holds exactly the blocks written.
		"$COWUTIL" runs $c.cow >runs.$c || fail "$c.cow: runs"
		for b in $blks; do echo "$((b * 8)) 8"; done | sort -n >want.$c
		sort -n runs.$c | cmp -s - want.$c || fail "$c.cow: runs $(tr '\n' ' ' <runs.$c), want $(tr '\n' ' ' <want.$c)"
		for b in $blks; do
			yes "PATTERN-$c-$b" | head -c 4096 >want
			cow_read $c.cow $((b * 4096)) 4096 >got || fail "$c.cow: read at block $b"
			cmp -s got want || fail "$c.cow: block $b: $(head -c 40 got | tr -d '\0')"
		done
	done
}

# A sector marked present whose data lies past the COW file's end (a COW
# cut short on the host) reads as an I/O error, never as zeros; the
# request fails alone: the rest of the device and other devices go on.
t_cut_cow_fails_only_that_read() {
	rand_backing back.img 4
	rand_backing plain.img 1
	head -c 4096 /dev/urandom >near
	head -c 4096 /dev/urandom >far
	"$COWUTIL" create c.cow back.img || fail create
	"$COWUTIL" write c.cow 4096 near || fail "write near"
	"$COWUTIL" write c.cow $((3 * 1048576)) far || fail "write far"
	truncate -s $(( $(info_get c.cow data_offset) + 2 * 1048576 )) c.cow
	dd if=back.img of=blk2 bs=4096 skip=2 count=1 status=none
	cat >body <<'EOS'
rd() { dd if=/dev/ubda bs=4096 skip=$1 count=1 iflag=direct status=none 2>/dev/null | md5sum | cut -d' ' -f1; }
dd if=/dev/ubda of=/dev/null bs=4096 skip=768 count=1 iflag=direct status=none 2>/dev/null && echo FAR-READ-OK || echo FAR-READ-FAILED
echo "NEAR=$(rd 1)"
echo "BLK2=$(rd 2)"
yes OTHER-DEVICE | head -c 4096 | dd of=/dev/ubdb bs=4096 seek=3 oflag=direct conv=notrunc status=none && echo OTHER-OK
dd if=/dev/ubda of=/dev/null bs=4096 skip=768 count=1 iflag=direct status=none 2>/dev/null && echo FAR-AGAIN-OK || echo FAR-AGAIN-FAILED
EOS
	ours cut body log ubda="$T/c.cow,$T/back.img" ubdb="$T/plain.img" || true
	ended log
	grep -qx FAR-READ-FAILED log || fail "a present sector past the COW's end read without error"
	grep -qx FAR-AGAIN-FAILED log || fail "second read past the end did not fail"
	grep -qx "NEAR=$(md5 near)" log || fail "present sector inside the file: $(grep NEAR= log)"
	grep -qx "BLK2=$(md5 blk2)" log || fail "backing sector: $(grep BLK2= log)"
	grep -qx OTHER-OK log || fail "the other device failed too"
	cp plain.img want.img
	yes OTHER-DEVICE | head -c 4096 | dd of=want.img bs=4096 seek=3 conv=notrunc status=none
	cmp -s plain.img want.img || fail "the other device's write is missing"
}

# A bitmap chunk that cannot be read (an I/O error in the COW's bitmap area,
# injected into our kernel's reads of it by an LD_PRELOAD'ed pread): that
# request fails, again on retry, while the rest of the device (its bitmap
# there a hole, known zero without reading) and another device go on.
t_bitmap_eio_fails_that_request_only() {
	[ -f "$B/tests/eio_preload.so" ] || fail "no $B/tests/eio_preload.so (make check-kernel builds it)"
	rand_backing back.img 32
	rand_backing plain.img 1
	head -c 4096 /dev/urandom >blk0
	"$COWUTIL" create c.cow back.img || fail create
	"$COWUTIL" write c.cow 0 blk0 || fail "write block 0"
	boff=$(info_get c.cow bitmap_offset)
	dd if=back.img of=far bs=4096 skip=6144 count=1 status=none
	cat >body <<'EOS'
rd() { dd if=/dev/ubda bs=4096 skip=$1 count=1 iflag=direct status=none 2>/dev/null | md5sum | cut -d' ' -f1; }
dd if=/dev/ubda of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null && echo BLK0-READ-OK || echo BLK0-READ-FAILED
echo "FAR=$(rd 6144)"
yes OTHER-DEVICE | head -c 4096 | dd of=/dev/ubdb bs=4096 seek=3 oflag=direct conv=notrunc status=none && echo OTHER-OK
dd if=/dev/ubda of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null && echo BLK0-AGAIN-OK || echo BLK0-AGAIN-FAILED
EOS
	LD_PRELOAD="$B/tests/eio_preload.so" UBDK_TEST_EIO_FILE=/c.cow \
		UBDK_TEST_EIO_FROM="$boff" UBDK_TEST_EIO_TO=$((boff + 4096)) \
		ours beio body log ubda="$T/c.cow,$T/back.img" ubdb="$T/plain.img" || true
	ended log
	grep -qx BLK0-READ-FAILED log || fail "a read needing an unreadable bitmap chunk succeeded"
	grep -qx BLK0-AGAIN-FAILED log || fail "the retry did not fail"
	grep -qx "FAR=$(md5 far)" log || fail "the rest of the device: $(grep FAR= log)"
	grep -qx OTHER-OK log || fail "the other device failed too"
	# Nothing was lost: without the fault the data is all there.
	"$COWUTIL" read c.cow 0 4096 | cmp -s - blk0 || fail "block 0 lost"
}

# The backing file replaced (renamed over) while a guest holds the device
# open: the guest keeps reading the file it opened, never a mix; the next
# open (a boot here; as in the stock driver, any first open of the device)
# refuses the new file, whose mtime the header does not record.
t_backing_replaced_while_open() {
	rand_backing back.img 4
	rand_backing other.img 4
	dd if=back.img of=blk5 bs=4096 skip=5 count=1 status=none
	"$COWUTIL" create c.cow back.img || fail create
	mkdir sig
	# As in t_host_locks: the host's /tmp (where $T is) seen through a
	# hostfs listing, read afresh each time.
	cat >body <<EOS
umount /tmp
exec 3</dev/ubda
rd() { dd if=/dev/ubda bs=4096 skip=\$1 count=1 iflag=direct status=none 2>/dev/null | md5sum | cut -d' ' -f1; }
echo "BEFORE=\$(rd 5)"
echo WAITING
i=0
until ls $T/sig | grep -q replaced || [ \$i -ge 300 ]; do sleep 0.1; i=\$((i + 1)); done
echo "AFTER=\$(rd 5) \$i"
EOS
	ours repl body log ubda="$T/c.cow,$T/back.img" &
	bpid=$!
	i=0
	until grep -q WAITING log 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 300 ] || { kill $bpid; fail "guest not waiting"; }
		sleep 0.1
	done
	touch -d '2002-02-02' other.img
	mv other.img back.img
	touch sig/replaced
	wait $bpid
	ended log
	grep -qx "BEFORE=$(md5 blk5)" log || fail "before: $(grep BEFORE= log)"
	grep -q "^AFTER=$(md5 blk5) " log || fail "after the replacement the guest read another file: $(grep AFTER= log)"
	echo 'dd if=/dev/ubda of=/dev/null bs=4096 count=1 status=none 2>/dev/null && echo OPEN-OK || echo OPEN-FAILED' >body2
	ours repl2 body2 log2 ubda="$T/c.cow,$T/back.img" || true
	ended log2
	grep -qx OPEN-FAILED log2 || fail "the replaced backing file was accepted"
	grep -q mtime log2 || fail "no mtime message: $(grep -i ubd log2 | tail -n 3)"
}

# A guest's fsync reaches the host: the I/O thread fdatasyncs the COW file
# (seen by strace attached to the guest's host processes that are not
# ptraced by it: the kernel and its helpers).  The stock 6.1 driver never
# carries out a flush (do_io() runs once per data segment, a flush has
# none): said, not required, as the fsync-free rows of BENCHMARKS.md rely on it.
t_guest_fsync_reaches_host() {
	command -v strace >/dev/null || skip "strace missing"
	mkdir sig
	rand_backing back.img 4
	{
		echo 'umount /tmp; exec 3</dev/ubda'
		echo 'yes one | head -c 4096 | dd of=/dev/ubda bs=4096 seek=2 oflag=direct status=none'
		guest_step 1
		echo 'yes two | head -c 4096 | dd of=/dev/ubda bs=4096 seek=3 oflag=direct conv=fsync status=none && echo SYNCED'
		guest_step 2
	} >body
	for k in ours stock; do
		rm -f c.cow sig/* log st.*
		$k "fs$k" body log ubda="$T/c.cow,$T/back.img" &
		pid=$!
		wait_line log STEP1
		spids=
		for p in $(pgrep -f "umid=fs$k "); do
			[ "$(awk '/^TracerPid/ { print $2 }' "/proc/$p/status" 2>/dev/null)" = 0 ] || continue
			strace -q -e trace=fsync,fdatasync -e signal=none -o "st.$p" -p "$p" 2>"st.$p.err" &
			spids="$spids $!"
		done
		[ -n "$spids" ] || fail "$k: no host process of the guest found"
		# strace -p says nothing once attached: wait until each one traces.
		i=0
		for f in st.*.err; do
			p=${f#st.}
			p=${p%.err}
			until grep -q "^TracerPid:[[:space:]]*[1-9]" "/proc/$p/status" 2>/dev/null || [ $i -ge 200 ]; do
				sleep 0.05
				i=$((i + 1))
			done
		done
		touch sig/1
		wait_line log SYNCED
		# The strace output is complete once the traced call returned.
		i=0
		until cat st.[0-9]* 2>/dev/null | grep -q "^fdatasync(.*= 0" || [ $i -ge 40 ]; do
			sleep 0.05
			i=$((i + 1))
		done
		touch sig/2
		wait $pid
		ended log
		# shellcheck disable=SC2086
		kill $spids 2>/dev/null
		wait $spids 2>/dev/null
		calls=$(cat st.[0-9]* 2>/dev/null | grep -c "^f.*sync(")
		echo "$k: $calls fsync/fdatasync calls on the host for one guest fsync"
		if [ $k = ours ]; then
			cat st.[0-9]* | grep -q "^fdatasync(.*= 0" || fail "our driver did not sync the COW: $(cat st.[0-9]* | head -n 5)"
		fi
	done
}

# --- SIGKILL at any moment ------------------------------------------------------

# Free page reporting (ubd/page_report.c): a guest fills its page cache from
# a 160 MiB device and drops its caches, then a program takes 64 MiB and
# exits; each time the guest's physmem file on the host (the unlinked tmpfs
# file UML maps) shrinks by most of what the guest freed, and the pages it
# gets back afterwards hold the right bytes.
t_freed_memory_goes_back_to_host() {
	rand_backing disk.img 160
	want=$(sha256sum <disk.img | cut -c1-64)
	{
		guest_prologue
		cat <<'EOS'
memfree() { sed -n 's/^MemFree: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
dmesg | grep -q 'Free page reporting enabled' && echo REPORTING
# Held open: the last close of a block device drops its page cache.
exec 3</dev/ubda
echo "SUM1 $(sha256sum </dev/ubda | cut -c1-64)"
echo FILLED
read -r cmd
f0=$(memfree)
sync; echo 3 >/proc/sys/vm/drop_caches
echo "DROPPED $(( $(memfree) - f0 ))"
read -r cmd
# A program that touches 64 MiB and waits for a line before it exits.
perl -e '$x = "a" x (64 << 20); $| = 1; print "ALLOCATED\n"; <STDIN>'
echo EXITED
read -r cmd
# Reused pages: the page cache again, and a tmpfs copy (tmpfs holds half
# the guest's memory at most).
echo "SUM2 $(sha256sum </dev/ubda | cut -c1-64)"
dd if=/dev/ubda of=/tmp/copy bs=1M count=100 status=none || echo "GUEST-ERROR dd"
echo "SUM3 $(sha256sum </tmp/copy | cut -c1-64)"
echo GUEST-END
poweroff -f
EOS
	} >pr.init
	chmod +x pr.init
	UML=$OURS UML_MEM=256M uml_start pr log root=/dev/root rootfstype=hostfs \
		hostfs=/ ro init="$T/pr.init" ubda="$T/disk.img"
	trap 'kill "$uml_started_pid" 2>/dev/null' EXIT
	next() { # next COMMAND-TO-TYPE LINE-TO-WAIT-FOR
		uml_type pr "$1" || fail "cannot type to the guest"
		wait_line log "$2" 120 "$uml_started_pid" || { tail -n 20 log >&2; fail "no $2 from the guest"; }
	}
	# physmem goes from $1 KiB to at most $1 - 80% of $2 KiB; reporting
	# starts 2 s after the first free and goes in rounds.
	gives_back() {
		_end=$(( $(date +%s) + 30 ))
		while now=$(uml_physmem_kib "$pid") && [ $(( ($1 - now) * 10 )) -lt $(($2 * 8)) ]; do
			[ "$(date +%s)" -lt "$_end" ] ||
				fail "$3: physmem $1 KiB -> $now KiB after 30 s; the guest freed $2 KiB"
			sleep 0.2
		done
		echo "$3: physmem $1 KiB -> $now KiB; the guest freed $2 KiB"
	}
	wait_line log '^FILLED' 120 "$uml_started_pid" || { tail -n 20 log >&2; fail "the guest did not read its device"; }
	grep -q '^REPORTING' log || fail "no 'Free page reporting enabled' in the guest's dmesg"
	pid=$(uml_pid pr)
	full=$(uml_physmem_kib "$pid") || fail "no physmem file among the fds of $pid"
	[ "$full" -ge $((160 * 1024)) ] || fail "physmem holds only $full KiB after reading 160 MiB"

	next drop '^DROPPED'
	freed=$(tr -d '\r' <log | sed -n 's/^DROPPED //p')
	[ "$freed" -ge $((128 * 1024)) ] || fail "the guest freed only $freed KiB"
	gives_back "$full" "$freed" "dropped caches"

	before=$now
	next alloc '^ALLOCATED'
	held=$(uml_physmem_kib "$pid")
	[ $((held - before)) -ge $((64 * 1024)) ] ||
		fail "physmem $before -> $held KiB for a program's 64 MiB"
	next exit '^EXITED'
	gives_back "$held" $((held - before)) "exited program"

	next go '^GUEST-END'
	wait "$uml_started_pid"
	! grep -q GUEST-ERROR log || fail "$(grep GUEST-ERROR log)"
	want3=$(head -c $((100 * 1048576)) disk.img | sha256sum | cut -c1-64)
	for n in 1 2 3; do
		[ $n = 3 ] && want=$want3
		tr -d '\r' <log | grep -qx "SUM$n $want" || fail "SUM$n: $(tr -d '\r' <log | grep "^SUM$n") != $want"
	done
}

t_sigkill_keeps_flushed_writes() {
	truncate -s 64M back.img
	mkfs.ext4 -q -F back.img
	cat >body <<'EOS'
mkdir -p /tmp/m && mount -t ext4 /dev/ubda /tmp/m || echo MOUNT-FAILED
echo GUEST-UP
i=0
while :; do
	printf 'record-%06d %s\n' $i "$(head -c 300 /dev/zero | tr '\0' x)" >>/tmp/m/log
	if [ $((i % 7)) = 0 ]; then
		head -c $((4096 * (i % 13 + 1))) /dev/urandom >/tmp/m/blob-$((i % 5))
	fi
	dd if=/dev/null of=/tmp/m/log oflag=append conv=notrunc,fsync status=none
	echo "FLUSHED $i"
	i=$((i + 1))
done
EOS
	round=0
	while [ $round -lt "$KILL_ROUNDS" ]; do
		rm -f c.cow m.img log
		ours "kill$round" body log ubda="$T/c.cow,$T/back.img" &
		bpid=$!
		i=0
		until grep -q GUEST-UP log 2>/dev/null; do sleep 0.1; i=$((i + 1)); [ $i -lt 300 ] || break; done
		grep -q MOUNT-FAILED log && fail "round $round: mount failed"
		# Kill somewhere in the next 0 to 2 seconds.
		sleep "$(awk -v r="$(od -An -tu2 -N2 /dev/urandom)" 'BEGIN { printf "%.2f", (r % 200) / 100 }')"
		upid=$(cat "$T/uml/kill$round/pid" 2>/dev/null)
		[ -n "$upid" ] || fail "round $round: no pid file"
		# Kill the whole instance at once: timeout(1) made it a process
		# group.  (Killing only the main process is not a crash: its
		# ptraced guest processes are let go and run on as host
		# processes for a moment, printing lines the guest never did.)
		pgid=$(ps -o pgid= -p "$upid" | tr -d ' ')
		[ -n "$pgid" ] && [ "$pgid" != "$(ps -o pgid= -p $$ | tr -d ' ')" ] ||
			fail "round $round: no process group of its own"
		kill -9 "-$pgid"
		wait $bpid
		i=0
		while lock_refused c.cow w; do sleep 0.1; i=$((i + 1)); [ $i -lt 100 ] || fail "round $round: COW still locked"; done
		last=$(sed -n 's/^FLUSHED //p' log | tail -n 1)
		"$COWUTIL" merged c.cow m.img || fail "round $round: merged"
		e2fsck -E journal_only -p m.img >/dev/null 2>&1
		e2fsck -fn m.img >fsck.txt 2>&1 || { cat fsck.txt; fail "round $round: fsck not clean"; }
		if [ -n "$last" ]; then
			debugfs -R "dump /log $T/got" m.img 2>/dev/null
			grep -q "^record-$(printf %06d "$last") " got ||
				fail "round $round: flushed record $last missing (file has $(wc -l <got) lines)"
			n=$(grep -c '^record-' got)
			[ "$n" -gt "$last" ] || fail "round $round: $n records, $last flushed"
		fi
		echo "round $round: killed after record ${last:-none}"
		round=$((round + 1))
	done
}

# The same promise on the raw device: O_DIRECT writes of numbered records
# to scattered new blocks, each followed by fsync; after the kill every
# record the guest saw flushed is in the merged view.
t_sigkill_raw_device() {
	rand_backing back.img 64
	cat >body <<'EOS'
echo GUEST-UP
i=0
while :; do
	printf 'record-%06d\n' $i | dd of=/dev/ubda bs=4096 seek=$((i * 37 % 16000)) conv=sync,notrunc,fsync oflag=direct status=none
	echo "FLUSHED $i"
	i=$((i + 1))
done
EOS
	round=0
	while [ $round -lt "$KILL_ROUNDS" ]; do
		rm -f c.cow m.img log
		ours "raw$round" body log ubda="$T/c.cow,$T/back.img" &
		bpid=$!
		i=0
		until grep -q GUEST-UP log 2>/dev/null; do sleep 0.1; i=$((i + 1)); [ $i -lt 300 ] || break; done
		sleep "$(awk -v r="$(od -An -tu2 -N2 /dev/urandom)" 'BEGIN { printf "%.2f", (r % 150) / 100 }')"
		upid=$(cat "$T/uml/raw$round/pid" 2>/dev/null)
		[ -n "$upid" ] || fail "round $round: no pid file"
		pgid=$(ps -o pgid= -p "$upid" | tr -d ' ')
		[ -n "$pgid" ] && [ "$pgid" != "$(ps -o pgid= -p $$ | tr -d ' ')" ] ||
			fail "round $round: no process group of its own"
		kill -9 "-$pgid"
		wait $bpid
		last=$(sed -n 's/^FLUSHED //p' log | tail -n 1)
		"$COWUTIL" merged c.cow m.img || fail "round $round: merged"
		grep -a -o 'record-[0-9]*' m.img | sort -u >have
		j=0
		while [ -n "$last" ] && [ $j -le "$last" ]; do
			grep -qx "record-$(printf %06d $j)" have ||
				fail "round $round: flushed record $j of 0..$last missing"
			j=$((j + 1))
		done
		echo "round $round: killed after record ${last:-none}"
		round=$((round + 1))
	done
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

t_cbt_checkpoints_maps_and_reboot() {
	mkdir sig
	rand_backing back.img 64
	{
		echo 'umount /tmp; exec 3</dev/ubda'
		guest_direct one 3 100 101
		guest_step 1
		guest_direct two 17 32 33 34 35 500
		guest_step 2
		guest_direct three 1000 4095
		echo 'echo "CBT $(cat /sys/block/ubda/cbt)"'
	} >body
	ours cbt1 body log ubda="$T/c.cow,$T/back.img" &
	pid=$!
	wait_line log STEP1
	# No record yet: not consistent, and says why.
	mcon cbt1 "cbt ubd0" >st.out 2>&1
	grep -q '^OK checkpoint= state=inconsistent reason=missing granularity=65536 blocks=2 size=67108864' st.out ||
		fail "status before any checkpoint: $(cat st.out)"
	checkpoint cbt1 A
	grep -q "from= to=A state=inconsistent reason=missing .*blocks=2 .*map=$T/c.cow.cbt-map\$" ckpt.out ||
		fail "checkpoint A: $(cat ckpt.out)"
	touch sig/1
	wait_line log STEP2
	checkpoint cbt1 B
	grep -q "from=A to=B state=consistent granularity=65536 blocks=3 " ckpt.out || fail "checkpoint B: $(cat ckpt.out)"
	# Exactly the blocks written between A and B.
	map_runs c.cow.cbt-map >got
	want_runs 17 32 33 34 35 500 >want
	cmp -s got want || fail "map A..B: $(tr '\n' ' ' <got), want $(tr '\n' ' ' <want)"
	[ "$(map_key c.cow.cbt-map from) $(map_key c.cow.cbt-map to) $(map_key c.cow.cbt-map consistent)" = "A B yes" ] ||
		fail "map header: $("$COWUTIL" cbt-map c.cow.cbt-map | head -n 5 | tr '\n' ' ')"
	# The map holds every completed write: those blocks read back from
	# the COW file on the host now, while the guest runs on.
	for b in 17 500; do
		yes "PATTERN-two-$b" | head -c 4096 >w
		"$COWUTIL" read c.cow $((b * 4096)) 4096 | cmp -s - w || fail "block $b not in the COW at checkpoint B"
	done
	touch sig/2
	wait $pid
	ended log
	grep -q "^CBT checkpoint=B state=consistent granularity=65536 blocks=2 " log || fail "guest status: $(grep '^CBT' log)"
	# A clean poweroff leaves a CLEAN record of what changed since B.
	[ "$(rec_key c.cow.cbt state) $(rec_key c.cow.cbt checkpoint) $(rec_key c.cow.cbt consistent)" = "clean B yes" ] ||
		fail "record after poweroff: $("$COWUTIL" cbt-record c.cow.cbt 2>&1 | head -n 5 | tr '\n' ' ')"

	# Reboot: tracking goes on, consistent, with the blocks from before.
	rm -f sig/*
	{
		echo 'umount /tmp; exec 3</dev/ubda'
		echo 'echo "CBT $(cat /sys/block/ubda/cbt)"'
		guest_direct four 1001 2000
		guest_step 1
	} >body
	ours cbt2 body log2 ubda="$T/c.cow,$T/back.img" &
	pid=$!
	wait_line log2 STEP1
	grep -q "^CBT checkpoint=B state=consistent granularity=65536 blocks=2 " log2 || fail "after reboot: $(grep '^CBT' log2)"
	! grep -q "tracking starts inconsistent" log2 || fail "reboot: $(grep inconsistent log2)"
	checkpoint cbt2 C
	grep -q "from=B to=C state=consistent granularity=65536 blocks=3 " ckpt.out || fail "checkpoint C: $(cat ckpt.out)"
	map_runs c.cow.cbt-map >got
	want_runs 1000 4095 1001 2000 >want
	cmp -s got want || fail "map B..C: $(tr '\n' ' ' <got), want $(tr '\n' ' ' <want)"
	touch sig/1
	wait $pid
	ended log2
	# Nothing written after C: the record says so, CLEAN.
	[ "$(rec_key c.cow.cbt state) $(rec_key c.cow.cbt checkpoint) $(rec_key c.cow.cbt blocks)" = "clean C 0" ] ||
		fail "record after the second poweroff: $("$COWUTIL" cbt-record c.cow.cbt 2>&1 | head -n 8 | tr '\n' ' ')"
}

# Guest killed with SIGKILL: the record is left OPEN, and the next boot
# says inconsistent (unclean) until the next checkpoint.
t_cbt_sigkill_is_inconsistent() {
	mkdir sig
	rand_backing back.img 16
	{
		echo 'umount /tmp; exec 3</dev/ubda'
		guest_direct one 1 2
		guest_step 1
		guest_direct two 300
		guest_step 2
	} >body
	ours cbtk body log ubda="$T/c.cow,$T/back.img" &
	pid=$!
	wait_line log STEP1
	checkpoint cbtk A
	touch sig/1
	wait_line log STEP2
	[ "$(rec_key c.cow.cbt state)" = open ] || fail "record not OPEN while written: $("$COWUTIL" cbt-record c.cow.cbt 2>&1 | tr '\n' ' ')"
	upid=$(cat "$T/uml/cbtk/pid")
	pgid=$(ps -o pgid= -p "$upid" | tr -d ' ')
	[ -n "$pgid" ] && [ "$pgid" != "$(ps -o pgid= -p $$ | tr -d ' ')" ] || fail "no process group of its own"
	kill -9 "-$pgid"
	wait $pid
	[ "$(rec_key c.cow.cbt state)" = open ] || fail "record after SIGKILL: $("$COWUTIL" cbt-record c.cow.cbt 2>&1 | tr '\n' ' ')"
	i=0
	while lock_refused c.cow w; do sleep 0.1; i=$((i + 1)); [ $i -lt 100 ] || fail "COW still locked"; done

	rm -f sig/*
	{
		echo 'umount /tmp; exec 3</dev/ubda'
		echo 'echo "CBT $(cat /sys/block/ubda/cbt)"'
		guest_direct three 700
		guest_step 1
		echo 'echo "CBT2 $(cat /sys/block/ubda/cbt)"'
	} >body
	ours cbtk2 body log2 ubda="$T/c.cow,$T/back.img" &
	pid=$!
	wait_line log2 STEP1
	grep -q "^CBT checkpoint=A state=inconsistent reason=unclean " log2 || fail "after SIGKILL: $(grep '^CBT' log2)"
	grep -q "tracking starts inconsistent: .*c.cow.cbt: left open" log2 || fail "no kernel message: $(grep -i cbt log2)"
	mcon cbtk2 "cbt ubd0" >st.out 2>&1
	grep -q "^OK checkpoint=A state=inconsistent reason=unclean .*blocks=1 " st.out || fail "status: $(cat st.out)"
	checkpoint cbtk2 B
	grep -q "from=A to=B state=inconsistent reason=unclean " ckpt.out || fail "checkpoint B: $(cat ckpt.out)"
	[ "$(map_key c.cow.cbt-map consistent) $(map_key c.cow.cbt-map reason)" = "no unclean" ] || fail "map not marked inconsistent"
	mcon cbtk2 "cbt ubd0" >st.out 2>&1
	grep -q "^OK checkpoint=B state=consistent .*blocks=0 " st.out || fail "after checkpoint B: $(cat st.out)"
	touch sig/1
	wait $pid
	ended log2
	grep -q "^CBT2 checkpoint=B state=consistent " log2 || fail "guest after B: $(grep '^CBT2' log2)"
}

# The stock kernel boots the COW with the record beside it, and uml_moo
# merges it; once the stock kernel has written the COW, ours says the
# record no longer describes it.  Bad commands get an error reply.
t_cbt_stock_kernel_and_moo() {
	mkdir sig
	rand_backing back.img 16
	{
		echo 'umount /tmp; exec 3</dev/ubda'
		guest_direct ours 5 6
		guest_step 1
		guest_direct ours 40
	} >body
	ours cbts body log ubda="$T/c.cow,$T/back.img" &
	pid=$!
	wait_line log STEP1
	for bad in "cbt" "cbt ubd9" "cbt ubd0 checkpoint" "cbt ubd0 checkpoint a/b" "cbt ubd0 frobnicate X" "cbt ubd1"; do
		mcon cbts "$bad" >bad.out 2>&1
		grep -q '^ERR ' bad.out || fail "'$bad' did not fail: $(cat bad.out)"
	done
	# While running (not stopped) a checkpoint works too.
	mcon cbts "cbt ubd0 checkpoint A" >ckpt.out 2>&1
	grep -q '^OK from= to=A ' ckpt.out || fail "checkpoint while running: $(cat ckpt.out)"
	touch sig/1
	wait $pid
	ended log
	[ "$(rec_key c.cow.cbt state) $(rec_key c.cow.cbt checkpoint)" = "clean A" ] || fail "record not CLEAN"
	cp c.cow.cbt rec.before

	# The stock kernel only reading: the record still describes the COW.
	echo 'echo "SUM=$(md5sum </dev/ubda | cut -d" " -f1)"' >body
	stock stk1 body slog1 ubda="$T/c.cow,$T/back.img" || true
	ended slog1
	cmp -s c.cow.cbt rec.before || fail "the stock kernel changed the record"
	echo 'exec 3</dev/ubda; echo "CBT $(cat /sys/block/ubda/cbt)"' >body
	ours cbts2 body log2 ubda="$T/c.cow,$T/back.img" || true
	ended log2
	grep -q "^CBT checkpoint=A state=consistent granularity=65536 blocks=1 " log2 ||
		fail "after a read-only stock boot: $(grep '^CBT' log2)"

	# The stock kernel writing the COW.
	guest_marks stock 60 >body
	stock stk2 body slog2 ubda="$T/c.cow,$T/back.img" || true
	ended slog2
	cp back.img expect.img
	host_marks expect.img ours 5 6 40
	host_marks expect.img stock 60
	"$PEER_MOO" c.cow peer.img >/dev/null 2>&1 || fail "uml_moo failed"
	cmp peer.img expect.img || fail "uml_moo's merge differs"
	"$COWUTIL" merged c.cow m.img && cmp m.img expect.img || fail "our merge differs"
	echo 'exec 3</dev/ubda; echo "CBT $(cat /sys/block/ubda/cbt)"' >body
	ours cbts3 body log3 ubda="$T/c.cow,$T/back.img" || true
	ended log3
	grep -q "^CBT checkpoint=A state=inconsistent reason=cow-changed " log3 ||
		fail "after the stock kernel wrote: $(grep '^CBT' log3)"
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

t_map_on_read_master_untouched_writes_in_cow() {
	map_master 16
	rand_backing plain.img 48
	{
		map_body
		# Pages freed above (dropped caches) are reused: hostfs reads
		# into them with a host read(), which fails (EFAULT) on a page
		# still mapped read-only from the master, and so does the I/O
		# thread for a plain device.
		# (The guest's /tmp is its own tmpfs: $T through hostfs.)
		echo "mount -t hostfs -o $T none /mnt"
		echo 'echo "HOSTFS=$(md5sum </mnt/plain.img | cut -d" " -f1)"'
		echo 'echo "PLAIN=$(md5sum </dev/ubdb | cut -d" " -f1)"'
	} >body
	UML_MEM=96M ours map1 body log ubdam="$T/c.cow,$T/master.img" \
		ubdb="$T/plain.img" || true
	ended log
	grep -q MOUNT-FAILED log && fail "mount failed"
	[ "$(guest_val log MAP)" = 1 ] || fail "map_on_read not 1: $(grep MAP= log)"
	[ "$(guest_val log SUM0)" = "$(md5 m/data.bin)" ] || fail "mapped read differs"
	[ "$(guest_val log MAPPED)" -ge 4096 ] || fail "pages_mapped $(guest_val log MAPPED), want >= 4096 (16 MiB read)"
	[ "$(guest_val log BIN)" = 2 ] || fail "binary from the master: exit $(guest_val log BIN), want 2 (usage)"
	[ "$(guest_val log UNW)" -ge 1 ] || fail "pages_unmapped_on_write $(guest_val log UNW)"
	grep -qx COHERENT-OK log || fail "read-only mapping: $(grep COHERENT log)"
	grep -q MWRITE-FAILED log && fail "shared writable mapping failed"
	[ "$(guest_val log UNM)" -ge 1 ] || fail "pages_unmapped_on_map $(guest_val log UNM)"
	[ "$(guest_val log SUM1)" = "$(md5 expect.bin)" ] || fail "cached contents after writes"
	[ "$(guest_val log SUM2)" = "$(md5 expect.bin)" ] || fail "contents re-read after writes"
	[ "$(guest_val log FALLBACKS)" = 0 ] || fail "map_fallbacks $(guest_val log FALLBACKS)"
	[ "$(guest_val log HOSTFS)" = "$(md5 plain.img)" ] || fail "a freed page kept the master's mapping (hostfs read)"
	[ "$(guest_val log PLAIN)" = "$(md5 plain.img)" ] || fail "a reused page kept the master's mapping"
	cmp master.img master.orig || fail "the master changed"
	# A fresh boot, and the stock kernel, read the writes from the COW.
	echo 'mount -o ro /dev/ubda /mnt; echo "SUM=$(md5sum </mnt/data.bin | cut -d" " -f1)"' >body2
	ours map2 body2 log2 ubdam="$T/c.cow,$T/master.img" || true
	ended log2
	[ "$(guest_val log2 SUM)" = "$(md5 expect.bin)" ] || fail "fresh boot reads $(guest_val log2 SUM)"
	stock map3 body2 log3 ubda="$T/c.cow,$T/master.img" || true
	ended log3
	[ "$(guest_val log3 SUM)" = "$(md5 expect.bin)" ] || fail "stock kernel reads $(guest_val log3 SUM)"
	cmp master.img master.orig || fail "the master changed"
}

# Processes map pages of the master read-only (kernel/patches/0004): a
# read-only shared mapping sees another process's write(); a shared
# writable mapping's write reaches every mapping, the COW and no master;
# a private mapping's write stays in its process.
t_map_on_read_processes_see_writes() {
	map_master 16
	cp m/data.bin expect.bin
	printf COHERENT-2 |
		dd of=expect.bin bs=1 seek=$((45 * 4096)) conv=notrunc status=none
	printf MSHARED-TEXT |
		dd of=expect.bin bs=1 seek=$((50 * 4096)) conv=notrunc status=none
	cat >body <<'EOS'
mount /dev/ubda /mnt || echo MOUNT-FAILED
s=/sys/block/ubda
echo "SUM0=$(md5sum </mnt/data.bin | cut -d' ' -f1)"
u0=$(cat $s/pages_user_mapped)
/mnt/maptool coherent /mnt/data.bin $((45 * 4096)) COHERENT-2
u1=$(cat $s/pages_user_mapped)
/mnt/maptool mshared /mnt/data.bin $((50 * 4096)) MSHARED-TEXT
u2=$(cat $s/pages_user_mapped)
/mnt/maptool mprivate /mnt/data.bin $((60 * 4096)) MPRIVATE-TEXT
u3=$(cat $s/pages_user_mapped)
echo "USER=$((u1 - u0)) $((u2 - u1)) $((u3 - u2))"
echo "SUM1=$(md5sum </mnt/data.bin | cut -d' ' -f1)"
sync
echo 3 >/proc/sys/vm/drop_caches
echo "SUM2=$(md5sum </mnt/data.bin | cut -d' ' -f1)"
umount /mnt
EOS
	UML_MEM=96M ours mapw body log ubdam="$T/c.cow,$T/master.img" || true
	ended log
	grep -q MOUNT-FAILED log && fail "mount failed"
	[ "$(guest_val log SUM0)" = "$(md5 m/data.bin)" ] || fail "mapped read differs"
	# Each step mapped the page it then wrote from the master first.
	set -- $(guest_val log USER)
	[ $# = 3 ] && [ "$1" -ge 1 ] && [ "$2" -ge 3 ] && [ "$3" -ge 2 ] ||
		fail "pages_user_mapped moved by '$*', want >= 1 3 2"
	# (What a stale mapping shows is random bytes: cat -v.)
	grep -qx COHERENT-OK log || fail "read-only mapping: $(grep -a COHERENT log | cat -v)"
	grep -qx MSHARED-OK log || fail "shared writable mapping: $(grep -a MSHARED log | cat -v)"
	grep -qx MPRIVATE-OK log || fail "private mapping: $(grep -a MPRIVATE log | cat -v)"
	[ "$(guest_val log SUM1)" = "$(md5 expect.bin)" ] || fail "cached contents after writes"
	[ "$(guest_val log SUM2)" = "$(md5 expect.bin)" ] || fail "contents re-read after writes"
	cmp master.img master.orig || fail "the master changed"
	echo 'mount -o ro /dev/ubda /mnt; echo "SUM=$(md5sum </mnt/data.bin | cut -d" " -f1)"' >body2
	stock mapw2 body2 log2 ubda="$T/c.cow,$T/master.img" || true
	ended log2
	[ "$(guest_val log2 SUM)" = "$(md5 expect.bin)" ] || fail "the COW read by the stock kernel: $(guest_val log2 SUM)"
}

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

# A program run from the master and the file it maps read-only are the
# host's pages of the master in the guest's process (kernel/patches/0004).
t_map_on_read_program_text_from_the_master() {
	map_master 16
	{
		guest_prologue
		cat <<'EOS'
mount -o ro /dev/ubda /mnt || echo MOUNT-FAILED
s=/sys/block/ubda
cat /mnt/data.bin /mnt/maptool >/dev/null
u0=$(cat $s/pages_user_mapped)
/mnt/maptool hold /mnt/data.bin -
echo "USER=$(( $(cat $s/pages_user_mapped) - u0 ))"
echo GUEST-END
poweroff -f
EOS
	} >text.init
	chmod +x text.init
	UML=$OURS UML_MEM=96M uml_start text log root=/dev/root \
		rootfstype=hostfs hostfs=/ ro init="$T/text.init" \
		ubdam="$T/c.cow,$T/master.img"
	trap 'kill "$uml_started_pid" 2>/dev/null' EXIT
	wait_line log '^HOLD' 120 "$uml_started_pid" || { tail -n 20 log >&2; fail "no HOLD from the guest"; }
	grep -q MOUNT-FAILED log && fail "mount failed"
	pid=$(uml_pid text)
	set -- $(tr -d '\r' <log | sed -n 's/^HOLD data=\(0x[0-9a-f]*\) text=\(0x[0-9a-f]*\) sum=.*/\1 \2/p')
	[ $# = 2 ] || fail "HOLD line: $(grep HOLD log)"
	child_maps_file_at "$pid" "$1" "$T/master.img" ||
		fail "no host process of the guest maps the master at $1 (data)"
	child_maps_file_at "$pid" $(($1 + 8 * 1048576)) "$T/master.img" ||
		fail "no host process of the guest maps the master at $1 + 8 MiB"
	child_maps_file_at "$pid" "$2" "$T/master.img" ||
		fail "no host process of the guest maps the master at $2 (text)"
	uml_type text go || fail "cannot type to the guest"
	wait "$uml_started_pid"
	ended log
	want=$("$MAPTOOL" sum m/data.bin - | sed 's/^SUM //')
	tr -d '\r' <log | grep -qx "HOLD .* $want" || fail "HOLD: $(grep HOLD log), want $want"
	tr -d '\r' <log | grep -qx "HELD $want" || fail "HELD: $(grep HELD log), want $want"
	# Every page of the 16 MiB file, and the program's text.
	[ "$(guest_val log USER | tr -d '\r')" -ge 4097 ] ||
		fail "pages_user_mapped moved by $(guest_val log USER)"
	cmp master.img master.orig || fail "the master changed"
}

t_map_on_read_past_max_map_count_falls_back() {
	[ "$(id -u)" = 0 ] || skip "needs root to lower vm.max_map_count"
	# The limit is the host's: one test at a time lowers it (tests run in
	# parallel, check-kernel and check-kernel-map side by side, other
	# trees too), or one would save another's lowered value as the one to
	# put back.  Held until the limit is back.
	exec 9>/tmp/ubdkit-max_map_count.lock
	flock 9 || fail "flock /tmp/ubdkit-max_map_count.lock"
	old=$(cat /proc/sys/vm/max_map_count)
	trap 'echo "$old" >/proc/sys/vm/max_map_count' EXIT
	# The budget is (limit - maps in use (about 50) - 4096) / 2 runs of
	# pages that share a host mapping: a few hundred.
	echo 4800 >/proc/sys/vm/max_map_count
	map_master 32
	cat >body <<'EOS'
mount /dev/ubda /mnt || echo MOUNT-FAILED
s=/sys/block/ubda
/mnt/maptool stride /mnt/data.bin 2 -
echo "MAPPED=$(cat $s/pages_mapped)"
echo "FALLBACKS=$(cat $s/map_fallbacks)"
echo "SUM0=$(md5sum </mnt/data.bin | cut -d' ' -f1)"
yes WRITE-PAGE | head -c 4096 | dd of=/mnt/data.bin bs=4096 seek=10 conv=notrunc status=none
sync
echo 3 >/proc/sys/vm/drop_caches
echo "SUM1=$(md5sum </mnt/data.bin | cut -d' ' -f1)"
umount /mnt
EOS
	ours mapc body log ubdam="$T/c.cow,$T/master.img" 9>&- &
	pid=$!
	# The guest reads the limit once, at boot: the host's other processes
	# get theirs back at once.
	wait_line log 'map-on-read maps at most'
	echo "$old" >/proc/sys/vm/max_map_count
	trap - EXIT
	exec 9>&-
	wait $pid
	ended log
	grep -q MOUNT-FAILED log && fail "mount failed"
	budget=$(sed -n 's/.*map-on-read maps at most \([0-9]*\) .*/\1/p' log)
	[ -n "$budget" ] && [ "$budget" -gt 0 ] && [ "$budget" -lt 2048 ] ||
		fail "budget '$budget' not between 1 and 2047"
	# 4096 isolated pages read: more runs than the budget.
	grep -qx 'STRIDE-READ 4096' log || fail "stride: $(grep STRIDE log)"
	[ "$(guest_val log MAPPED)" -ge 1 ] || fail "nothing mapped"
	[ "$(guest_val log FALLBACKS)" -ge $((4096 - budget)) ] ||
		fail "map_fallbacks $(guest_val log FALLBACKS), budget $budget"
	[ "$(guest_val log SUM0)" = "$(md5 m/data.bin)" ] || fail "read differs"
	yes WRITE-PAGE | head -c 4096 |
		dd of=m/data.bin bs=4096 seek=10 conv=notrunc status=none
	[ "$(guest_val log SUM1)" = "$(md5 m/data.bin)" ] || fail "contents after a write"
	cmp master.img master.orig || fail "the master changed"
}

# Pages read in one request that are neighbours in physmem and on the
# device share one host mapping (and one punch of physmem), not one each.
t_map_on_read_neighbours_share_one_host_mapping() {
	map_master 16
	cat >body <<'EOS'
mount -o ro /dev/ubda /mnt || echo MOUNT-FAILED
s=/sys/block/ubda
echo "SUM=$(md5sum </mnt/data.bin | cut -d' ' -f1)"
echo "MAPPED=$(cat $s/pages_mapped)"
echo "RUNS=$(cat $s/map_runs)"
umount /mnt
EOS
	ours mapr body log ubdam="$T/c.cow,$T/master.img" || true
	ended log
	grep -q MOUNT-FAILED log && fail "mount failed"
	[ "$(guest_val log SUM)" = "$(md5 m/data.bin)" ] || fail "mapped read differs"
	mapped=$(guest_val log MAPPED) runs=$(guest_val log RUNS)
	[ "$mapped" -ge 4096 ] || fail "pages_mapped $mapped, want >= 4096 (16 MiB read)"
	# The guest reads ahead up to 32 pages at once; pages it allocates
	# one after another are mostly neighbours in physmem.
	[ -n "$runs" ] && [ "$runs" -ge 1 ] && [ $((runs * 4)) -le "$mapped" ] ||
		fail "map_runs '$runs' for $mapped pages mapped: want at most a quarter"
	cmp master.img master.orig || fail "the master changed"
}

# The host reads no more of the master than the guest asks for: faulting
# in a page of the master the host has not cached would read its whole
# read-ahead window around it (mmap read-around).
t_map_on_read_host_reads_only_what_the_guest_reads() {
	map_master 32
	[ "$(stat -f -c %T master.img)" != tmpfs ] ||
		skip "the master is on tmpfs: the host reads nothing ahead there"
	# Out of the host's page cache: written back first, then dropped.
	sync master.img
	dd if=master.img iflag=nocache count=0 status=none
	cached=$(fincore -b -n -o RES master.img)
	[ "$cached" -le 65536 ] || skip "the host keeps $cached bytes of the master cached"
	cat >body <<'EOS'
mount -o ro /dev/ubda /mnt || echo MOUNT-FAILED
/mnt/maptool stride /mnt/data.bin 64 -
echo "MAPPED=$(cat /sys/block/ubda/pages_mapped)"
umount /mnt
echo "SECTORS=$(awk '{ print $3 }' /sys/block/ubda/stat)"
EOS
	ours mapra body log ubdam="$T/c.cow,$T/master.img" || true
	ended log
	grep -q MOUNT-FAILED log && fail "mount failed"
	grep -qx 'STRIDE-READ 128' log || fail "stride: $(grep STRIDE log)"
	[ "$(guest_val log MAPPED)" -ge 128 ] || fail "pages_mapped $(guest_val log MAPPED), want >= 128"
	read_pages=$(($(guest_val log SECTORS) / 8))
	host_pages=$(($(fincore -b -n -o RES master.img) / 4096))
	[ "$host_pages" -le $((read_pages * 2 + 64)) ] ||
		fail "the host cached $host_pages pages of the master for $read_pages the guest read"
	cmp master.img master.orig || fail "the master changed"
}

run_tests "$@"
