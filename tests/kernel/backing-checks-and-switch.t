#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_backing_checks_and_switch() {
	rand_backing back.img 4
	echo 'dd if=/dev/ubda of=/dev/null bs=4096 count=1 status=none 2>/dev/null && echo OPEN-OK || echo OPEN-FAILED' >body
	guest_marks sw 10 >wbody
	ours mk wbody log0 ubda="$T/c.cow,$T/back.img" || true
	ended log0
	cp back.img expect.img
	host_marks expect.img sw 10
	# mtime mismatch: refused, by both kernels.
	touch -d '2001-01-01' back.img
	for k in ours stock; do
		$k "mt$k" body "log.mt.$k" ubda="$T/c.cow,$T/back.img" || true
		ended "log.mt.$k"
		grep -qx OPEN-FAILED "log.mt.$k" || fail "$k: mtime mismatch not refused"
	done
	grep -q 'mtime' log.mt.ours || fail "ours: no mtime message"
	touch -d "@$(info_get c.cow mtime)" back.img
	ours ok body log.ok ubda="$T/c.cow,$T/back.img" || true
	grep -qx OPEN-OK log.ok || fail "matching mtime refused"
	# Size mismatch.
	cp -p back.img big.img && truncate -s 5M big.img && touch -d "@$(info_get c.cow mtime)" big.img
	"$COWUTIL" create s.cow back.img || fail create
	mv back.img keep.img && mv big.img back.img
	ours sz body log.sz ubda="$T/s.cow" || true
	grep -qx OPEN-FAILED log.sz || fail "size mismatch not refused"
	grep -qi 'size\|bytes' log.sz || fail "no size message"
	mv keep.img back.img
	# Moved backing: the command line names the new path; header rewritten.
	mkdir moved && mv back.img moved/new.img
	echo 'echo "SUM=$(md5sum </dev/ubda | cut -d" " -f1)"' >rbody
	ours swo rbody log.sw ubda="$T/c.cow,$T/moved/new.img" || true
	ended log.sw
	grep -q "Switching backing file to '$T/moved/new.img'" log.sw || fail "no switch message"
	[ "$(info_get c.cow backing)" = "$T/moved/new.img" ] || fail "header not rewritten: $(info_get c.cow backing)"
	[ "$(sed -n 's/^SUM=//p' log.sw)" = "$(md5 expect.img)" ] || fail "switched: wrong data"
	# The stock kernel reads the switched COW on its own.
	stock sws rbody log.sws ubda="$T/c.cow" || true
	[ "$(sed -n 's/^SUM=//p' log.sws)" = "$(md5 expect.img)" ] || fail "stock after switch: wrong data"
	# And ours follows a switch made by stock.
	mv moved/new.img moved/again.img
	stock sw2 rbody log.sw2 ubda="$T/c.cow,$T/moved/again.img" || true
	[ "$(info_get c.cow backing)" = "$T/moved/again.img" ] || fail "stock did not switch"
	ours sw3 rbody log.sw3 ubda="$T/c.cow" || true
	[ "$(sed -n 's/^SUM=//p' log.sw3)" = "$(md5 expect.img)" ] || fail "ours after stock's switch"
}

run_test t_backing_checks_and_switch
