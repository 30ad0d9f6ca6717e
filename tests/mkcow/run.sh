#!/bin/sh
# Tests of uml_mkcow through its command line: drop-in behaviour against
# uml-utilities, mass cloning with real guests, atomicity, bad input, rebase.
#   tests/mkcow/run.sh BUILD_DIR [t_NAME...]
set -u

SUITE=mkcow
. "$(dirname "$0")/../lib/runner.sh"

MKCOW=$B/bin/uml_mkcow
COWUTIL=$B/tests/cowutil
PEER_MKCOW=/usr/bin/uml_mkcow

t_dropin_bytes_equal_peer() {
	truncate -s 100M master.img
	"$PEER_MKCOW" peer.cow master.img
	"$MKCOW" ours.cow master.img || fail "create"
	cmp peer.cow ours.cow || fail "header bytes differ from uml-utilities'"
	[ "$(size_of ours.cow)" = "$(size_of peer.cow)" ] || fail "apparent size"
	# -f replaces, with the same bytes.
	echo junk >ours.cow
	"$MKCOW" -f ours.cow master.img || fail "-f"
	cmp peer.cow ours.cow || fail "-f: bytes differ"
	# Several at once, backing last or with -b: each equals the peer's.
	"$MKCOW" a.cow b.cow master.img || fail "two COWs"
	"$MKCOW" -b master.img c.cow || fail "-b"
	for c in a b c; do cmp peer.cow $c.cow || fail "$c.cow differs"; done
	# Other versions and sector sizes carry what was asked for.
	"$MKCOW" -V 1 v1.cow master.img && "$MKCOW" -V 2 -s 1024 v2.cow master.img &&
		"$MKCOW" -a 512 v3.cow master.img || fail "options"
	[ "$(info_get v1.cow layout)" = v1 ] || fail "v1 layout"
	[ "$(info_get v2.cow sectorsize)" = 1024 ] || fail "v2 sector size"
	[ "$(info_get v3.cow data_offset)" = $((4608 + 25600)) ] || fail "v3 alignment 512"
	"$MKCOW" --version | grep -q '^uml_mkcow (ubdkit) [0-9]' || fail "--version"
	"$MKCOW" --help | grep -q -- '--count' || fail "--help"
}

