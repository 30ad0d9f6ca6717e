#!/bin/sh
. "$(dirname "$0")/functions.sh"

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

run_test t_rebase
