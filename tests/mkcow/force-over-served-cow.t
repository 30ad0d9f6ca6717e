#!/bin/sh
# -f over a COW that nbdkit-ubd-plugin serves: refused (exit 6, in use),
# plain and with --diff, the COW untouched, and the server's client
# still writes to the file that has the name.
. "$(dirname "$0")/functions.sh"

t_force_over_served_cow() {
	randfile master.img 2M
	cp master.img image.img
	printf 'image' | dd of=image.img bs=1 seek=4096 conv=notrunc status=none
	"$MKCOW" a.cow master.img || fail "mkcow"
	ino=$(stat -c %i a.cow) sum=$(md5sum <a.cow)
	nbd_serve a.cow
	expect_status 6 "$MKCOW" -f a.cow master.img
	grep -q "a.cow: in use: process $nbd_pid holds a lock on it" err.txt || fail "$(cat err.txt)"
	expect_status 6 "$MKCOW" -f --diff image.img a.cow master.img
	grep -q "a.cow: in use: process $nbd_pid holds a lock on it" err.txt || fail "$(cat err.txt)"
	# Many names, one in use: refused before any is made.
	expect_status 6 "$MKCOW" -f b.cow a.cow c.cow master.img
	[ ! -e b.cow ] && [ ! -e c.cow ] || fail "clones made before the refusal"
	nbd_stop
	[ "$(stat -c %i a.cow)" = "$ino" ] && [ "$(md5sum <a.cow)" = "$sum" ] ||
		fail "the served COW was replaced"
	only_files . master.img image.img a.cow out.txt err.txt
}

run_test t_force_over_served_cow
