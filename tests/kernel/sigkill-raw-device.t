#!/bin/sh
# The same promise on the raw device: O_DIRECT writes of numbered records
# to scattered new blocks, each followed by fsync; after the kill every
# record the guest saw flushed is in the merged view.
. "$(dirname "$0")/functions.sh"

t_sigkill_raw_device() {
	rand_backing back.img 64
	cat >body <<'EOS'
echo GUEST-UP
i=0
while :; do
	printf 'record-%06d\n' $i | dd of=/dev/ubda bs=4096 seek=$((i * 37 % 16000)) conv=sync,notrunc,fsync oflag=direct status=none
	echo "FLUSHED $i"
	i=$((i + 1))
done
EOS
	round=0
	while [ $round -lt "$KILL_ROUNDS" ]; do
		rm -f c.cow m.img log
		ours "raw$round" body log ubda="$T/c.cow,$T/back.img" &
		bpid=$!
		i=0
		until grep -q GUEST-UP log 2>/dev/null; do sleep 0.1; i=$((i + 1)); [ $i -lt 300 ] || break; done
		sleep "$(awk -v r="$(od -An -tu2 -N2 /dev/urandom)" 'BEGIN { printf "%.2f", (r % 150) / 100 }')"
		upid=$(cat "$T/uml/raw$round/pid" 2>/dev/null)
		[ -n "$upid" ] || fail "round $round: no pid file"
		pgid=$(ps -o pgid= -p "$upid" | tr -d ' ')
		[ -n "$pgid" ] && [ "$pgid" != "$(ps -o pgid= -p $$ | tr -d ' ')" ] ||
			fail "round $round: no process group of its own"
		kill -9 "-$pgid"
		wait $bpid
		last=$(sed -n 's/^FLUSHED //p' log | tail -n 1)
		"$COWUTIL" merged c.cow m.img || fail "round $round: merged"
		grep -a -o 'record-[0-9]*' m.img | sort -u >have
		j=0
		while [ -n "$last" ] && [ $j -le "$last" ]; do
			grep -qx "record-$(printf %06d $j)" have ||
				fail "round $round: flushed record $j of 0..$last missing"
			j=$((j + 1))
		done
		echo "round $round: killed after record ${last:-none}"
		round=$((round + 1))
	done
}

run_test t_sigkill_raw_device
