#!/bin/sh
# restore's OUTPUT: a directory, an empty name, a device node or FIFO.
. "$(dirname "$0")/functions.sh"

t_restore_targets() {
	small_cow x
	expect_status 0 "$BK" -q -c --offline "$T/x.cow" "$T/b"
	mkdir "$T/dir"
	expect_status 5 "$BK" restore -f "$T/b/ubd0.ubdx.lz4" "$T/dir"
	err_has "dir: is a directory"
	expect_status 5 "$BK" restore "$T/b/ubd0.ubdx.lz4" "$T/dir/"
	err_has "is a directory"
	expect_status 2 "$BK" restore "$T/b/ubd0.ubdx.lz4" ''
	err_has "OUTPUT is an empty name"
	if [ "$(id -u)" = 0 ] && mknod "$T/null" c 1 3 2>/dev/null; then
		expect_status 5 "$BK" restore -f "$T/b/ubd0.ubdx.lz4" "$T/null"
		err_has "not a regular file"
		[ -c "$T/null" ] || fail "restore -f replaced a character device"
	else
		echo "NOTE: not root: a FIFO stands in for the device node"
	fi
	mkfifo "$T/fifo"
	expect_status 5 timeout 10 "$BK" restore -f "$T/b/ubd0.ubdx.lz4" "$T/fifo"
	err_has "not a regular file"
	[ -p "$T/fifo" ] || fail "restore -f replaced a FIFO"
	only_files "$T" b dir fifo x.cow x.img out.txt err.txt $([ -e "$T/null" ] && echo null)
}

run_test t_restore_targets
