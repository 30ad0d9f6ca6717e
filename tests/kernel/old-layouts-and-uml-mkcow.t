#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_old_layouts_and_uml_mkcow() {
	# COWs made by uml_mkcow and v2/v1 layouts made by the library.
	rand_backing back.img 4
	uml_mkcow peer.cow back.img >/dev/null
	"$COWUTIL" create -V 2 v2.cow back.img || fail "v2"
	"$COWUTIL" create -V 1 v1.cow back.img || fail "v1"
	# A sector size of 1024: the device's logical blocks follow it.
	"$COWUTIL" create -s 1024 s1k.cow back.img || fail "1024"
	{ guest_marks a 3 700; echo 'echo "SUM=$(md5sum </dev/ubda | cut -d" " -f1)"'; } >body
	cp back.img expect.img
	host_marks expect.img a 3 700
	want=$(md5 expect.img)
	for c in peer v2 v1 s1k; do
		ours "o$c" body "log.$c" ubda="$T/$c.cow,$T/back.img" || true
		ended "log.$c"
		[ "$(sed -n 's/^SUM=//p' "log.$c")" = "$want" ] || fail "$c: guest read wrong data"
		"$COWUTIL" merged "$c.cow" "m.$c" || fail "$c: merged"
		cmp "m.$c" expect.img || fail "$c: merged view wrong"
		case $c in v1|v2) [ "$(info_get "$c.cow" layout)" = "$c" ] || fail "$c: layout changed" ;; esac
	done
}

run_test t_old_layouts_and_uml_mkcow
