#!/bin/sh
# A bitmap chunk that cannot be read (an I/O error in the COW's bitmap area,
# injected into our kernel's reads of it by an LD_PRELOAD'ed pread): that
# request fails, again on retry, while the rest of the device (its bitmap
# there a hole, known zero without reading) and another device go on.
. "$(dirname "$0")/functions.sh"

t_bitmap_eio_fails_that_request_only() {
	[ -f "$B/tests/eio_preload.so" ] || fail "no $B/tests/eio_preload.so (make check-kernel builds it)"
	rand_backing back.img 32
	rand_backing plain.img 1
	head -c 4096 /dev/urandom >blk0
	"$COWUTIL" create c.cow back.img || fail create
	"$COWUTIL" write c.cow 0 blk0 || fail "write block 0"
	boff=$(info_get c.cow bitmap_offset)
	dd if=back.img of=far bs=4096 skip=6144 count=1 status=none
	cat >body <<'EOS'
rd() { dd if=/dev/ubda bs=4096 skip=$1 count=1 iflag=direct status=none 2>/dev/null | md5sum | cut -d' ' -f1; }
dd if=/dev/ubda of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null && echo BLK0-READ-OK || echo BLK0-READ-FAILED
echo "FAR=$(rd 6144)"
yes OTHER-DEVICE | head -c 4096 | dd of=/dev/ubdb bs=4096 seek=3 oflag=direct conv=notrunc status=none && echo OTHER-OK
dd if=/dev/ubda of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null && echo BLK0-AGAIN-OK || echo BLK0-AGAIN-FAILED
EOS
	LD_PRELOAD="$B/tests/eio_preload.so" UBDK_TEST_EIO_FILE=/c.cow \
		UBDK_TEST_EIO_FROM="$boff" UBDK_TEST_EIO_TO=$((boff + 4096)) \
		ours beio body log ubda="$T/c.cow,$T/back.img" ubdb="$T/plain.img" || true
	ended log
	grep -qx BLK0-READ-FAILED log || fail "a read needing an unreadable bitmap chunk succeeded"
	grep -qx BLK0-AGAIN-FAILED log || fail "the retry did not fail"
	grep -qx "FAR=$(md5 far)" log || fail "the rest of the device: $(grep FAR= log)"
	grep -qx OTHER-OK log || fail "the other device failed too"
	# Nothing was lost: without the fault the data is all there.
	"$COWUTIL" read c.cow 0 4096 | cmp -s - blk0 || fail "block 0 lost"
}

run_test t_bitmap_eio_fails_that_request_only
