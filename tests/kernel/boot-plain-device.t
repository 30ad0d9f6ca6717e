#!/bin/sh
. "$(dirname "$0")/functions.sh"

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

run_test t_boot_plain_device
