#!/bin/sh
# A guest's fsync reaches the host: the I/O thread fdatasyncs the COW file
# (seen by strace attached to the guest's host processes that are not
# ptraced by it: the kernel and its helpers).  The stock 6.1 driver never
# carries out a flush (do_io() runs once per data segment, a flush has
# none): said, not required, as the fsync-free rows of BENCHMARKS.md rely on it.
. "$(dirname "$0")/functions.sh"

t_guest_fsync_reaches_host() {
	command -v strace >/dev/null || skip "strace missing"
	mkdir sig
	rand_backing back.img 4
	{
		echo 'umount /tmp; exec 3</dev/ubda'
		echo 'yes one | head -c 4096 | dd of=/dev/ubda bs=4096 seek=2 oflag=direct status=none'
		guest_step 1
		echo 'yes two | head -c 4096 | dd of=/dev/ubda bs=4096 seek=3 oflag=direct conv=fsync status=none && echo SYNCED'
		guest_step 2
	} >body
	for k in ours stock; do
		rm -f c.cow sig/* log st.*
		$k "fs$k" body log ubda="$T/c.cow,$T/back.img" &
		pid=$!
		wait_line log STEP1
		spids=
		for p in $(pgrep -f "umid=fs$k "); do
			[ "$(awk '/^TracerPid/ { print $2 }' "/proc/$p/status" 2>/dev/null)" = 0 ] || continue
			strace -q -e trace=fsync,fdatasync -e signal=none -o "st.$p" -p "$p" 2>"st.$p.err" &
			spids="$spids $!"
		done
		[ -n "$spids" ] || fail "$k: no host process of the guest found"
		# strace -p says nothing once attached: wait until each one traces.
		i=0
		for f in st.*.err; do
			p=${f#st.}
			p=${p%.err}
			until grep -q "^TracerPid:[[:space:]]*[1-9]" "/proc/$p/status" 2>/dev/null || [ $i -ge 200 ]; do
				sleep 0.05
				i=$((i + 1))
			done
		done
		touch sig/1
		wait_line log SYNCED
		# The strace output is complete once the traced call returned.
		i=0
		until cat st.[0-9]* 2>/dev/null | grep -q "^fdatasync(.*= 0" || [ $i -ge 40 ]; do
			sleep 0.05
			i=$((i + 1))
		done
		touch sig/2
		wait $pid
		ended log
		# shellcheck disable=SC2086
		kill $spids 2>/dev/null
		wait $spids 2>/dev/null
		calls=$(cat st.[0-9]* 2>/dev/null | grep -c "^f.*sync(")
		echo "$k: $calls fsync/fdatasync calls on the host for one guest fsync"
		if [ $k = ours ]; then
			cat st.[0-9]* | grep -q "^fdatasync(.*= 0" || fail "our driver did not sync the COW: $(cat st.[0-9]* | head -n 5)"
		fi
	done
}

run_test t_guest_fsync_reaches_host
