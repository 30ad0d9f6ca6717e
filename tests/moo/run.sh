#!/bin/sh
# Tests of uml_moo through its command line: byte equality with uml-utilities'
# uml_moo on COW files written by a real guest and on every layout, option
# order, sparse output, atomic replacement, in-place merge and its lock,
# crash safety (UBDK_MOO_CRASH_AFTER), --verify/--json/-q, the backing
# check, and bad input.
#   tests/moo/run.sh BUILD_DIR [t_NAME...]
set -u

SUITE=moo
. "$(dirname "$0")/../lib/runner.sh"

MOO=$B/bin/uml_moo
COWUTIL=$B/tests/cowutil
PEER_MOO=/usr/bin/uml_moo
PEER_MKCOW=/usr/bin/uml_mkcow
MiB=1048576

# --- helpers -----------------------------------------------------------------


# The error line names FILE ("uml_moo: FILE: problem", or another file
# first and FILE in the problem).
err_names() {
	grep -q '^uml_moo: [^:]*: .' err.txt || fail "error not 'uml_moo: FILE: problem': $(cat err.txt)"
	grep -qF "$1" err.txt || fail "error does not name '$1': $(cat err.txt)"
}

# Without a terminal no progress bar: at most a summary line on stderr.
no_progress() {
	[ "$(wc -l <err.txt)" -le 1 ] && ! grep -q "$(printf '\r')" err.txt ||
		fail "progress without a terminal: $(od -c err.txt | head -n 5)"
}


# Content and mtime of files, to check that nothing changed.
snap() {
	for _sn_f in "$@"; do
		printf '%s %s %s\n' "$_sn_f" "$(md5sum <"$_sn_f" | cut -c1-32)" "$(stat -c %y "$_sn_f")"
	done
}


# A synthetic pair in $T: master.img (MB MiB of random data, mtime in the
# past), c.cow (v3 by uml-utilities) with RUNS runs of COW data about
# 1.25 MiB apart (one of them zeros over random backing data, one the last
# sector), exp.img (the library's merged view), and pristine copies
# master.orig and c.orig (same mtime).
#   make_synth MB RUNS
make_synth() {
	randfile "$T/master.img" $(($1 * MiB))
	touch -d '2020-02-02 02:02:02' "$T/master.img"
	"$PEER_MKCOW" "$T/c.cow" "$T/master.img" >/dev/null || fail "uml_mkcow"
	_ms_i=0
	while [ $_ms_i -lt "$2" ]; do
		_ms_off=$(( _ms_i * 5 * MiB / 4 + (_ms_i * 7 % 13) * 512 ))
		_ms_len=$(( ((_ms_i * 37) % 64 + 1) * 512 ))
		if [ $_ms_i = 3 ]; then
			head -c 65536 /dev/zero >"$T/chunk"
		else
			randfile "$T/chunk" $_ms_len
		fi
		"$COWUTIL" write "$T/c.cow" $_ms_off "$T/chunk" || fail "cowutil write"
		_ms_i=$((_ms_i + 1))
	done
	randfile "$T/chunk" 512
	"$COWUTIL" write "$T/c.cow" $(($1 * MiB - 512)) "$T/chunk" || fail "cowutil write"
	rm -f "$T/chunk"
	"$COWUTIL" merged "$T/c.cow" "$T/exp.img" || fail "cowutil merged"
	cmp -s "$T/exp.img" "$T/master.img" && fail "COW changes nothing?"
	cp -p "$T/master.img" "$T/master.orig"
	cp -p --sparse=always "$T/c.cow" "$T/c.orig"
}

# Put the pristine pair back.
restore_synth() {
	cp -p "$T/master.orig" "$T/master.img"
	cp -p --sparse=always "$T/c.orig" "$T/c.cow"
}

# A small ext4 master holding known files, mtime in the past.
make_master() {
	mkdir -p "$T/tree/etc" "$T/tree/data"
	echo "hello from the master" >"$T/tree/hello.txt"
	echo "version=1" >"$T/tree/etc/app.conf"
	head -c 300000 /dev/urandom >"$T/tree/data/blob.bin"
	head -c 200000 /dev/urandom >"$T/tree/data/old.bin"
	mkfs.ext4 -q -F -b 4096 -L master -d "$T/tree" "$T/master.img" 64M >/dev/null ||
		fail "mkfs.ext4"
	rm -rf "$T/tree"
	touch -d '2021-03-03 03:03:03' "$T/master.img"
}

# Boot a guest on ubda=guest.cow,master.img that creates, modifies and
# deletes files; the kernel creates guest.cow.
guest_writes() {
	{
		guest_prologue
		cat <<'EOS'
mount /dev/ubda /mnt || echo "GUEST-ERROR mount"
echo "written by the guest" >/mnt/new.txt
dd if=/dev/urandom of=/mnt/big.bin bs=65536 count=48 2>/dev/null
echo "version=2" >/mnt/etc/app.conf
dd if=/dev/urandom of=/mnt/data/blob.bin bs=4096 seek=10 count=5 conv=notrunc 2>/dev/null
rm /mnt/data/old.bin
mkdir /mnt/many
i=0
while [ $i -lt 200 ]; do echo "file $i" >/mnt/many/f$i; i=$((i + 1)); done
echo "GUEST-BIG $(md5sum </mnt/big.bin | cut -c1-32)"
umount /mnt && echo "GUEST-DONE"
sync
poweroff -f
EOS
	} >"$T/init.sh"
	uml_boot "moo$$" "$T/init.sh" "$T/guest.log" ubda="$T/guest.cow,$T/master.img"
	grep -q GUEST-DONE "$T/guest.log" && ! grep -q GUEST-ERROR "$T/guest.log" ||
		{ cat "$T/guest.log" >&2; fail "guest"; }
	[ "$(info_get "$T/guest.cow" cow_sectors)" -gt 0 ] || fail "guest wrote nothing"
}

