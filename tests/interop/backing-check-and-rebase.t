#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_backing_check_and_rebase() {
	cd "$T"
	make_master
	"$MKCOW" guest.cow master.img
	{
		guest_prologue
		echo 'echo "GUEST-UP"'
		echo 'poweroff -f'
	} >init.sh
	touch -d '2030-01-01' master.img
	out=$("$COWUTIL" check guest.cow 2>&1) && fail "check passed after touch"
	echo "$out" | grep -q 'mtime-mismatch' || fail "no mtime mismatch: $out"
	echo "$out" | grep -q "mtime_delta=$(( $(mtime_of master.img) - $(info_get guest.cow mtime) ))" ||
		fail "wrong delta: $out"
	uml_boot bc1 "$T/init.sh" bc1.log ubda="$T/guest.cow,$T/master.img"
	grep -qi 'mtime mismatch' bc1.log || fail "kernel accepted a touched backing?"
	# Rebase onto a moved copy: the kernel accepts it again.
	mkdir -p moved && cp --preserve=timestamps master.img moved/m.img
	touch -d '2031-05-05' moved/m.img
	"$COWUTIL" rebase guest.cow moved/m.img || fail rebase
	[ "$(info_get guest.cow backing)" = "$T/moved/m.img" ] || fail "path not rewritten"
	[ "$(info_get guest.cow mtime)" = "$(mtime_of moved/m.img)" ] || fail "mtime not rewritten"
	uml_boot bc2 "$T/init.sh" bc2.log ubda="$T/guest.cow"
	grep -qi 'mismatch' bc2.log && { cat bc2.log >&2; fail "kernel refused the rebased COW"; }
	grep -q GUEST-UP bc2.log || fail "guest did not come up"
	# Different size: refused, file unchanged.
	truncate -s 1M small.img
	md5a=$(md5sum <guest.cow)
	"$COWUTIL" rebase guest.cow small.img 2>err.txt && fail "rebase onto other size"
	grep -q size-mismatch err.txt || fail "no size mismatch"
	[ "$(md5sum <guest.cow)" = "$md5a" ] || fail "COW modified by refused rebase"
}

run_test t_backing_check_and_rebase
