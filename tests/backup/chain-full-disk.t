#!/bin/sh
# The destination fills up in the middle of an incremental of a running
# guest: exit 5, the guest runs, no new point, the previous ones intact.
. "$(dirname "$0")/functions.sh"

t_chain_full_disk() {
	[ "$(id -u)" = 0 ] || skip "not root: no tmpfs to fill"
	mkdir -p "$T/small"
	mount -t tmpfs -o size=48m tmpfs "$T/small" 2>/dev/null || skip "no tmpfs mount here"
	trap on_exit EXIT
	make_disk disk 64
	start_guest gf ubda="$T/disk.cow,$T/disk.img"
	expect_status 0 "$BK" -q -i -u "$T/uml" gf "$T/small/chain"
	sums=$(cd "$T/small/chain" && find . -type f | sort | xargs md5sum)
	# Leave 64 KiB free: the changed records and bulk data need more.
	dd if=/dev/zero of="$T/small/fill" bs=64k status=none 2>/dev/null
	truncate -s $(( $(stat -c %s "$T/small/fill") - 65536 )) "$T/small/fill"
	wait_records gf $(( $(last_rec gf) + 12 )) 60 || fail "guest stuck"
	expect_status 5 "$BK" -i -u "$T/uml" gf "$T/small/chain"
	err_has "No space left on device"
	assert_running gf "after a full destination"
	[ "$(points "$T/small/chain" | wc -l)" = 1 ] && [ "$(ls "$T/small/chain" | wc -l)" = 1 ] ||
		fail "a failed incremental left files: $(ls -A "$T/small/chain")"
	[ "$sums" = "$(cd "$T/small/chain" && find . -type f | sort | xargs md5sum)" ] ||
		fail "the previous point changed"
	rm "$T/small/fill"
	expect_status 0 "$BK" -q -i -u "$T/uml" gf "$T/small/chain"
	expect_status 0 "$BK" verify "$T/small/chain"
	stop_guest gf
	trap - EXIT
	umount "$T/small"
}

run_test t_chain_full_disk
