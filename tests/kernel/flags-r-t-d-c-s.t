#!/bin/sh
. "$(dirname "$0")/functions.sh"

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

run_test t_flags_r_t_d_c_s