# --- byte equality with uml-utilities ---------------------------------------

t_guest_cow_equals_peer() {
	make_master
	guest_writes
	echo "guest COW: $(info_get guest.cow cow_sectors) sectors in $("$COWUTIL" runs guest.cow | wc -l) runs"
	cp -p master.img master.orig
	before=$(snap master.img guest.cow)
	"$PEER_MOO" guest.cow peer.img || fail "peer uml_moo"
	expect_status 0 "$MOO" guest.cow new.img
	no_progress
	cmp new.img peer.img || fail "new image differs from uml-utilities' uml_moo"
	"$COWUTIL" merged guest.cow view.img && cmp new.img view.img ||
		fail "new image differs from the merged view"
	[ "$(snap master.img guest.cow)" = "$before" ] || fail "new-image mode changed an input"
	# It is the guest's filesystem.
	e2fsck -fn new.img >fsck.log 2>&1 || { cat fsck.log >&2; fail "fsck"; }
	[ "$(debugfs -R 'cat /new.txt' new.img 2>/dev/null)" = "written by the guest" ] ||
		fail "new file missing"
	[ "$(debugfs -R 'cat /etc/app.conf' new.img 2>/dev/null)" = "version=2" ] ||
		fail "modified file wrong"
	debugfs -R 'stat /data/old.bin' new.img 2>&1 | grep -q 'File not found' ||
		fail "deleted file still there"
	big=$(sed -n 's/.*GUEST-BIG \([0-9a-f]*\).*/\1/p' guest.log | head -n1)
	[ "$(debugfs -R 'cat /big.bin' new.img 2>/dev/null | md5sum | cut -c1-32)" = "$big" ] ||
		fail "big file content wrong"
	[ "$(debugfs -R 'cat /many/f199' new.img 2>/dev/null)" = "file 199" ] || fail "small files"
	# In place: the uml-utilities way on a copy, ours with -b on a copy,
	# ours on the header's backing; all equal the new image.
	cp -p master.orig peer-d.img
	"$PEER_MOO" -d -b "$T/peer-d.img" guest.cow || fail "peer uml_moo -d"
	cmp peer-d.img new.img || fail "uml-utilities' -d differs from its new image?"
	cp -p master.orig ours-d.img
	expect_status 0 "$MOO" -d -b ours-d.img guest.cow
	cmp ours-d.img new.img || fail "-d -b result differs from the new image"
	cmp ours-d.img peer-d.img || fail "-d result differs from uml-utilities' -d"
	expect_status 0 "$MOO" -d guest.cow
	cmp master.img new.img || fail "-d (header's backing) differs from the new image"
	[ "$(size_of master.img)" = "$(size_of master.orig)" ] || fail "-d changed the size"
}

t_old_layouts_equal_peer() {
	randfile back.img $((2048 * 512))
	touch -d '2019-01-01' back.img
	for lay in v1 v2 v3b; do
		build_old $lay $lay.cow "$T/back.img" 2048 512 4096 \
			"0 3 10 11 12 63 64 200 255 256 257 1000 1023 1024 2040 2047"
		expect_status 0 "$MOO" $lay.cow $lay.new
		cmp $lay.new $lay.cow.expect || fail "$lay: new image wrong"
		"$PEER_MOO" $lay.cow $lay.peer || fail "$lay: peer uml_moo"
		cmp $lay.new $lay.peer || fail "$lay: differs from uml-utilities' uml_moo"
		cp -p back.img $lay.d
		expect_status 0 "$MOO" -d -b $lay.d $lay.cow
		cmp $lay.d $lay.cow.expect || fail "$lay: in-place result wrong"
		cmp -s back.img $lay.d && fail "$lay: nothing merged"
	done
	# v1/v2 rounding bug: the bit of sector 8 sits in the slack byte.
	randfile small.img $((9 * 512))
	build_old v2 r.cow "$T/small.img" 9 512 0 "1 8"
	expect_status 0 "$MOO" r.cow r.new
	cmp r.new r.cow.expect || fail "rounding: sector 8 not taken from the slack bit"
	# Sector size 1024 (v2) and alignment 512 (v3 broken).
	randfile big.img $((600 * 1024))
	build_old v2 s.cow "$T/big.img" 600 1024 0 "0 1 2 9 300 599"
	expect_status 0 "$MOO" s.cow s.new
	cmp s.new s.cow.expect || fail "sector size 1024: wrong"
	build_old v3b a.cow "$T/big.img" 1200 512 512 "0 7 8 9 100 1199"
	expect_status 0 "$MOO" a.cow a.new
	cmp a.new a.cow.expect || fail "alignment 512: wrong"
	# v3 by uml_mkcow, COW data written through the library, also a size
	# that is not a multiple of 512 (uml-utilities cannot merge that one).
	for size in $((8 * MiB)) 1000001; do
		rm -f m.img m.cow
		randfile m.img $size
		"$PEER_MKCOW" m.cow m.img >/dev/null || fail "uml_mkcow"
		# Sector-aligned writes; the last (maybe partial) sector too.
		last=$(( (size - 1) / 512 * 512 ))
		randfile chunk 5120 && head -c $((size - last)) chunk >chunk.last
		"$COWUTIL" write m.cow 3072 chunk && "$COWUTIL" write m.cow $last chunk.last ||
			fail "cowutil write"
		"$COWUTIL" merged m.cow m.exp || fail merged
		expect_status 0 "$MOO" m.cow m.new
		cmp m.new m.exp || fail "v3 size $size: wrong"
		if [ $((size % 512)) = 0 ]; then
			"$PEER_MOO" m.cow m.peer && cmp m.new m.peer || fail "v3: differs from uml-utilities"
		fi
		cp -p m.img m.d
		expect_status 0 "$MOO" -d -b m.d m.cow
		cmp m.d m.exp || fail "v3 size $size: in place wrong"
		rm -f m.new m.peer m.d m.exp
	done
}

