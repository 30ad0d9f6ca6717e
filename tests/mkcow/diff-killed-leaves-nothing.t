#!/bin/sh
# Killed mid-diff, by SIGKILL after some runs (the test hook) or at a
# random moment: nothing under the COW's name, or a complete COW.  The
# pair is 256 GiB apparent: the walk skips its holes, so it is quick.
. "$(dirname "$0")/functions.sh"

t_diff_killed_leaves_nothing() {
	truncate -s 256G master.img
	randfile data 16M
	for at in 0 1000 50000 200000; do
		dd if=data of=master.img bs=1M seek=$at conv=notrunc status=none
	done
	cp --sparse=always master.img image.img
	# 100 sectors, the last in the master's hole after its first 16 MiB.
	for i in $(seq 0 99); do
		dd if=/dev/urandom of=image.img bs=512 count=1 conv=notrunc status=none \
			seek=$((i * 331 + 7))
	done
	dd if=data of=image.img bs=1M seek=100000 count=4 conv=notrunc status=none
	UBDK_MKCOW_CRASH_AFTER=10 "$MKCOW" --diff image.img a.cow master.img 2>err.txt
	st=$?
	[ $st = 137 ] || fail "not killed by the hook: exit $st: $(cat err.txt)"
	only_files . master.img image.img data err.txt
	# A real kill -9 at some point: nothing, or complete.
	"$MKCOW" --diff image.img b.cow master.img &
	pid=$!
	sleep 0.05
	kill -9 $pid 2>/dev/null
	wait $pid
	if [ -e b.cow ]; then
		"$B/bin/uml_moo" -q b.cow m.img && "$COWUTIL" same image.img m.img >/dev/null ||
			fail "a COW appeared incomplete"
		rm -f m.img b.cow
	fi
	only_files . master.img image.img data err.txt
	# Run to the end, bounded: only the data read (the 64 MiB both hold,
	# and from the image the 4 MiB and the 4 KiB block in the master's
	# holes), the merge (our sparse uml_moo) is the image.
	timeout 120 "$MKCOW" --json --diff image.img c.cow master.img >out.json ||
		fail "full run"
	[ "$(json_num out.json bytes_read)" = $((2 * 64 * 1048576 + 4 * 1048576 + 4096)) ] ||
		fail "bytes_read: $(cat out.json)"
	[ "$(json_num out.json sectors_written)" = $((100 + 4 * 2048)) ] ||
		fail "sectors_written: $(cat out.json)"
	"$B/bin/uml_moo" -q c.cow m.img && "$COWUTIL" same image.img m.img >/dev/null ||
		fail "merged image differs from the image"
}

run_test t_diff_killed_leaves_nothing
