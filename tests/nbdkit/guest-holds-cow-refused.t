#!/bin/sh
# A COW that a running linux.uml holds is refused; once the guest is gone
# it is served.
. "$(dirname "$0")/functions.sh"

t_guest_holds_cow_refused() {
	need nbdkit "$UML"
	truncate -s 16M master.img
	mkfs.ext4 -q -F master.img || fail "mkfs.ext4"
	{
		guest_prologue
		echo 'mount /dev/ubda /mnt && echo "GUEST-READY"'
		echo 'sleep 3'
		echo 'umount /mnt'
		echo 'poweroff -f'
	} >init.sh
	uml_boot "gh$$" "$T/init.sh" gh.log ubda="$T/guest.cow,$T/master.img" &
	pid=$!
	wait_log gh.log GUEST-READY $pid
	refused "in use" guest.cow
	wait $pid
	nbdkit -U - "$PLUGIN" guest.cow --run 'nbdinfo --size "$uri"' >out.txt 2>err.txt ||
		fail "not served after the guest: $(cat err.txt)"
	[ "$(cat out.txt)" = $((16 * MiB)) ] || fail "size $(cat out.txt)"
}

run_test t_guest_holds_cow_refused