# --- options ------------------------------------------------------------------

t_option_orders() {
	make_synth 16 10
	# other.img: the same size and mtime as the header's backing, another
	# content: -b must read (or write) it, not the header's file.
	randfile other.img $((16 * MiB))
	touch -r master.img other.img
	cp -p other.img other.orig
	"$COWUTIL" merged -b other.img c.cow exp-other.img || fail "merged -b"
	for args in "-b other.img c.cow new.img" "c.cow new.img -b other.img" \
		"c.cow -b other.img new.img" "--backing other.img c.cow new.img" \
		"--backing=other.img c.cow new.img" "-q -f -b other.img c.cow new.img"; do
		rm -f new.img
		# shellcheck disable=SC2086
		expect_status 0 "$MOO" $args
		cmp new.img exp-other.img || fail "'$args': wrong image"
		cmp -s master.img master.orig && cmp -s other.img other.orig || fail "'$args' changed a backing"
	done
	for args in "c.cow new.img" "-q c.cow new.img" "c.cow -q new.img" \
		"c.cow new.img -q" "--quiet -- c.cow new.img"; do
		rm -f new.img
		# shellcheck disable=SC2086
		expect_status 0 "$MOO" $args
		cmp new.img exp.img || fail "'$args': wrong image"
	done
	for args in "-b other.img -d c.cow" "-d -b other.img c.cow" "c.cow -d -b other.img" \
		"-d c.cow -b other.img" "--in-place --backing other.img c.cow" \
		"--backing=other.img --in-place c.cow"; do
		cp -p other.orig other.img
		# shellcheck disable=SC2086
		expect_status 0 "$MOO" $args
		cmp other.img exp-other.img || fail "'$args': wrong result"
		cmp -s master.img master.orig || fail "'$args' wrote the header's backing"
	done
	for args in "-d c.cow" "c.cow -d" "--in-place c.cow" "-q -d c.cow"; do
		restore_synth
		# shellcheck disable=SC2086
		expect_status 0 "$MOO" $args
		cmp master.img exp.img || fail "'$args': wrong result"
	done
}

t_usage_help_version() {
	make_synth 4 2
	before=$(snap master.img c.cow)
	for args in "" "c.cow" "c.cow a.img b.img" "-d" "-d c.cow new.img" "-b" \
		"--bogus c.cow new.img" "-x c.cow new.img" "c.cow new.img -b"; do
		# shellcheck disable=SC2086
		expect_status 2 "$MOO" $args
	done
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
	only_files . master.img master.orig c.cow c.orig exp.img out.txt err.txt
	expect_status 0 "$MOO" --help
	grep -q -- '--in-place' out.txt && grep -q -- '--backing' out.txt || fail "--help: $(cat out.txt)"
	expect_status 0 "$MOO" -h
	grep -q -- '--in-place' out.txt || fail "-h"
	expect_status 0 "$MOO" --version
	grep -q 'uml_moo.*[0-9]' out.txt || fail "--version: $(cat out.txt)"
}

# --- new image: sparse, atomic ------------------------------------------------

t_sparse_large_backing() {
	truncate -s 2G back.img
	# A few MB of data in the backing, one of them to be zeroed by the COW.
	for off in 100 1000 1500; do
		randfile chunk $((3 * MiB / 2))
		dd if=chunk of=back.img bs=1M seek=$off conv=notrunc status=none
	done
	touch -d '2022-04-04' back.img
	"$PEER_MKCOW" c.cow back.img >/dev/null || fail "uml_mkcow"
	randfile chunk $((2 * MiB)) && "$COWUTIL" write c.cow $((50 * MiB)) chunk &&
	randfile chunk $MiB && "$COWUTIL" write c.cow $((100 * MiB + MiB / 2)) chunk &&
	head -c $MiB /dev/zero >chunk && "$COWUTIL" write c.cow $((1500 * MiB)) chunk &&
	randfile chunk 4096 && "$COWUTIL" write c.cow $((2048 * MiB - 4096)) chunk &&
	randfile chunk 512 && "$COWUTIL" write c.cow 0 chunk || fail "cowutil write"
	rm chunk
	"$COWUTIL" merged c.cow exp.img || fail merged
	cmp -s exp.img back.img && fail "COW changes nothing?"
	cp -p back.img back.orig
	expect_status 0 "$MOO" c.cow new.img
	[ "$(size_of new.img)" = $((2048 * MiB)) ] || fail "size $(size_of new.img)"
	cmp new.img exp.img || fail "new image wrong"
	b_new=$(blocks_of new.img) b_back=$(blocks_of back.img) b_cow=$(blocks_of c.cow)
	echo "blocks: new $b_new, backing $b_back, COW $b_cow"
	[ "$b_new" -le $((b_back + b_cow + 8192)) ] ||
		fail "new image not sparse: $b_new blocks > $b_back + $b_cow + 8192"
	# In place keeps the backing sparse too, and zeroes what the COW zeroed.
	expect_status 0 "$MOO" -d c.cow
	cmp back.img exp.img || fail "in-place result wrong"
	[ "$(blocks_of back.img)" -le $((b_back + b_cow + 8192)) ] ||
		fail "in place filled the backing: $(blocks_of back.img) blocks"
}