t_thousand_clones_three_guests() {
	mkdir tree && echo "master file" >tree/readme
	mkfs.ext4 -q -F -L m -d tree master.img 16M >/dev/null || fail mkfs
	"$PEER_MKCOW" peer.cow master.img
	mkdir clones
	"$MKCOW" --json --count 1000 --name 'clones/guest-%04d.cow' master.img >created.json ||
		fail "1000 clones"
	[ "$(ls clones | wc -l)" = 1000 ] || fail "not 1000 files"
	only_files clones $(seq -f 'guest-%04g.cow' 0 999)
	grep -o '"clones/guest-[0-9]*\.cow"' created.json | wc -l | grep -qx 1000 ||
		fail "--json does not list 1000 clones"
	grep -q '"count":1000' created.json || fail "--json count"
	"$COWUTIL" same peer.cow clones/*.cow >bad.txt ||
		fail "not the COW uml-utilities makes: $(head -n 3 bad.txt)"
	# Sparse: a header's blocks each, not the device.
	[ "$(du -sk clones | cut -f1)" -le $((1000 * 16 + 512)) ] ||
		fail "clones not sparse: $(du -sk clones)"
	# Three guests at once on the one backing, each writing its marker.
	for n in 7 500 999; do
		{
			guest_prologue
			echo "printf 'marker-of-guest-$n' | dd of=/dev/ubda bs=4096 seek=3000 conv=sync,notrunc 2>/dev/null"
			echo 'sync; echo GUEST-DONE; poweroff -f'
		} >init$n.sh
		c=$(printf 'clones/guest-%04d.cow' $n)
		uml_boot mc$n "$T/init$n.sh" g$n.log ubda="$T/$c,$T/master.img" &
	done
	wait
	for n in 7 500 999; do
		grep -q GUEST-DONE g$n.log || { cat g$n.log >&2; fail "guest $n"; }
	done
	for n in 7 500 999; do
		c=$(printf 'clones/guest-%04d.cow' $n)
		for m in 7 500 999; do
			hit=$("$COWUTIL" grep "$c" "marker-of-guest-$m")
			if [ $n = $m ]; then
				[ "$hit" = $((3000 * 4096)) ] || fail "guest $n's marker not in its COW"
			else
				[ -z "$hit" ] || fail "guest $m's marker found in $c"
			fi
		done
	done
	cmp -s peer.cow clones/guest-0008.cow || fail "an unbooted clone changed"
}

t_killed_batch_leaves_only_complete_clones() {
	truncate -s 16M master.img
	"$PEER_MKCOW" peer.cow master.img
	mkdir c
	"$MKCOW" -q --count 20000 --name 'c/g-%05d.cow' master.img &
	pid=$!
	sleep 0.3
	kill -9 $pid 2>/dev/null
	wait $pid
	n=0
	for f in c/* c/.[!.]*; do
		[ -e "$f" ] || continue
		case $f in
		c/g-?????.cow) ;;
		# Only the named fallback has temporary names a kill can strand.
		c/.g-?????.cow.*.tmp) [ -n "${UBDK_NO_TMPFILE:-}" ] || fail "stray $f"; continue ;;
		*) fail "stray file $f" ;;
		esac
		n=$((n + 1))
	done
	# One process for all: thousands of cmp runs take minutes.
	[ $n = 0 ] || "$COWUTIL" same peer.cow c/g-?????.cow >bad.txt ||
		fail "incomplete clones: $(head -n 3 bad.txt)"
	echo "$n of 20000 clones complete when killed"
}

t_bad_backing() {
	mkdir d
	expect_status 3 "$MKCOW" a.cow missing.img
	grep -q 'missing.img.*No such file' err.txt || fail "missing: $(cat err.txt)"
	expect_status 3 "$MKCOW" a.cow d
	grep -q 'not a regular file' err.txt || fail "directory: $(cat err.txt)"
	: >empty.img
	expect_status 3 "$MKCOW" a.cow empty.img
	grep -q 'empty' err.txt || fail "zero size: $(cat err.txt)"
	# A v1 header holds 255 bytes of path.
	long=$T/$(printf 'x%.0s' $(seq 120))/$(printf 'y%.0s' $(seq 120))
	mkdir -p "$long" && truncate -s 1M "$long/b.img"
	expect_status 3 "$MKCOW" -V 1 a.cow "$long/b.img"
	grep -q 'does not fit' err.txt || fail "long path: $(cat err.txt)"
	"$MKCOW" -V 2 a.cow "$long/b.img" || fail "v2 should hold that path"
	rm a.cow
	truncate -s 1M secret.img && chmod 000 secret.img && chmod 755 "$T"
	expect_status 3 as_nobody "$MKCOW" /tmp/ubdk-mkcow-never.cow "$T/secret.img"
	grep -q 'cannot open for reading.*Permission denied' err.txt ||
		fail "unreadable: $(cat err.txt)"
	[ ! -e /tmp/ubdk-mkcow-never.cow ] || fail "COW made for an unreadable backing"
	only_files . d empty.img secret.img out.txt err.txt "$(basename "$(dirname "$long")")"
}

t_existing_and_self() {
	truncate -s 1M master.img
	echo "keep me" >a.cow
	expect_status 4 "$MKCOW" a.cow master.img
	grep -q 'a.cow: already exists (use -f' err.txt || fail "$(cat err.txt)"
	[ "$(cat a.cow)" = "keep me" ] || fail "existing file changed"
	# One existing name in a batch: nothing is created.
	expect_status 4 "$MKCOW" b.cow a.cow c.cow master.img
	only_files . master.img a.cow out.txt err.txt
	expect_status 4 "$MKCOW" -f x.cow x.cow master.img
	grep -q 'named twice' err.txt || fail "$(cat err.txt)"
	expect_status 4 "$MKCOW" -f master.img master.img
	grep -q 'is the backing file' err.txt || fail "$(cat err.txt)"
	[ "$(size_of master.img)" = 1048576 ] || fail "backing overwritten"
	only_files . master.img a.cow out.txt err.txt
}

t_unwritable_target() {
	truncate -s 1M master.img
	mkdir ro && chmod 555 ro && chmod 755 "$T"
	expect_status 1 as_nobody "$MKCOW" ro/a.cow "$T/master.img"
	grep -q 'ro/a.cow.*Permission denied' err.txt || fail "$(cat err.txt)"
	only_files ro
	expect_status 1 "$MKCOW" nodir/a.cow master.img
	grep -q 'nodir/a.cow.*No such file' err.txt || fail "$(cat err.txt)"
}

t_file_size_limit() {
	truncate -s 64M master.img
	# Each clone is 64M apparent: past a 1 MiB limit every one fails.
	(ulimit -f 2048 && exec "$MKCOW" a.cow master.img) >out.txt 2>err.txt
	[ $? = 1 ] || fail "exit status $?: $(cat err.txt)"
	grep -q 'a.cow.*File too large' err.txt || fail "$(cat err.txt)"
	only_files . master.img out.txt err.txt
}

t_failure_midway_keeps_made_clones() {
	truncate -s 1M master.img
	"$PEER_MKCOW" peer.cow master.img
	expect_status 1 "$MKCOW" a.cow b.cow nodir/c.cow d.cow master.img
	grep -q '2 of 4 clones made' err.txt || fail "$(cat err.txt)"
	cmp peer.cow a.cow && cmp peer.cow b.cow || fail "made clones broken"
	only_files . master.img peer.cow a.cow b.cow out.txt err.txt
}

t_bad_options_and_template() {
	truncate -s 1M master.img
	for args in "--count 3 --name g.cow" "--count 3 --name g-%s.cow" \
		"--count 3 --name g-%d-%d.cow" "--count 3 --name g-%-3d.cow" \
		"--count 0 --name g-%d.cow" "--count 3" "-V 4" "-s 1000" "-s 256" \
		"-V 1 -a 512" "-a 0" "--bogus"; do
		# shellcheck disable=SC2086
		expect_status 2 "$MKCOW" $args x.cow master.img
	done
	expect_status 2 "$MKCOW" --count 3 --name 'g%d.cow' x.cow master.img
	expect_status 2 "$MKCOW" master.img
	only_files . master.img out.txt err.txt
	# %% is a literal percent; width and zero padding work; --start shifts.
	"$MKCOW" -q --count 2 --start 9 --name '100%%-%03d.cow' master.img || fail "template"
	only_files . master.img out.txt err.txt 100%-009.cow 100%-010.cow
}

t_rebase() {
	mkdir tree && echo hi >tree/f
	mkfs.ext4 -q -F -d tree master.img 8M >/dev/null || fail mkfs
	"$MKCOW" a.cow b.cow master.img
	mkdir moved && mv master.img moved/m.img && touch moved/m.img
	"$COWUTIL" check a.cow >/dev/null 2>&1 && fail "check passed on a moved master"
	"$MKCOW" --json --rebase moved/m.img a.cow b.cow >out.json || fail "rebase"
	for c in a b; do
		[ "$(info_get $c.cow backing)" = "$T/moved/m.img" ] || fail "$c: path"
		[ "$(info_get $c.cow mtime)" = "$(mtime_of moved/m.img)" ] || fail "$c: mtime"
		"$COWUTIL" check $c.cow >/dev/null || fail "$c: check after rebase"
	done
	grep -q "\"old_backing\":\"$T/master.img\"" out.json || fail "json: $(cat out.json)"
	# The kernel accepts the rebased COW.
	{ guest_prologue; echo 'echo GUEST-UP; poweroff -f'; } >init.sh
	uml_boot rb "$T/init.sh" rb.log ubda="$T/a.cow"
	grep -q GUEST-UP rb.log && ! grep -qi mismatch rb.log || { cat rb.log >&2; fail "kernel refused"; }
	# Another size: refused with its own status, file unchanged.
	truncate -s 4M other.img
	sum=$(md5sum <a.cow)
	expect_status 5 "$MKCOW" --rebase other.img a.cow
	grep -q 'content is unchanged' err.txt || fail "$(cat err.txt)"
	[ "$(md5sum <a.cow)" = "$sum" ] || fail "refused rebase changed the COW"
	expect_status 3 "$MKCOW" --rebase nothere.img a.cow
	echo "not a cow" >junk.cow
	expect_status 1 "$MKCOW" --rebase moved/m.img junk.cow
	grep -q 'junk.cow' err.txt || fail "$(cat err.txt)"
}

# Filesystems without O_TMPFILE get hidden temporary names instead.
t_named_fallback() {
	export UBDK_NO_TMPFILE=1
	truncate -s 10M master.img
	"$PEER_MKCOW" peer.cow master.img
	"$MKCOW" -q --count 50 --name 'g-%02d.cow' master.img || fail "50 clones"
	echo old >g-07.cow
	"$MKCOW" -f g-07.cow master.img || fail "-f"
	for f in g-*.cow; do cmp -s peer.cow "$f" || fail "$f differs"; done
	expect_status 4 "$MKCOW" g-01.cow master.img
	expect_status 1 "$MKCOW" a.cow nodir/b.cow master.img
	cmp -s peer.cow a.cow || fail "a.cow"
	only_files . master.img peer.cow a.cow out.txt err.txt $(seq -f 'g-%02g.cow' 0 49)
}

# -f over the COW of a running guest: refused while a process holds the
# kernel's fcntl lock on it (python's lockf is fcntl, flock(1) is not).
t_force_over_locked_cow() {
	command -v python3 >/dev/null || skip "no python3"
	truncate -s 1M master.img
	"$MKCOW" a.cow master.img || fail "mkcow"
	ino=$(stat -c %i a.cow) sum=$(md5sum <a.cow)
	python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(60)
' a.cow locked &
	holder=$!
	i=0
	while [ ! -e locked ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	"$MKCOW" -f a.cow master.img >out.txt 2>err.txt
	st=$?
	kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
	[ $st = 1 ] || fail "exit $st, expected 1: $(cat err.txt)"
	[ "$(wc -l <err.txt)" = 1 ] || fail "not one line: $(cat err.txt)"
	grep -q "a.cow: in use: process $holder holds a lock" err.txt || fail "$(cat err.txt)"
	[ "$(stat -c %i a.cow)" = "$ino" ] && [ "$(md5sum <a.cow)" = "$sum" ] ||
		fail "the locked COW was replaced"
	# Released: -f replaces it.
	"$MKCOW" -f a.cow master.img || fail "-f after the lock"
	[ "$(stat -c %i a.cow)" != "$ino" ] || fail "not replaced"
}

# FIFOs as the backing or the new backing: refused, never waited on.
t_fifo_backing() {
	mkfifo fifo
	expect_status 3 timeout 10 "$MKCOW" a.cow fifo
	grep -q 'not a regular file or block device' err.txt || fail "$(cat err.txt)"
	truncate -s 1M master.img && "$MKCOW" a.cow master.img
	expect_status 3 timeout 10 "$MKCOW" --rebase fifo a.cow
	grep -q 'not a regular file or block device' err.txt || fail "$(cat err.txt)"
	# -f over a FIFO replaces it without opening it for long.
	expect_status 0 timeout 10 "$MKCOW" -f fifo master.img
	[ -f fifo ] || fail "FIFO not replaced"
}

# A backing so large that the COW's bitmap cannot fit in memory: no tool
# could open the COW, so none is made.  tmpfs holds sparse files of 4 EiB.
# A 4 EiB backing (tmpfs allows such sparse files, ext4 stops at 16 TiB):
# its 1 PiB bitmap is loaded sparsely, so the COW is made and opens.
t_huge_backing() {
	if [ "$(id -u)" != 0 ]; then
		skip "not root, cannot mount a tmpfs"
	fi
	mkdir big
	mount -t tmpfs -o size=1m tmpfs big || skip "cannot mount a tmpfs"
	truncate -s 4E big/m.img
	"$MKCOW" big/a.cow big/m.img >out.txt 2>err.txt
	st=$?
	"$B/tests/cowutil" info big/a.cow >info.txt 2>>err.txt
	ist=$?
	umount big
	[ $st = 0 ] || fail "4 EiB backing: exit $st: $(cat err.txt)"
	[ $ist = 0 ] || fail "cowutil info: $(cat err.txt)"
	grep -qx 'size=4611686018427387904' info.txt || fail "$(cat info.txt)"
	grep -qx 'cow_sectors=0' info.txt || fail "$(cat info.txt)"
}

run_tests "$@"
