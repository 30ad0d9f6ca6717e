#!/bin/sh
# An image qemu-img can read, through NBD: a qcow2 served by qemu-nbd and
# seen as a file by nbdfuse (FUSE).  A loop device stands for block devices.
. "$(dirname "$0")/functions.sh"

t_diff_qcow2_through_nbd() {
	command -v nbdfuse >/dev/null && command -v qemu-nbd >/dev/null ||
		skip "no nbdfuse or qemu-nbd (packages libnbd-bin, qemu-utils)"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	randfile master.img 8M
	truncate -s 32M master.img
	cp --sparse=always master.img flat.img
	dd if=/dev/urandom of=flat.img bs=512 seek=77 count=9 conv=notrunc status=none
	dd if=/dev/urandom of=flat.img bs=4096 seek=5000 count=3 conv=notrunc status=none
	qemu-img convert -O qcow2 flat.img x.qcow2 || fail "qemu-img convert"
	mkdir mnt
	nbdfuse -r mnt --socket-activation qemu-nbd -r -f qcow2 x.qcow2 2>nbd.err &
	fuse=$!
	i=0
	while [ ! -e mnt/nbd ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	if [ ! -e mnt/nbd ]; then
		kill $fuse 2>/dev/null; wait $fuse
		skip "nbdfuse did not mount: $(head -n 1 nbd.err)"
	fi
	timeout 60 "$MKCOW" --json --diff mnt/nbd a.cow master.img >out.json 2>err.txt
	st=$?
	fusermount3 -u mnt || umount mnt
	wait $fuse
	[ $st = 0 ] || fail "--diff through nbdfuse: exit $st: $(cat err.txt)"
	check_diff flat.img a.cow master.img
	[ "$(json_num out.json sectors_written)" = 33 ] || fail "$(cat out.json)"
	# The same image as a block device.
	[ "$(id -u)" = 0 ] || skip "not root: the block-device half needs a loop device"
	dev=$(losetup -r -f --show flat.img 2>/dev/null) || skip "no loop device for the block-device half"
	"$MKCOW" --diff "$dev" b.cow master.img >out.txt 2>err.txt
	st=$?
	losetup -d "$dev"
	[ $st = 0 ] || fail "--diff of $dev: $(cat err.txt)"
	check_diff flat.img b.cow master.img
}

run_test t_diff_qcow2_through_nbd
