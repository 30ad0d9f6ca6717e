# The moo suite: what its tests (tests/moo/*.t) share; each test sources
# this file, tests/lib/tap.sh runs it.
#
# Tests of uml_moo through its command line: byte equality with uml-utilities'
# uml_moo on COW files written by a real guest and on every layout, option
# order, sparse output, atomic replacement, in-place merge and its lock,
# crash safety (UBDK_MOO_CRASH_AFTER), --verify/--json/-q, the backing
# check, and bad input.
#   prove -j2 --directives --comments tests/moo/   (make check-moo)
#   prove -v tests/moo/NAME.t                    (one test; B=BUILD_DIR)
set -u

SUITE=moo
. "$(dirname "$0")/../lib/tap.sh"

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
