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

# Names with newlines, backslashes and bytes that are not UTF-8: errors
# are one line and escape them as every tool does; --json writes them
# through jansson, the bytes that are not UTF-8 as Latin-1 characters.
t_hostile_names() {
	truncate -s 1M master.img
	odd=$(printf 'n\351w\\x\nline')
	echo "keep me" >"$odd.cow"
	expect_status 4 "$MKCOW" "$odd.cow" master.img
	grep -qF 'n\xe9w\\x\nline.cow: already exists' err.txt || fail "$(cat err.txt)"
	expect_status 0 "$MKCOW" --json "$odd-2.cow" master.img
	python3 -c 'import json,sys; d=json.load(open("out.txt")); assert d["created"] == ["n\u00e9w\\x\nline-2.cow"], d' ||
		fail "--json: $(cat out.txt)"
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
	hold_lock a.cow || fail "could not take the lock"
	holder=$lock_holder
	"$MKCOW" -f a.cow master.img >out.txt 2>err.txt
	st=$?
	kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
	[ $st = 6 ] || fail "exit $st, expected 6: $(cat err.txt)"
	[ "$(wc -l <err.txt)" = 1 ] || fail "not one line: $(cat err.txt)"
	grep -q "a.cow: in use: process $holder holds a lock" err.txt || fail "$(cat err.txt)"
	[ "$(stat -c %i a.cow)" = "$ino" ] && [ "$(md5sum <a.cow)" = "$sum" ] ||
		fail "the locked COW was replaced"
	# Released: -f replaces it.
	"$MKCOW" -f a.cow master.img || fail "-f after the lock"
	[ "$(stat -c %i a.cow)" != "$ino" ] || fail "not replaced"
}

# -f over a COW that nbdkit-ubd-plugin serves: refused (exit 6, in use),
# plain and with --diff, the COW untouched, and the server's client
# still writes to the file that has the name.
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

# The lock is taken before the new COW is written and held until it is
# renamed in place: a server started meanwhile is refused, and never
# serves a file that is then replaced under it.  The diff stops itself
# after its first run (a test hook) while the server tries.
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

# --diff: the sectors where IMAGE differs from BACKING, as "START COUNT"
# lines like `cowutil runs` prints (cmp -l reads both files: small ones).
#   changed_runs IMAGE BACKING [SECTORSIZE]
changed_runs() {
	cmp -l "$1" "$2" | awk -v ss="${3:-512}" '
		BEGIN { last = -2 }
		{ s = int(($1 - 1) / ss) }
		s == last { next }
		s == last + 1 { n++; last = s; next }
		{ if (last >= 0) print start, n; start = s; n = 1; last = s }
		END { if (last >= 0) print start, n }'
}

# The COW --diff made: its sectors are exactly the changed ones, the merge
# (uml-utilities' uml_moo and ours) is IMAGE, and the kernel would take it.
check_diff() {
	_cd_img=$1 _cd_cow=$2 _cd_back=$3
	changed_runs "$_cd_img" "$_cd_back" >want.runs
	"$COWUTIL" runs "$_cd_cow" >got.runs || fail "cowutil runs"
	cmp -s want.runs got.runs ||
		fail "COW sectors: $(head -c 300 got.runs | tr '\n' ' ') expected $(head -c 300 want.runs | tr '\n' ' ')"
	"$COWUTIL" check "$_cd_cow" >/dev/null || fail "backing check of the new COW"
	rm -f merged.img
	uml_moo "$_cd_cow" merged.img >/dev/null || fail "uml_moo (uml-utilities)"
	cmp merged.img "$_cd_img" || fail "merged (uml-utilities) differs from the image"
	rm -f merged.img
	"$B/bin/uml_moo" -q "$_cd_cow" merged.img || fail "uml_moo (ours)"
	cmp merged.img "$_cd_img" || fail "merged (ours) differs from the image"
	rm -f merged.img
}

