#!/bin/sh
# Writes acknowledged by a flush are in the COW, bitmap included, after
# nbdkit is killed with SIGKILL (no shutdown, no write-back at exit).
. "$(dirname "$0")/functions.sh"

t_flushed_writes_survive_sigkill() {
	need nbdkit qemu-io
	make_pair 8
	serve c.cow
	# qemu-io's default cache mode sends FUA with each write; writeback
	# makes the flush the only barrier.
	qemu-io -f raw -t writeback -c 'write -P 0xab 0 64k' -c 'write -P 0xcd 3m 4k' \
		-c 'write -P 0xef 8388096 512' -c flush "$URI" >qemu.txt 2>&1 ||
		fail "qemu-io: $(cat qemu.txt)"
	kill -9 "$NBDKIT_PID"
	wait "$NBDKIT_PID"
	cp exp.img want.img
	head -c 65536 /dev/zero | tr '\0' '\253' | dd of=want.img conv=notrunc status=none
	head -c 4096 /dev/zero | tr '\0' '\315' | dd of=want.img bs=1M seek=3 conv=notrunc status=none
	head -c 512 /dev/zero | tr '\0' '\357' | dd of=want.img bs=512 seek=16383 conv=notrunc status=none
	moo_of c.cow got.img
	cmp got.img want.img || fail "uml_moo after SIGKILL differs"
	"$COWUTIL" merged c.cow lib.img && cmp lib.img want.img || fail "merged view after SIGKILL differs"
	"$COWUTIL" runs c.cow | grep -q '^0 128$' || fail "bits of the first write missing: $("$COWUTIL" runs c.cow)"
}

run_test t_flushed_writes_survive_sigkill
