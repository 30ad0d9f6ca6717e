#!/bin/sh
# A guest writes files through the COW; the pair is mounted read-only on
# the host through nbdfuse and a loop device, without merging.
. "$(dirname "$0")/functions.sh"

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

run_test t_mount_readonly_nbdfuse