t_diff_exact_sectors() {
	# A master with data, a hole, and data again; the image changes a
	# byte, runs of sectors, writes into the master's hole, and zeroes
	# some of the master's data.
	randfile master.img 4M
	truncate -s 12M master.img
	randfile tail 2M && dd if=tail of=master.img bs=1M seek=10 conv=notrunc status=none
	cp --sparse=always master.img image.img
	printf 'X' | dd of=image.img bs=1 seek=1000 conv=notrunc status=none
	dd if=/dev/urandom of=image.img bs=512 seek=100 count=17 conv=notrunc status=none
	dd if=/dev/urandom of=image.img bs=512 seek=2047 count=2 conv=notrunc status=none
	dd if=/dev/urandom of=image.img bs=512 seek=12000 count=5 conv=notrunc status=none
	dd if=/dev/zero of=image.img bs=512 seek=3000 count=8 conv=notrunc status=none
	printf 'Y' | dd of=image.img bs=1 seek=$((12 * 1048576 - 1)) conv=notrunc status=none
	"$MKCOW" --json --diff image.img a.cow master.img >out.json 2>err.txt ||
		fail "--diff: $(cat err.txt)"
	[ ! -s err.txt ] || fail "stderr not a tty, yet: $(cat err.txt)"
	check_diff image.img a.cow master.img
	[ "$(json_num out.json sectors_written)" = 34 ] || fail "sectors_written: $(cat out.json)"
	[ "$(json_num out.json sectors_compared)" = 24576 ] || fail "sectors_compared: $(cat out.json)"
	# The master's hole (4-10 MiB) is read on the image's side only where
	# the image has data there.
	[ "$(json_num out.json bytes_read)" -le $((2 * 6 * 1048576 + 1048576)) ] ||
		fail "bytes_read: $(cat out.json)"
	grep -q "\"backing\":\"$T/master.img\"" out.json || fail "$(cat out.json)"
	grep -q '"seconds":[0-9]' out.json || fail "$(cat out.json)"
	# The same header as a new COW of uml-utilities' (same size, mtime).
	"$PEER_MKCOW" peer.cow master.img
	cmp -n 4096 peer.cow a.cow || fail "header differs from uml-utilities'"
	# The zeroed sectors are a hole in the COW: it stays sparse.
	[ "$(du -k a.cow | cut -f1)" -le 64 ] || fail "COW not sparse: $(du -k a.cow)"
	# Other formats and sector sizes: the runs follow the sector size.
	"$MKCOW" -V 2 -s 4096 --diff image.img b.cow master.img || fail "-V 2 -s 4096"
	changed_runs image.img master.img 4096 >want4k.runs
	"$COWUTIL" runs b.cow | cmp -s - want4k.runs || fail "4096-byte sectors"
	"$MKCOW" -V 1 --diff image.img c.cow master.img || fail "-V 1"
	check_diff image.img c.cow master.img
}

# A size that is not whole sectors: the last, partial sector is compared
# and written like the others.
t_diff_partial_last_sector() {
	randfile master.img $((1048576 + 100))
	cp master.img image.img
	printf 'Z' | dd of=image.img bs=1 seek=$((1048576 + 99)) conv=notrunc status=none
	printf 'Z' | dd of=image.img bs=1 seek=5 conv=notrunc status=none
	"$MKCOW" --diff image.img a.cow master.img || fail "--diff"
	changed_runs image.img master.img >want.runs
	"$COWUTIL" runs a.cow | cmp -s - want.runs || fail "runs: $("$COWUTIL" runs a.cow)"
	"$COWUTIL" merged a.cow merged.img && cmp merged.img image.img || fail "merged view"
}

t_diff_sizes_differ() {
	randfile master.img 1M
	head -c 1048064 master.img >short.img
	expect_status 5 "$MKCOW" --diff short.img a.cow master.img
	grep -q 'short.img: 1048064 bytes, but backing file .*master.img has 1048576' err.txt ||
		fail "$(cat err.txt)"
	cp master.img long.img && truncate -s +512 long.img
	expect_status 5 "$MKCOW" --diff long.img a.cow master.img
	only_files . master.img short.img long.img out.txt err.txt
}

