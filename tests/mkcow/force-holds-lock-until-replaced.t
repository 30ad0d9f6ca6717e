#!/bin/sh
# The lock is taken before the new COW is written and held until it is
# renamed in place: a server started meanwhile is refused, and never
# serves a file that is then replaced under it.  The diff stops itself
# after its first run (a test hook) while the server tries.
. "$(dirname "$0")/functions.sh"

t_force_holds_lock_until_replaced() {
	command -v nbdkit >/dev/null || skip "SKIP: nbdkit not installed"
	randfile master.img 4M
	cp master.img image.img
	printf 'one' | dd of=image.img bs=1 seek=4096 conv=notrunc status=none
	printf 'two' | dd of=image.img bs=1 seek=3000000 conv=notrunc status=none
	"$MKCOW" a.cow master.img || fail "mkcow"
	ino=$(stat -c %i a.cow)
	UBDK_MKCOW_STOP_AFTER=1 "$MKCOW" -f --diff image.img a.cow master.img 2>mk.err &
	pid=$!
	wait_stopped $pid
	nbdkit -U - "$B/lib/nbdkit-ubd-plugin.so" a.cow --run 'echo SERVED' >out.txt 2>err.txt
	st=$?
	kill -CONT $pid
	wait $pid || fail "mkcow -f --diff: $(cat mk.err)"
	[ $st != 0 ] && ! grep -q SERVED out.txt ||
		fail "nbdkit served the COW being replaced: $(cat err.txt)"
	grep -q 'a.cow: in use' err.txt || fail "nbdkit: $(cat err.txt)"
	[ "$(stat -c %i a.cow)" != "$ino" ] || fail "not replaced"
	check_diff image.img a.cow master.img
}

run_test t_force_holds_lock_until_replaced