t_existing_output() {
	make_synth 8 6
	echo "keep me" >new.img
	expect_status 5 "$MOO" c.cow new.img
	err_names new.img
	[ "$(cat new.img)" = "keep me" ] || fail "existing NEWIMAGE changed"
	only_files . master.img master.orig c.cow c.orig exp.img new.img out.txt err.txt
	expect_status 0 "$MOO" -f c.cow new.img
	cmp new.img exp.img || fail "-f: not replaced by the merge"
	# A symlink as NEWIMAGE is refused too, and -f replaces the link, not its target.
	echo "target" >target.img && ln -s target.img link.img
	expect_status 5 "$MOO" c.cow link.img
	expect_status 0 "$MOO" -f c.cow link.img
	[ "$(cat target.img)" = target ] || fail "-f wrote through a symlink"
	cmp link.img exp.img || fail "-f over a symlink: wrong"
	# Read-only NEWIMAGE in a writable directory: -f replaces it (rename).
	rm -f new.img && echo old >new.img && chmod 444 new.img
	expect_status 0 "$MOO" -f c.cow new.img
	cmp new.img exp.img || fail "-f over a read-only file"
}

# -f over a NEWIMAGE in use: a COW nbdkit-ubd-plugin serves, an image a
# guest runs on (it holds the kernel's write lock): refused, exit 6, the
# file untouched; replaced once released.
t_force_over_output_in_use() {
	make_synth 8 6
	"$B/bin/uml_mkcow" g.cow master.img || fail "mkcow"
	ino=$(stat -c %i g.cow) sum=$(md5sum <g.cow)
	nbd_serve g.cow
	expect_status 6 "$MOO" -f c.cow g.cow
	grep -q "^uml_moo: g.cow: in use: process $nbd_pid holds a lock on it.*not replaced" err.txt ||
		fail "$(cat err.txt)"
	nbd_stop
	[ "$(stat -c %i g.cow)" = "$ino" ] && [ "$(md5sum <g.cow)" = "$sum" ] ||
		fail "the served COW was replaced"
	if command -v python3 >/dev/null; then
		echo "booted" >run.img
		hold_lock run.img || fail "could not take the lock"
		holder=$lock_holder
		"$MOO" -f c.cow run.img >out.txt 2>err.txt
		st=$?
		kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
		[ $st = 6 ] || fail "run.img locked: exit $st: $(cat err.txt)"
		grep -q "run.img: in use: process $holder holds a lock" err.txt || fail "$(cat err.txt)"
		[ "$(cat run.img)" = booted ] || fail "the locked image was replaced"
	fi
	only_files . master.img master.orig c.cow c.orig exp.img g.cow out.txt err.txt \
		$([ -e run.img ] && echo run.img .locked)
	expect_status 0 "$MOO" -f c.cow g.cow
	cmp g.cow exp.img || fail "-f once released: not the merge"
}

t_output_is_an_input() {
	make_synth 8 6
	ln -s master.img link.img
	mkdir sub && ln -s ../c.cow sub/c-link.cow
	cp -p master.img copy.img
	before=$(snap master.img c.cow copy.img)
	for f in "" -f; do
		for out in c.cow "$T/c.cow" master.img ./master.img "$T/master.img" link.img \
			sub/../master.img sub/c-link.cow; do
			expect_status 5 "$MOO" $f c.cow "$out"
			err_names "$out"
		done
		expect_status 5 "$MOO" $f -b copy.img c.cow copy.img
		err_names copy.img
	done
	[ "$(snap master.img c.cow copy.img)" = "$before" ] || fail "an input changed"
	[ -L link.img ] && [ -L sub/c-link.cow ] || fail "a symlink was replaced"
	only_files . master.img master.orig c.cow c.orig exp.img copy.img link.img sub out.txt err.txt
	only_files sub c-link.cow
}

# --- in place: lock --------------------------------------------------------

