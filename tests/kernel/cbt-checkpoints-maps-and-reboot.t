#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_cbt_checkpoints_maps_and_reboot() {
	mkdir sig
	rand_backing back.img 64
	{
		echo 'umount /tmp; exec 3</dev/ubda'
		guest_direct one 3 100 101
		guest_step 1
		guest_direct two 17 32 33 34 35 500
		guest_step 2
		guest_direct three 1000 4095
		echo 'echo "CBT $(cat /sys/block/ubda/cbt)"'
	} >body
	ours cbt1 body log ubda="$T/c.cow,$T/back.img" &
	pid=$!
	wait_line log STEP1
	# No record yet: not consistent, and says why.
	mcon cbt1 "cbt ubd0" >st.out 2>&1
	grep -q '^OK checkpoint= state=inconsistent reason=missing granularity=65536 blocks=2 size=67108864' st.out ||
		fail "status before any checkpoint: $(cat st.out)"
	checkpoint cbt1 A
	grep -q "from= to=A state=inconsistent reason=missing .*blocks=2 .*map=$T/c.cow.cbt-map\$" ckpt.out ||
		fail "checkpoint A: $(cat ckpt.out)"
	touch sig/1
	wait_line log STEP2
	checkpoint cbt1 B
	grep -q "from=A to=B state=consistent granularity=65536 blocks=3 " ckpt.out || fail "checkpoint B: $(cat ckpt.out)"
	# Exactly the blocks written between A and B.
	map_runs c.cow.cbt-map >got
	want_runs 17 32 33 34 35 500 >want
	cmp -s got want || fail "map A..B: $(tr '\n' ' ' <got), want $(tr '\n' ' ' <want)"
	[ "$(map_key c.cow.cbt-map from) $(map_key c.cow.cbt-map to) $(map_key c.cow.cbt-map consistent)" = "A B yes" ] ||
		fail "map header: $("$COWUTIL" cbt-map c.cow.cbt-map | head -n 5 | tr '\n' ' ')"
	# The map holds every completed write: those blocks read back from
	# the COW file on the host now, while the guest runs on.
	for b in 17 500; do
		yes "PATTERN-two-$b" | head -c 4096 >w
		"$COWUTIL" read c.cow $((b * 4096)) 4096 | cmp -s - w || fail "block $b not in the COW at checkpoint B"
	done
	touch sig/2
	wait $pid
	ended log
	grep -q "^CBT checkpoint=B state=consistent granularity=65536 blocks=2 " log || fail "guest status: $(grep '^CBT' log)"
	# A clean poweroff leaves a CLEAN record of what changed since B.
	[ "$(rec_key c.cow.cbt state) $(rec_key c.cow.cbt checkpoint) $(rec_key c.cow.cbt consistent)" = "clean B yes" ] ||
		fail "record after poweroff: $("$COWUTIL" cbt-record c.cow.cbt 2>&1 | head -n 5 | tr '\n' ' ')"

	# Reboot: tracking goes on, consistent, with the blocks from before.
	rm -f sig/*
	{
		echo 'umount /tmp; exec 3</dev/ubda'
		echo 'echo "CBT $(cat /sys/block/ubda/cbt)"'
		guest_direct four 1001 2000
		guest_step 1
	} >body
	ours cbt2 body log2 ubda="$T/c.cow,$T/back.img" &
	pid=$!
	wait_line log2 STEP1
	grep -q "^CBT checkpoint=B state=consistent granularity=65536 blocks=2 " log2 || fail "after reboot: $(grep '^CBT' log2)"
	! grep -q "tracking starts inconsistent" log2 || fail "reboot: $(grep inconsistent log2)"
	checkpoint cbt2 C
	grep -q "from=B to=C state=consistent granularity=65536 blocks=3 " ckpt.out || fail "checkpoint C: $(cat ckpt.out)"
	map_runs c.cow.cbt-map >got
	want_runs 1000 4095 1001 2000 >want
	cmp -s got want || fail "map B..C: $(tr '\n' ' ' <got), want $(tr '\n' ' ' <want)"
	touch sig/1
	wait $pid
	ended log2
	# Nothing written after C: the record says so, CLEAN.
	[ "$(rec_key c.cow.cbt state) $(rec_key c.cow.cbt checkpoint) $(rec_key c.cow.cbt blocks)" = "clean C 0" ] ||
		fail "record after the second poweroff: $("$COWUTIL" cbt-record c.cow.cbt 2>&1 | head -n 8 | tr '\n' ' ')"
}

run_test t_cbt_checkpoints_maps_and_reboot
