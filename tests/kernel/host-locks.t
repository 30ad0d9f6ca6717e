#!/bin/sh
# The guest waits for the host through a hostfs directory listing (a
# looked-up name may be cached as missing; a listing is read afresh).
. "$(dirname "$0")/functions.sh"

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

run_test t_host_locks