t_in_place_refused_while_guest_runs() {
	make_master
	# A second COW on the same backing, not in use: merging it in place
	# would change the disk under the running guest.
	"$PEER_MKCOW" other.cow master.img >/dev/null || fail "uml_mkcow"
	randfile chunk 8192 && "$COWUTIL" write other.cow $((40 * MiB)) chunk || fail "cowutil write"
	{
		guest_prologue
		cat <<'EOS'
mount /dev/ubda /mnt && echo "GUEST-READY"
echo "guest was here" >/mnt/lock.txt
sleep 8
umount /mnt
sync
poweroff -f
EOS
	} >init.sh
	uml_boot lk$$ "$T/init.sh" lk.log ubda="$T/guest.cow,$T/master.img" &
	pid=$!
	i=0
	until grep -q GUEST-READY lk.log 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 300 ] || { kill $pid; fail "guest not ready"; }
		sleep 0.1
	done
	before=$(snap master.img other.cow)
	res=
	for args in "-d guest.cow" "-d other.cow" "-q -d -b $T/master.img other.cow" \
		"other.cow -d"; do
		# shellcheck disable=SC2086
		timeout -k 5 60 "$MOO" $args >out.txt 2>err.txt
		res="$res|$args|$?|$(cat err.txt)"
	done
	running=no
	kill -0 $pid 2>/dev/null && running=yes
	after=$(snap master.img other.cow)
	wait $pid
	echo "$res" | tr '|' '\n'
	[ "$running" = yes ] || fail "guest ended before the checks: test too slow"
	grep -q GUEST-READY lk.log || { cat lk.log >&2; fail "guest"; }
	echo "$res" | tr '|' '\n' | sed 1d | while read -r args && read -r st && read -r msg; do
		[ "$st" = 6 ] || fail "'uml_moo $args' while the guest runs exited $st, expected 6: $msg"
		case $msg in
		"uml_moo: "*": "*) ;;
		*) fail "'$args': error line: $msg" ;;
		esac
		case "$args/$msg" in
		*other.cow/*master.img*) ;;
		*other.cow/*) fail "'$args': the message does not name the backing: $msg" ;;
		esac
	done || exit 1
	[ "$after" = "$before" ] || fail "an input changed while locked"
	only_files . master.img guest.cow other.cow init.sh lk.log uml out.txt err.txt chunk
	# Once the guest is gone the same commands work.
	cp -p master.img m2.img
	expect_status 0 "$MOO" -q -d -b m2.img other.cow
	"$COWUTIL" merged guest.cow exp.img || fail merged
	expect_status 0 "$MOO" -d guest.cow
	cmp master.img exp.img || fail "in-place result after the guest wrong"
	[ "$(debugfs -R 'cat /lock.txt' master.img 2>/dev/null)" = "guest was here" ] ||
		fail "guest's file not merged"
}

# --- crash safety ------------------------------------------------------------

# Kill uml_moo after N data writes for each N, then run it again.
#   crash_loop MODE "N..." where MODE is new or inplace.
# The pair is restored before each N.  Sets kills.
crash_loop() {
	kills=0 _cl_last=137 mt_changed=0
	for n in $2; do
		restore_synth
		rm -f new.img
		if [ "$1" = new ]; then
			UBDK_MOO_CRASH_AFTER=$n "$MOO" -q c.cow new.img >out.txt 2>err.txt
		else
			UBDK_MOO_CRASH_AFTER=$n "$MOO" -q -d c.cow >out.txt 2>err.txt
		fi
		st=$?
		case $st in
		137) [ "$_cl_last" = 137 ] ||
			fail "N=$n: killed, but a smaller N ran to the end"
			kills=$((kills + 1)) ;;
		0) _cl_last=0 ;;
		*) fail "N=$n: exit $st, expected 137 (or 0 past the last write): $(cat err.txt)" ;;
		esac
		if [ "$1" = new ]; then
			[ ! -e new.img ] || [ $st = 0 ] || fail "N=$n: killed run left NEWIMAGE"
			cmp -s master.img master.orig || fail "N=$n: new-image mode wrote the backing"
			rm -f new.img
			expect_status 0 "$MOO" -q c.cow new.img
			cmp new.img exp.img || fail "N=$n: re-run's new image wrong"
		else
			if [ $st = 137 ]; then
				[ "$(mtime_of master.img)" = "$(mtime_of master.orig)" ] ||
					mt_changed=$((mt_changed + 1))
				expect_status 0 "$MOO" -q -d c.cow
			fi
			[ ! -e c.cow.moo-inplace ] || fail "N=$n: resume record left after success"
			cmp master.img exp.img || fail "N=$n: result wrong (exit $st, then re-run)"
		fi
		stray=$(ls -A | grep -v -x -e master.img -e master.orig -e c.cow -e c.orig \
			-e exp.img -e new.img -e out.txt -e err.txt -e other.img -e old.img)
		[ -z "$stray" ] && continue
		[ -n "${UBDK_NO_TMPFILE:-}" ] || fail "N=$n: files left after kill and re-run: $stray"
		echo "NOTE: N=$n: files left after kill and re-run: $stray"
		# shellcheck disable=SC2086
		rm -f $stray
	done
}

t_crash_in_place() {
	make_synth 64 50
	crash_loop inplace "$(seq 1 20) 25 30 40 45 60 100 1000 100000"
	echo "in place: killed $kills times, $mt_changed of them changed the backing's mtime"
	[ $kills -ge 20 ] || fail "only $kills kills for 50 COW runs 1.25 MiB apart"
	[ $mt_changed -ge 1 ] || fail "no killed run changed the backing's mtime: resume not exercised"
	# The interrupted merge resumes only on the same backing file: another
	# file (another inode) with a wrong mtime is still refused.
	restore_synth
	UBDK_MOO_CRASH_AFTER=3 "$MOO" -q -d c.cow >out.txt 2>err.txt
	[ $? = 137 ] || fail "N=3 not killed"
	cp master.orig other.img && touch -d '2024-01-01' other.img
	before=$(snap other.img)
	expect_status 4 "$MOO" -q -d -b other.img c.cow
	expect_status 4 "$MOO" -q -b other.img c.cow new.img
	[ "$(snap other.img)" = "$before" ] || fail "another backing was written"
	expect_status 0 "$MOO" -q -d c.cow
	cmp master.img exp.img || fail "resume after the refused runs: wrong"
	rm other.img
	# Killed again and again before finishing.
	restore_synth
	for n in 3 5 1 7 2; do
		UBDK_MOO_CRASH_AFTER=$n "$MOO" -q -d c.cow >out.txt 2>err.txt
		st=$?
		[ $st = 137 ] || fail "chained N=$n: exit $st: $(cat err.txt)"
	done
	expect_status 0 "$MOO" -q --verify -d c.cow
	cmp master.img exp.img || fail "chained kills: result wrong"
	# A killed in-place run, then a new-image run: refused or correct.
	restore_synth
	UBDK_MOO_CRASH_AFTER=4 "$MOO" -q -d c.cow >out.txt 2>err.txt
	"$MOO" -q c.cow new.img >out.txt 2>err.txt
	st=$?
	if [ $st = 0 ]; then
		cmp new.img exp.img || fail "new image after a killed in-place run is wrong"
	else
		[ ! -e new.img ] || fail "failed run left NEWIMAGE"
		echo "new image after a killed in-place run refused ($st): $(cat err.txt)"
	fi
}

t_crash_new_image() {
	make_synth 64 50
	crash_loop new "$(seq 1 20) 30 50 64 100 1000 100000"
	echo "new image: killed $kills times"
	[ $kills -ge 1 ] || fail "never killed"
	# A killed -f run leaves the old NEWIMAGE as it was.
	restore_synth
	echo "the old image" >new.img
	for n in 1 2 5; do
		UBDK_MOO_CRASH_AFTER=$n "$MOO" -q -f c.cow new.img >out.txt 2>err.txt
		st=$?
		[ $st = 137 ] || [ $n -gt $kills ] || fail "-f N=$n: exit $st: $(cat err.txt)"
		[ $st = 0 ] || [ "$(cat new.img)" = "the old image" ] ||
			fail "-f N=$n: killed run changed the existing NEWIMAGE"
	done
	expect_status 0 "$MOO" -q -f c.cow new.img
	cmp new.img exp.img || fail "-f after kills: wrong"
}

t_crash_guest_cow() {
	make_master
	guest_writes
	"$COWUTIL" merged guest.cow exp.img || fail merged
	cp -p master.img master.orig && cp -p --sparse=always guest.cow guest.orig
	kills=0
	for n in $(seq 1 12) 40 1000; do
		cp -p master.orig master.img && cp -p --sparse=always guest.orig guest.cow
		rm -f new.img
		UBDK_MOO_CRASH_AFTER=$n "$MOO" -q guest.cow new.img >out.txt 2>err.txt
		st=$?
		[ $st = 137 ] || [ $st = 0 ] || fail "new N=$n: exit $st: $(cat err.txt)"
		[ $st = 0 ] || [ ! -e new.img ] || fail "new N=$n: killed run left NEWIMAGE"
		rm -f new.img
		expect_status 0 "$MOO" -q guest.cow new.img
		cmp new.img exp.img || fail "new N=$n: re-run's image wrong"
		UBDK_MOO_CRASH_AFTER=$n "$MOO" -q -d guest.cow >out.txt 2>err.txt
		st=$?
		[ $st = 137 ] && kills=$((kills + 1))
		[ $st = 137 ] || [ $st = 0 ] || fail "N=$n: exit $st: $(cat err.txt)"
		[ $st = 0 ] || expect_status 0 "$MOO" -q -d guest.cow
		cmp master.img exp.img || fail "N=$n: result wrong (exit $st, then re-run)"
	done
	echo "guest COW in place: killed $kills times"
	[ $kills -ge 5 ] || fail "only $kills kills"
	e2fsck -fn master.img >fsck.log 2>&1 || { cat fsck.log >&2; fail "fsck"; }
}

# --- --verify, --json, -q ------------------------------------------------------

t_verify_json_quiet() {
	make_synth 16 10
	expect_status 0 "$MOO" --verify c.cow new.img
	cmp new.img exp.img || fail "--verify: wrong image"
	rm new.img
	cow_bytes=$(( $(info_get c.cow cow_sectors) * 512 ))
	keys='["mode","cow","backing","output","size","bytes_from_backing","bytes_from_cow","seconds","verified"]'
	expect_status 0 "$MOO" -j c.cow new.img
	[ "$(wc -l <out.txt)" = 1 ] || fail "--json: not one line: $(cat out.txt)"
	jq -e --argjson k "$keys" 'type == "object" and ($k - keys == [])' \
		out.txt >/dev/null || fail "--json keys missing: $(cat out.txt)"
	extra=$(jq -c --argjson k "$keys" 'keys - $k' out.txt)
	[ "$extra" = "[]" ] || echo "NOTE: --json has keys beyond the spec: $extra"
	jq -e --argjson s $((16 * MiB)) --argjson c $cow_bytes '.mode == "new" and .size == $s
		and .bytes_from_cow == $c and (.bytes_from_backing | type) == "number"
		and (.seconds | type) == "number" and .verified == false
		and (.output | endswith("new.img")) and (.cow | endswith("c.cow"))
		and (.backing | endswith("master.img"))' out.txt >/dev/null ||
		fail "--json values: $(cat out.txt) (COW bytes $cow_bytes)"
	cmp new.img exp.img || fail "--json: wrong image"
	expect_status 0 "$MOO" --json --verify -f c.cow new.img
	jq -e '.verified == true and .mode == "new"' out.txt >/dev/null || fail "--verify --json: $(cat out.txt)"
	expect_status 0 "$MOO" -j --verify -d c.cow
	jq -e --argjson c $cow_bytes '.mode == "in-place" and .verified == true
		and .bytes_from_cow == $c and (.backing | endswith("master.img"))' out.txt >/dev/null ||
		fail "in-place --json: $(cat out.txt)"
	cmp master.img exp.img || fail "-d --verify: wrong result"
	# Progress: never without a terminal, never with -q.
	restore_synth && rm -f new.img
	expect_status 0 "$MOO" c.cow new.img
	no_progress
	[ ! -s out.txt ] || fail "stdout without --json: $(cat out.txt)"
	rm new.img
	expect_status 0 "$MOO" -q c.cow new.img
	[ ! -s err.txt ] && [ ! -s out.txt ] || fail "-q printed: $(cat out.txt err.txt)"
	rm new.img
	script -qec "$MOO -q c.cow new.img" /dev/null </dev/null >tty.txt 2>&1 || fail "-q on a terminal failed"
	[ ! -s tty.txt ] || fail "-q on a terminal printed: $(od -c tty.txt | head)"
	cmp new.img exp.img || fail "-q on a terminal: wrong image"
	rm new.img
	script -qec "$MOO c.cow new.img" /dev/null </dev/null >tty.txt 2>&1 || fail "on a terminal failed"
	[ -s tty.txt ] || fail "no progress on a terminal"
	cmp new.img exp.img || fail "on a terminal: wrong image"
	# With --json on a terminal, stdout is still just the JSON (progress on stderr).
	rm new.img
	script -qec "$MOO -j c.cow new.img 2>/dev/null" /dev/null </dev/null >tty.txt 2>&1
	tr -d '\r' <tty.txt | jq -e .mode >/dev/null || fail "--json on a terminal: $(cat tty.txt)"
}

# --- the backing check and bad input --------------------------------------------

t_backing_checks() {
	make_synth 8 6
	# Touched backing: refused in both modes, the message says why and what to do.
	touch -d '2030-01-01' master.img
	before=$(snap master.img c.cow)
	expect_status 4 "$MOO" c.cow new.img
	grep -qi 'mtime' err.txt || fail "message does not mention mtime: $(cat err.txt)"
	grep -q -e '-b' -e '--backing' -e 'rebase' err.txt ||
		fail "message does not show the way forward: $(cat err.txt)"
	expect_status 4 "$MOO" -d c.cow
	grep -qi 'mtime' err.txt || fail "-d: $(cat err.txt)"
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
	only_files . master.img master.orig c.cow c.orig exp.img out.txt err.txt
	# Missing backing, named by the header or by -b.
	restore_synth
	mv master.img moved.img
	expect_status 4 "$MOO" c.cow new.img
	grep -q 'master.img' err.txt || fail "missing backing not named: $(cat err.txt)"
	expect_status 4 "$MOO" -b nothere.img c.cow new.img
	err_names nothere.img
	expect_status 4 "$MOO" -d -b nothere.img c.cow
	# The moved backing works with -b (mtime kept by mv).
	expect_status 0 "$MOO" -b moved.img c.cow new.img
	cmp new.img exp.img || fail "-b moved backing: wrong"
	rm new.img && mv moved.img master.img
	# Wrong size: -b of another size, and a backing grown in place.
	truncate -s 4M small.img && touch -r master.img small.img
	before=$(snap master.img c.cow small.img)
	expect_status 4 "$MOO" -b small.img c.cow new.img
	grep -qi -e 'size' -e 'bytes' err.txt || fail "message does not mention the size: $(cat err.txt)"
	expect_status 4 "$MOO" -d -b small.img c.cow
	grep -qi -e 'size' -e 'bytes' err.txt || fail "-d: $(cat err.txt)"
	[ "$(snap master.img c.cow small.img)" = "$before" ] || fail "an input changed"
	truncate -s 9M master.img && touch -r master.orig master.img
	before=$(snap master.img c.cow)
	expect_status 4 "$MOO" c.cow new.img
	expect_status 4 "$MOO" -d c.cow
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
	only_files . master.img master.orig c.cow c.orig exp.img small.img out.txt err.txt
}

t_bad_cow() {
	make_synth 8 6
	before=$(snap master.img c.cow)
	expect_status 3 "$MOO" nothere.cow new.img
	err_names nothere.cow
	expect_status 3 "$MOO" -d nothere.cow
	err_names nothere.cow
	randfile junk.cow 100000
	expect_status 3 "$MOO" junk.cow new.img
	err_names junk.cow
	expect_status 3 "$MOO" -d -b master.img junk.cow
	: >empty.cow
	expect_status 3 "$MOO" empty.cow new.img
	err_names empty.cow
	# Truncated inside the header and inside the bitmap (8192 + 2048 bytes).
	head -c 100 c.cow >hdr.cow
	expect_status 3 "$MOO" hdr.cow new.img
	err_names hdr.cow
	head -c 9000 c.cow >bm.cow
	expect_status 3 "$MOO" bm.cow new.img
	err_names bm.cow
	expect_status 3 "$MOO" -d bm.cow
	# Corrupt headers: alignment 0, sector size 0, version 9, cow_format 1.
	cp c.cow al.cow && put_int al.cow 24 0 4 be
	cp c.cow ss.cow && put_int ss.cow 20 0 4 be
	cp c.cow ver.cow && put_int ver.cow 4 9 4 be
	cp c.cow fmt.cow && put_int fmt.cow 28 1 4 be
	for f in al ss ver fmt; do
		expect_status 3 "$MOO" $f.cow new.img
		err_names $f.cow
		expect_status 3 "$MOO" -d $f.cow
	done
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
	only_files . master.img master.orig c.cow c.orig exp.img junk.cow empty.cow hdr.cow \
		bm.cow al.cow ss.cow ver.cow fmt.cow out.txt err.txt
}

t_output_errors() {
	make_synth 8 6
	before=$(snap master.img c.cow)
	expect_status 1 "$MOO" c.cow nodir/new.img
	err_names nodir/new.img
	# RLIMIT_FSIZE below the image size: a clean error, not SIGXFSZ.
	(ulimit -f 2048 && exec "$MOO" c.cow new.img) >out.txt 2>err.txt
	st=$?
	[ $st = 1 ] || fail "past RLIMIT_FSIZE: exit $st, expected 1: $(cat err.txt)"
	[ "$(wc -l <err.txt)" = 1 ] || fail "not one line: $(cat err.txt)"
	err_names new.img
	grep -q 'File too large' err.txt || fail "$(cat err.txt)"
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
	only_files . master.img master.orig c.cow c.orig exp.img out.txt err.txt
	# A full filesystem.
	if [ "$(id -u)" != 0 ]; then
		skip "not root: the full-filesystem case needs a tmpfs"
	fi
	mkdir full
	mount -t tmpfs -o size=2m tmpfs full || skip "cannot mount a tmpfs"
	"$MOO" c.cow full/new.img >out.txt 2>err.txt
	st=$?
	left=$(ls -A full)
	umount full
	[ $st = 1 ] || fail "full filesystem: exit $st, expected 1: $(cat err.txt)"
	[ "$(wc -l <err.txt)" = 1 ] || fail "not one line: $(cat err.txt)"
	err_names full/new.img
	grep -q 'No space left' err.txt || fail "$(cat err.txt)"
	[ -z "$left" ] || fail "left on the full filesystem: $left"
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
}

# A COW cut inside its data area: a sector marked present whose data lies
# past the end of the file.  Refused before anything is written.
t_cow_cut_in_data() {
	make_synth 4 0
	randfile chunk 4096
	"$COWUTIL" write c.cow $MiB chunk || fail "cowutil write"
	truncate -s 200000 c.cow
	before=$(snap master.img c.cow)
	expect_status 3 timeout 10 "$MOO" c.cow new.img
	err_names c.cow
	grep -q 'past the end' err.txt || fail "reason not given: $(cat err.txt)"
	expect_status 3 timeout 10 "$MOO" -d c.cow
	err_names c.cow
	expect_status 3 timeout 10 "$MOO" --verify -d c.cow
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
	cmp -s master.img master.orig || fail "the backing changed"
	only_files . master.img master.orig c.cow c.orig exp.img chunk out.txt err.txt
}

# FIFOs and devices as the COW or the backing (by -b or by the header):
# one line and the documented status, never a wait for a writer.
t_fifo_and_devices() {
	make_synth 4 2
	mkfifo fifo
	before=$(snap master.img c.cow)
	expect_status 3 timeout 10 "$MOO" fifo new.img
	grep -q 'fifo: not a regular file or block device' err.txt || fail "$(cat err.txt)"
	expect_status 3 timeout 10 "$MOO" -d fifo
	for b in fifo /dev/null /dev/zero "$T"; do
		expect_status 4 timeout 10 "$MOO" -b "$b" c.cow new.img
		grep -qF "$b" err.txt || fail "-b $b not named: $(cat err.txt)"
		expect_status 4 timeout 10 "$MOO" -d -b "$b" c.cow
	done
	# The header names a FIFO.
	truncate -s 1M other.img
	"$PEER_MKCOW" f.cow "$T/other.img" >/dev/null || fail "uml_mkcow"
	rm other.img && mkfifo other.img
	expect_status 4 timeout 10 "$MOO" f.cow new.img
	grep -q 'not a regular file or block device' err.txt || fail "$(cat err.txt)"
	expect_status 4 timeout 10 "$MOO" -d f.cow
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
	only_files . master.img master.orig c.cow c.orig exp.img fifo f.cow other.img out.txt err.txt
}

# Names with newlines and quotes: one-line errors, commands shell-quoted;
# a long name keeps the reason; --json valid for names that are not UTF-8.
t_hostile_names() {
	make_synth 4 2
	nl="$(printf 'a\nb')"
	expect_status 3 "$MOO" "$nl.cow" new.img
	grep -qF 'a\nb.cow' err.txt || fail "newline not escaped: $(cat err.txt)"
	# A touched backing: the suggested command quotes the COW's name.
	cp -p c.cow "it's $nl.cow"
	touch master.img
	expect_status 4 "$MOO" "it's $nl.cow" new.img
	grep -qF "uml_mkcow --rebase BACKING \$'it\\'s a\\nb.cow'" err.txt ||
		fail "command not quoted: $(cat err.txt)"
	touch -r master.orig master.img
	# A name past the library's 512-byte messages: the reason survives.
	long=$(printf '%0200d' 0)
	long="$long/$long/$long"
	mkdir -p "$long"
	cp c.cow "$long/c.cow" && truncate -s 5000 "$long/c.cow"
	expect_status 3 "$MOO" "$long/c.cow" new.img
	grep -q 'bitmap' err.txt || fail "reason lost: $(cat err.txt)"
	# Not UTF-8: the byte as its Latin-1 character, as every tool writes it.
	bad="$(printf 'x\377y')"
	cp -p c.cow "$bad.cow"
	expect_status 0 "$MOO" -q --json "$bad.cow" new.img
	python3 -c 'import json,sys; d=json.load(open("out.txt")); assert d["cow"] == "x\u00ffy.cow", d' ||
		fail "--json: $(cat out.txt)"
}

run_tests "$@"