t_diff_same_image() {
	randfile master.img 2M
	truncate -s 8M master.img
	cp --sparse=always master.img copy.img
	"$PEER_MKCOW" peer.cow master.img
	for img in master.img copy.img; do
		rm -f a.cow
		"$MKCOW" --json --diff $img a.cow master.img >out.json || fail "--diff $img"
		[ "$(json_num out.json sectors_written)" = 0 ] || fail "$img: $(cat out.json)"
		[ -z "$("$COWUTIL" runs a.cow)" ] || fail "$img: COW not empty"
		# Byte for byte the COW a plain uml_mkcow makes.
		cmp peer.cow a.cow || fail "$img: not a new COW's bytes"
	done
}

# Holes on one side and zeros on the other are equal: nothing is written;
# holes on both sides are not even read.
t_diff_holes_and_zeros() {
	truncate -s 64M sparse.img
	dd if=/dev/zero of=zeros.img bs=1M count=64 status=none
	for pair in "sparse.img zeros.img" "zeros.img sparse.img"; do
		set -- $pair
		rm -f a.cow
		"$MKCOW" --json --diff "$1" a.cow "$2" >out.json || fail "--diff $pair"
		[ "$(json_num out.json sectors_written)" = 0 ] || fail "$pair: $(cat out.json)"
		[ -z "$("$COWUTIL" runs a.cow)" ] || fail "$pair: COW not empty"
	done
	# Zeros over data are written (as a hole in the COW's data area).
	randfile data.img 1M
	truncate -s 64M data.img
	"$MKCOW" --json --diff sparse.img b.cow data.img >out.json || fail "--diff zeros over data"
	[ "$(json_num out.json sectors_written)" = 2048 ] || fail "$(cat out.json)"
	"$COWUTIL" merged b.cow m.img && cmp m.img sparse.img || fail "zeros over data: merged"
	# Two sparse files of 1 TiB with 1 MiB of data each: seconds, and only
	# the data read.
	truncate -s 1T big1.img big2.img
	dd if=data.img of=big1.img bs=1M count=1 seek=500000 conv=notrunc status=none
	dd if=data.img of=big2.img bs=1M count=1 seek=500000 conv=notrunc status=none
	timeout 60 "$MKCOW" --json --diff big1.img c.cow big2.img >out.json || fail "1 TiB pair"
	[ "$(json_num out.json bytes_read)" = $((2 * 1048576)) ] || fail "1 TiB pair: $(cat out.json)"
	[ "$(json_num out.json sectors_written)" = 0 ] || fail "1 TiB pair: $(cat out.json)"
}

t_diff_existing_and_self() {
	randfile master.img 1M
	cp master.img image.img && printf 'x' | dd of=image.img conv=notrunc status=none
	echo "keep me" >a.cow
	expect_status 4 "$MKCOW" --diff image.img a.cow master.img
	grep -q 'a.cow: already exists (use -f' err.txt || fail "$(cat err.txt)"
	[ "$(cat a.cow)" = "keep me" ] || fail "existing COW changed"
	"$MKCOW" -f --diff image.img a.cow master.img || fail "-f"
	check_diff image.img a.cow master.img
	# Where O_TMPFILE is missing: a hidden temporary name, renamed.
	UBDK_NO_TMPFILE=1 "$MKCOW" -f --diff image.img a.cow master.img || fail "named fallback"
	check_diff image.img a.cow master.img
	sum=$(md5sum <image.img)
	expect_status 4 "$MKCOW" -f --diff image.img image.img master.img
	grep -q 'image.img: is the image to diff itself' err.txt || fail "$(cat err.txt)"
	expect_status 4 "$MKCOW" -f --diff image.img master.img master.img
	grep -q 'is the backing file itself' err.txt || fail "$(cat err.txt)"
	[ "$(md5sum <image.img)" = "$sum" ] || fail "image changed"
	# One COW only, and not with --count or --rebase.
	expect_status 2 "$MKCOW" --diff image.img b.cow c.cow master.img
	expect_status 2 "$MKCOW" --diff image.img --count 2 --name 'g%d.cow' master.img
	expect_status 2 "$MKCOW" --diff image.img --rebase master.img a.cow
	expect_status 2 "$MKCOW" --diff
	only_files . master.img image.img a.cow out.txt err.txt want.runs got.runs
}

