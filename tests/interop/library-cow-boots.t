#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_library_cow_boots() {
	cd "$T"
	make_master
	"$MKCOW" guest.cow master.img
	{
		guest_prologue
		cat <<'EOS'
mount /dev/ubda /mnt || echo "GUEST-ERROR mount"
echo "GUEST-READ $(cat /mnt/hello.txt)"
echo "GUEST-SUM $(md5sum </mnt/data/blob.bin | cut -c1-32)"
echo "written by the guest" >/mnt/new.txt
echo "version=2" >/mnt/etc/app.conf
rm /mnt/data/blob.bin
umount /mnt
sync
poweroff -f
EOS
	} >init.sh
	uml_boot lb "$T/init.sh" lb.log ubda="$T/guest.cow,$T/master.img" ||
		{ cat lb.log >&2; fail boot; }
	grep -q "GUEST-ERROR" lb.log && { cat lb.log >&2; fail "guest error"; }
	grep -q "GUEST-READ hello from the master" lb.log ||
		{ cat lb.log >&2; fail "guest did not read the backing through the COW"; }
	grep -q "GUEST-SUM $(md5sum <tree/data/blob.bin | cut -c1-32)" lb.log ||
		fail "guest read wrong blob"
	[ "$(info_get guest.cow cow_sectors)" -gt 0 ] || fail "guest wrote nothing"
	"$PEER_MOO" guest.cow moo.img || fail "uml_moo"
	"$COWUTIL" merged guest.cow ours.img || fail "merged view"
	cmp moo.img ours.img || fail "merged view differs from uml_moo"
	e2fsck -fn ours.img >fsck.log 2>&1 || { cat fsck.log >&2; fail "fsck"; }
	[ "$(debugfs -R 'cat /new.txt' ours.img 2>/dev/null)" = "written by the guest" ] ||
		fail "new file missing from merged view"
	[ "$(debugfs -R 'cat /etc/app.conf' ours.img 2>/dev/null)" = "version=2" ] ||
		fail "changed file wrong in merged view"
	# The master is untouched.
	[ "$(debugfs -R 'cat /etc/app.conf' master.img 2>/dev/null)" = "version=1" ] ||
		fail "master changed"
}

run_test t_library_cow_boots
