#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_locks_like_the_kernel() {
	cd "$T"
	make_master
	"$MKCOW" guest.cow master.img
	{
		guest_prologue
		# The kernel holds the host locks only while the device is open.
		echo 'mount /dev/ubda /mnt && echo "GUEST-READY"'
		echo 'sleep 6'
		echo 'umount /mnt'
		echo 'poweroff -f'
	} >init.sh
	uml_boot lk "$T/init.sh" lk.log ubda="$T/guest.cow,$T/master.img" &
	pid=$!
	i=0
	until grep -q GUEST-READY lk.log 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 300 ] || { kill $pid; fail "guest not ready"; }
		sleep 0.1
	done
	printf 'x%.0s' $(seq 512) >sector
	"$COWUTIL" write guest.cow 0 sector 2>err.txt && { wait $pid; fail "wrote while the guest runs"; }
	grep -q locked err.txt || { wait $pid; fail "no lock error: $(cat err.txt)"; }
	wait $pid
	"$COWUTIL" write guest.cow 0 sector || fail "write after the guest stopped"
	# The guest's own writes may share sector 0's bitmap word: compare data.
	"$COWUTIL" merged guest.cow merged.img || fail merged
	head -c 512 merged.img | cmp - sector || fail "sector 0 not written"
	"$COWUTIL" runs guest.cow | grep -q '^0 ' || fail "bit 0 not set"
}

run_test t_locks_like_the_kernel