# Killed mid-diff, by SIGKILL after some runs (the test hook) or at a
# random moment: nothing under the COW's name, or a complete COW.  The
# pair is 256 GiB apparent: the walk skips its holes, so it is quick.
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

# An input written during the diff (the diff stops itself after its first
# run, a test hook, while a writer that takes no lock writes 4 KiB): the
# run fails, exit 1, and no COW is left.  Also when the writer sets the
# mtime back (ctime still changes), and when the file is replaced.
t_diff_input_changed() {
	randfile master.img 8M
	touch -d '2021-01-01 00:00:00.123456789' master.img
	cp master.img image.img
	for mib in 1 3 5 7; do
		printf 'changed' | dd of=image.img bs=1 seek=$((mib * 1048576)) conv=notrunc status=none
	done
	for how in backing image backing-mtime-kept image-replaced; do
		cp --preserve=timestamps master.img m0.img
		cp --preserve=timestamps image.img i0.img
		UBDK_MKCOW_STOP_AFTER=1 "$MKCOW" --diff image.img a.cow master.img >out.txt 2>err.txt &
		pid=$!
		wait_stopped $pid
		case $how in
		backing)
			randfile block 4096
			dd if=block of=master.img bs=4096 seek=100 conv=notrunc status=none ;;
		image)
			randfile block 4096
			dd if=block of=image.img bs=4096 seek=1000 conv=notrunc status=none ;;
		backing-mtime-kept)
			randfile block 4096
			dd if=block of=master.img bs=4096 seek=100 conv=notrunc status=none
			touch -d '2021-01-01 00:00:00.123456789' master.img ;;
		image-replaced)
			cp i0.img new.img && mv new.img image.img ;;
		esac
		kill -CONT $pid
		wait $pid
		st=$?
		[ $st = 1 ] || fail "$how: exit $st: $(cat err.txt)"
		[ "$(wc -l <err.txt)" = 1 ] || fail "$how: not one line: $(cat err.txt)"
		case $how in
		backing*) want="backing file $T/master.img: changed during the diff" ;;
		image*) want="image image.img: changed during the diff" ;;
		esac
		grep -qF "uml_mkcow: $want" err.txt || fail "$how: $(cat err.txt)"
		only_files . master.img image.img m0.img i0.img out.txt err.txt \
			$([ -e block ] && echo block)
		mv m0.img master.img && mv i0.img image.img
	done
	# Unchanged, the same hook runs to a COW that holds the image.
	UBDK_MKCOW_STOP_AFTER=1 "$MKCOW" --diff image.img a.cow master.img 2>err.txt &
	pid=$!
	wait_stopped $pid
	kill -CONT $pid
	wait $pid || fail "unchanged: $(cat err.txt)"
	check_diff image.img a.cow master.img
}

# Inputs locked by a writer (a guest running on the backing or the image
# holds a write lock): refused, exit 6.  A reader's lock (a guest or a
# server on a COW over the backing) does not stop the diff.
t_diff_input_locked() {
	command -v python3 >/dev/null || skip "no python3"
	randfile master.img 1M
	cp master.img image.img
	printf 'x' | dd of=image.img bs=1 seek=10 conv=notrunc status=none
	for f in master.img image.img; do
		hold_lock $f || fail "could not take the lock"
		holder=$lock_holder
		"$MKCOW" --diff image.img a.cow master.img >out.txt 2>err.txt
		st=$?
		kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
		[ $st = 6 ] || fail "$f locked: exit $st: $(cat err.txt)"
		[ "$(wc -l <err.txt)" = 1 ] || fail "not one line: $(cat err.txt)"
		grep -q "$f: in use: process $holder holds a lock on it.*not compared" err.txt ||
			fail "$(cat err.txt)"
		[ ! -e a.cow ] || fail "$f locked: a COW was made"
	done
	"$MKCOW" g.cow master.img || fail "mkcow"
	nbd_serve g.cow
	"$MKCOW" --diff image.img a.cow master.img 2>err.txt || fail "under a reader: $(cat err.txt)"
	nbd_stop
	check_diff image.img a.cow master.img
}

