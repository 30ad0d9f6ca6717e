#!/bin/sh
# Read-write: a file written on the host through the mount is seen by
# Debian's linux.uml booted on the same COW afterwards.
. "$(dirname "$0")/functions.sh"

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

run_test t_mount_readwrite_then_guest
