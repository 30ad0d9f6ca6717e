#!/bin/sh
# The backing check of an open COW uses the descriptor it holds: checking a
# block device by path would reopen and close it, and closing any
# descriptor of a file drops the process's fcntl locks on it.
. "$(dirname "$0")/functions.sh"

t_backing_check_keeps_lock_on_loop_device() {
	[ "$(id -u)" = 0 ] || skip "not root: needs a loop device"
	command -v losetup >/dev/null && command -v python3 >/dev/null ||
		skip "needs losetup and python3"
	truncate -s 8M master.img
	dev=$(losetup -f --show master.img 2>/dev/null) || skip "no loop device"
	trap 'losetup -d "$dev"' EXIT
	"$MKCOW" c.cow "$dev" || fail "mkcow over $dev"
	for how in fd by-path; do
		mkfifo in.$how
		if [ $how = fd ]; then
			"$COWUTIL" hold c.cow <in.$how >held.$how 2>err.txt &
		else
			"$COWUTIL" hold --by-path c.cow <in.$how >held.$how 2>err.txt &
		fi
		pid=$!
		exec 3>in.$how
		i=0
		until grep -q held held.$how; do
			i=$((i + 1))
			[ $i -lt 100 ] || fail "cowutil hold: $(cat err.txt)"
			sleep 0.05
		done
		if lock_refused "$dev" w; then got=kept; else got=dropped; fi
		exec 3>&-
		wait $pid || fail "cowutil hold: $(cat err.txt)"
		case $how in
		fd) [ $got = kept ] || fail "the held-descriptor check dropped the lock" ;;
		# The hazard the library avoids, shown to be real (so that the
		# check above can fail).
		by-path) [ $got = dropped ] || fail "a check by path kept the lock: the test proves nothing" ;;
		esac
	done
}

run_test t_backing_check_keeps_lock_on_loop_device
