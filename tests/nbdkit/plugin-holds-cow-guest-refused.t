#!/bin/sh
# A COW the plugin holds, daemonised (the locks taken after the fork), is
# refused by linux.uml; the guest changes nothing.
. "$(dirname "$0")/functions.sh"

t_plugin_holds_cow_guest_refused() {
	need nbdkit "$UML"
	truncate -s 16M master.img
	mkfs.ext4 -q -F master.img || fail "mkfs.ext4"
	touch -d '2021-03-03 03:03:03' master.img
	"$PEER_MKCOW" guest.cow master.img >/dev/null || fail "uml_mkcow"
	before=$(snap master.img guest.cow)
	nbdkit -U "$T/s.sock" -P "$T/n.pid" "$PLUGIN" guest.cow || fail "nbdkit did not start"
	# The daemon writes its pid file after the parent has returned.
	i=0
	until [ -s n.pid ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "nbdkit wrote no pid file"
		sleep 0.1
	done
	pid=$(cat n.pid)
	[ "$pid" ] && kill -0 "$pid" || fail "no daemon"
	{
		guest_prologue
		echo 'if mount /dev/ubda /mnt; then echo "GUEST-MOUNTED"; echo x >/mnt/x; umount /mnt; fi'
		echo 'echo "GUEST-END"'
		echo 'poweroff -f'
	} >init.sh
	uml_boot "ph$$" "$T/init.sh" ph.log ubda="$T/guest.cow,$T/master.img"
	nbdinfo --size "nbd+unix:///?socket=$T/s.sock" >size.txt 2>&1
	kill "$pid"
	grep -q GUEST-END ph.log || fail "guest: $(tail -n 5 ph.log)"
	grep -q GUEST-MOUNTED ph.log && fail "the guest mounted a COW the plugin holds"
	grep -qi "failed to lock" ph.log || fail "no lock failure in the guest's log: $(tail -n 20 ph.log)"
	[ "$(cat size.txt)" = $((16 * MiB)) ] || fail "daemon not serving: $(cat size.txt)"
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "nbdkit did not exit"
		sleep 0.1
	done
	[ "$(snap master.img guest.cow)" = "$before" ] || fail "the pair changed"
}

run_test t_plugin_holds_cow_guest_refused
