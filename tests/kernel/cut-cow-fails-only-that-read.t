#!/bin/sh
# A sector marked present whose data lies past the COW file's end (a COW
# cut short on the host) reads as an I/O error, never as zeros; the
# request fails alone: the rest of the device and other devices go on.
. "$(dirname "$0")/functions.sh"

t_cut_cow_fails_only_that_read() {
	rand_backing back.img 4
	rand_backing plain.img 1
	head -c 4096 /dev/urandom >near
	head -c 4096 /dev/urandom >far
	"$COWUTIL" create c.cow back.img || fail create
	"$COWUTIL" write c.cow 4096 near || fail "write near"
	"$COWUTIL" write c.cow $((3 * 1048576)) far || fail "write far"
	truncate -s $(( $(info_get c.cow data_offset) + 2 * 1048576 )) c.cow
	dd if=back.img of=blk2 bs=4096 skip=2 count=1 status=none
	cat >body <<'EOS'
rd() { dd if=/dev/ubda bs=4096 skip=$1 count=1 iflag=direct status=none 2>/dev/null | md5sum | cut -d' ' -f1; }
dd if=/dev/ubda of=/dev/null bs=4096 skip=768 count=1 iflag=direct status=none 2>/dev/null && echo FAR-READ-OK || echo FAR-READ-FAILED
echo "NEAR=$(rd 1)"
echo "BLK2=$(rd 2)"
yes OTHER-DEVICE | head -c 4096 | dd of=/dev/ubdb bs=4096 seek=3 oflag=direct conv=notrunc status=none && echo OTHER-OK
dd if=/dev/ubda of=/dev/null bs=4096 skip=768 count=1 iflag=direct status=none 2>/dev/null && echo FAR-AGAIN-OK || echo FAR-AGAIN-FAILED
EOS
	ours cut body log ubda="$T/c.cow,$T/back.img" ubdb="$T/plain.img" || true
	ended log
	grep -qx FAR-READ-FAILED log || fail "a present sector past the COW's end read without error"
	grep -qx FAR-AGAIN-FAILED log || fail "second read past the end did not fail"
	grep -qx "NEAR=$(md5 near)" log || fail "present sector inside the file: $(grep NEAR= log)"
	grep -qx "BLK2=$(md5 blk2)" log || fail "backing sector: $(grep BLK2= log)"
	grep -qx OTHER-OK log || fail "the other device failed too"
	cp plain.img want.img
	yes OTHER-DEVICE | head -c 4096 | dd of=want.img bs=4096 seek=3 conv=notrunc status=none
	cmp -s plain.img want.img || fail "the other device's write is missing"
}

run_test t_cut_cow_fails_only_that_read
