#!/bin/sh
# The stock kernel boots the COW with the record beside it, and uml_moo
# merges it; once the stock kernel has written the COW, ours says the
# record no longer describes it.  Bad commands get an error reply.
. "$(dirname "$0")/functions.sh"

t_cbt_stock_kernel_and_moo() {
	mkdir sig
	rand_backing back.img 16
	{
		echo 'umount /tmp; exec 3</dev/ubda'
		guest_direct ours 5 6
		guest_step 1
		guest_direct ours 40
	} >body
	ours cbts body log ubda="$T/c.cow,$T/back.img" &
	pid=$!
	wait_line log STEP1
	for bad in "cbt" "cbt ubd9" "cbt ubd0 checkpoint" "cbt ubd0 checkpoint a/b" "cbt ubd0 frobnicate X" "cbt ubd1"; do
		mcon cbts "$bad" >bad.out 2>&1
		grep -q '^ERR ' bad.out || fail "'$bad' did not fail: $(cat bad.out)"
	done
	# While running (not stopped) a checkpoint works too.
	mcon cbts "cbt ubd0 checkpoint A" >ckpt.out 2>&1
	grep -q '^OK from= to=A ' ckpt.out || fail "checkpoint while running: $(cat ckpt.out)"
	touch sig/1
	wait $pid
	ended log
	[ "$(rec_key c.cow.cbt state) $(rec_key c.cow.cbt checkpoint)" = "clean A" ] || fail "record not CLEAN"
	cp c.cow.cbt rec.before

	# The stock kernel only reading: the record still describes the COW.
	echo 'echo "SUM=$(md5sum </dev/ubda | cut -d" " -f1)"' >body
	stock stk1 body slog1 ubda="$T/c.cow,$T/back.img" || true
	ended slog1
	cmp -s c.cow.cbt rec.before || fail "the stock kernel changed the record"
	echo 'exec 3</dev/ubda; echo "CBT $(cat /sys/block/ubda/cbt)"' >body
	ours cbts2 body log2 ubda="$T/c.cow,$T/back.img" || true
	ended log2
	grep -q "^CBT checkpoint=A state=consistent granularity=65536 blocks=1 " log2 ||
		fail "after a read-only stock boot: $(grep '^CBT' log2)"

	# The stock kernel writing the COW.
	guest_marks stock 60 >body
	stock stk2 body slog2 ubda="$T/c.cow,$T/back.img" || true
	ended slog2
	cp back.img expect.img
	host_marks expect.img ours 5 6 40
	host_marks expect.img stock 60
	"$PEER_MOO" c.cow peer.img >/dev/null 2>&1 || fail "uml_moo failed"
	cmp peer.img expect.img || fail "uml_moo's merge differs"
	"$COWUTIL" merged c.cow m.img && cmp m.img expect.img || fail "our merge differs"
	echo 'exec 3</dev/ubda; echo "CBT $(cat /sys/block/ubda/cbt)"' >body
	ours cbts3 body log3 ubda="$T/c.cow,$T/back.img" || true
	ended log3
	grep -q "^CBT checkpoint=A state=inconsistent reason=cow-changed " log3 ||
		fail "after the stock kernel wrote: $(grep '^CBT' log3)"
}

run_test t_cbt_stock_kernel_and_moo