# A v1 COW has no bit for the last sectors of some sizes (the old rounding
# bug): a difference there is refused with the library's reason.  1857
# sectors: the bitmap's 232 bytes end at 512, the data area's start.
t_diff_sector_without_bit() {
	randfile master.img $((1857 * 512))
	cp master.img image.img
	printf 'x' | dd of=image.img bs=1 seek=$((1857 * 512 - 1)) conv=notrunc status=none
	expect_status 1 "$MKCOW" -V 1 --diff image.img a.cow master.img
	grep -q '^uml_mkcow: a.cow: sector 1856 has no bit in this v1 bitmap' err.txt ||
		fail "$(cat err.txt)"
	only_files . master.img image.img out.txt err.txt
	# The same difference in a v3 COW is fine.
	"$MKCOW" --diff image.img a.cow master.img || fail "v3"
	check_diff image.img a.cow master.img
}

t_diff_bad_image() {
	randfile master.img 1M
	mkfifo fifo
	expect_status 6 timeout 10 "$MKCOW" --diff fifo a.cow master.img
	grep -q 'fifo: cannot open for reading: not a regular file or block device' err.txt ||
		fail "$(cat err.txt)"
	expect_status 6 "$MKCOW" --diff missing.img a.cow master.img
	grep -q 'missing.img.*No such file' err.txt || fail "$(cat err.txt)"
	mkdir d
	expect_status 6 "$MKCOW" --diff d a.cow master.img
	expect_status 3 "$MKCOW" --diff master.img a.cow missing.img
	only_files . master.img fifo d out.txt err.txt
}

# An image qemu-img can read, through NBD: a qcow2 served by qemu-nbd and
# seen as a file by nbdfuse (FUSE).  A loop device stands for block devices.
t_diff_qcow2_through_nbd() {
	command -v nbdfuse >/dev/null && command -v qemu-nbd >/dev/null ||
		skip "no nbdfuse or qemu-nbd (packages libnbd-bin, qemu-utils)"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	randfile master.img 8M
	truncate -s 32M master.img
	cp --sparse=always master.img flat.img
	dd if=/dev/urandom of=flat.img bs=512 seek=77 count=9 conv=notrunc status=none
	dd if=/dev/urandom of=flat.img bs=4096 seek=5000 count=3 conv=notrunc status=none
	qemu-img convert -O qcow2 flat.img x.qcow2 || fail "qemu-img convert"
	mkdir mnt
	nbdfuse -r mnt --socket-activation qemu-nbd -r -f qcow2 x.qcow2 2>nbd.err &
	fuse=$!
	i=0
	while [ ! -e mnt/nbd ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	if [ ! -e mnt/nbd ]; then
		kill $fuse 2>/dev/null; wait $fuse
		skip "nbdfuse did not mount: $(head -n 1 nbd.err)"
	fi
	timeout 60 "$MKCOW" --json --diff mnt/nbd a.cow master.img >out.json 2>err.txt
	st=$?
	fusermount3 -u mnt || umount mnt
	wait $fuse
	[ $st = 0 ] || fail "--diff through nbdfuse: exit $st: $(cat err.txt)"
	check_diff flat.img a.cow master.img
	[ "$(json_num out.json sectors_written)" = 33 ] || fail "$(cat out.json)"
	# The same image as a block device.
	[ "$(id -u)" = 0 ] || skip "not root: the block-device half needs a loop device"
	dev=$(losetup -r -f --show flat.img 2>/dev/null) || skip "no loop device for the block-device half"
	"$MKCOW" --diff "$dev" b.cow master.img >out.txt 2>err.txt
	st=$?
	losetup -d "$dev"
	[ $st = 0 ] || fail "--diff of $dev: $(cat err.txt)"
	check_diff flat.img b.cow master.img
}

run_tests "$@"
