#!/bin/sh
# Guest killed with SIGKILL: the record is left OPEN, and the next boot
# says inconsistent (unclean) until the next checkpoint.
. "$(dirname "$0")/functions.sh"

t_cbt_sigkill_is_inconsistent() {
	mkdir sig
	rand_backing back.img 16
	{
		echo 'umount /tmp; exec 3</dev/ubda'
		guest_direct one 1 2
		guest_step 1
		guest_direct two 300
		guest_step 2
	} >body
	ours cbtk body log ubda="$T/c.cow,$T/back.img" &
	pid=$!
	wait_line log STEP1
	checkpoint cbtk A
	touch sig/1
	wait_line log STEP2
	[ "$(rec_key c.cow.cbt state)" = open ] || fail "record not OPEN while written: $("$COWUTIL" cbt-record c.cow.cbt 2>&1 | tr '\n' ' ')"
	upid=$(cat "$T/uml/cbtk/pid")
	pgid=$(ps -o pgid= -p "$upid" | tr -d ' ')
	[ -n "$pgid" ] && [ "$pgid" != "$(ps -o pgid= -p $$ | tr -d ' ')" ] || fail "no process group of its own"
	kill -9 "-$pgid"
	wait $pid
	[ "$(rec_key c.cow.cbt state)" = open ] || fail "record after SIGKILL: $("$COWUTIL" cbt-record c.cow.cbt 2>&1 | tr '\n' ' ')"
	i=0
	while lock_refused c.cow w; do sleep 0.1; i=$((i + 1)); [ $i -lt 100 ] || fail "COW still locked"; done

	rm -f sig/*
	{
		echo 'umount /tmp; exec 3</dev/ubda'
		echo 'echo "CBT $(cat /sys/block/ubda/cbt)"'
		guest_direct three 700
		guest_step 1
		echo 'echo "CBT2 $(cat /sys/block/ubda/cbt)"'
	} >body
	ours cbtk2 body log2 ubda="$T/c.cow,$T/back.img" &
	pid=$!
	wait_line log2 STEP1
	grep -q "^CBT checkpoint=A state=inconsistent reason=unclean " log2 || fail "after SIGKILL: $(grep '^CBT' log2)"
	grep -q "tracking starts inconsistent: .*c.cow.cbt: left open" log2 || fail "no kernel message: $(grep -i cbt log2)"
	mcon cbtk2 "cbt ubd0" >st.out 2>&1
	grep -q "^OK checkpoint=A state=inconsistent reason=unclean .*blocks=1 " st.out || fail "status: $(cat st.out)"
	checkpoint cbtk2 B
	grep -q "from=A to=B state=inconsistent reason=unclean " ckpt.out || fail "checkpoint B: $(cat ckpt.out)"
	[ "$(map_key c.cow.cbt-map consistent) $(map_key c.cow.cbt-map reason)" = "no unclean" ] || fail "map not marked inconsistent"
	mcon cbtk2 "cbt ubd0" >st.out 2>&1
	grep -q "^OK checkpoint=B state=consistent .*blocks=0 " st.out || fail "after checkpoint B: $(cat st.out)"
	touch sig/1
	wait $pid
	ended log2
	grep -q "^CBT2 checkpoint=B state=consistent " log2 || fail "guest after B: $(grep '^CBT2' log2)"
}

run_test t_cbt_sigkill_is_inconsistent
