#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_sigkill_keeps_flushed_writes() {
	truncate -s 64M back.img
	mkfs.ext4 -q -F back.img
	cat >body <<'EOS'
mkdir -p /tmp/m && mount -t ext4 /dev/ubda /tmp/m || echo MOUNT-FAILED
echo GUEST-UP
i=0
while :; do
	printf 'record-%06d %s\n' $i "$(head -c 300 /dev/zero | tr '\0' x)" >>/tmp/m/log
	if [ $((i % 7)) = 0 ]; then
		head -c $((4096 * (i % 13 + 1))) /dev/urandom >/tmp/m/blob-$((i % 5))
	fi
	dd if=/dev/null of=/tmp/m/log oflag=append conv=notrunc,fsync status=none
	echo "FLUSHED $i"
	i=$((i + 1))
done
EOS
	round=0
	while [ $round -lt "$KILL_ROUNDS" ]; do
		rm -f c.cow m.img log
		ours "kill$round" body log ubda="$T/c.cow,$T/back.img" &
		bpid=$!
		i=0
		until grep -q GUEST-UP log 2>/dev/null; do sleep 0.1; i=$((i + 1)); [ $i -lt 300 ] || break; done
		grep -q MOUNT-FAILED log && fail "round $round: mount failed"
		# Kill somewhere in the next 0 to 2 seconds.
		sleep "$(awk -v r="$(od -An -tu2 -N2 /dev/urandom)" 'BEGIN { printf "%.2f", (r % 200) / 100 }')"
		upid=$(cat "$T/uml/kill$round/pid" 2>/dev/null)
		[ -n "$upid" ] || fail "round $round: no pid file"
		# Kill the whole instance at once: timeout(1) made it a process
		# group.  (Killing only the main process is not a crash: its
		# ptraced guest processes are let go and run on as host
		# processes for a moment, printing lines the guest never did.)
		pgid=$(ps -o pgid= -p "$upid" | tr -d ' ')
		[ -n "$pgid" ] && [ "$pgid" != "$(ps -o pgid= -p $$ | tr -d ' ')" ] ||
			fail "round $round: no process group of its own"
		kill -9 "-$pgid"
		wait $bpid
		i=0
		while lock_refused c.cow w; do sleep 0.1; i=$((i + 1)); [ $i -lt 100 ] || fail "round $round: COW still locked"; done
		last=$(sed -n 's/^FLUSHED //p' log | tail -n 1)
		"$COWUTIL" merged c.cow m.img || fail "round $round: merged"
		e2fsck -E journal_only -p m.img >/dev/null 2>&1
		e2fsck -fn m.img >fsck.txt 2>&1 || { cat fsck.txt; fail "round $round: fsck not clean"; }
		if [ -n "$last" ]; then
			debugfs -R "dump /log $T/got" m.img 2>/dev/null
			grep -q "^record-$(printf %06d "$last") " got ||
				fail "round $round: flushed record $last missing (file has $(wc -l <got) lines)"
			n=$(grep -c '^record-' got)
			[ "$n" -gt "$last" ] || fail "round $round: $n records, $last flushed"
		fi
		echo "round $round: killed after record ${last:-none}"
		round=$((round + 1))
	done
}

run_test t_sigkill_keeps_flushed_writes
