#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_kernel_created_header() {
	cd "$T"
	make_master
	guest_prologue >init.sh
	echo 'poweroff -f' >>init.sh
	uml_boot kc "$T/init.sh" kc.log ubda="$T/kernel.cow,$T/master.img" ||
		{ cat kc.log >&2; fail "boot"; }
	[ -f kernel.cow ] || fail "kernel did not create the COW"
	[ "$(info_get kernel.cow layout)" = v3 ] || fail layout
	[ "$(info_get kernel.cow backing)" = "$T/master.img" ] || fail backing
	[ "$(info_get kernel.cow size)" = "$(size_of master.img)" ] || fail size
	[ "$(info_get kernel.cow mtime)" = "$(mtime_of master.img)" ] || fail mtime
	[ "$(info_get kernel.cow sectorsize)" = 512 ] || fail sectorsize
	[ "$(info_get kernel.cow alignment)" = 4096 ] || fail alignment
	# Our header bytes equal the kernel's for the same backing.
	"$MKCOW" ours.cow master.img
	# The kernel leaves its buffer's old bytes after the path's NUL.
	path="$T/master.img"
	cmp -n $((32 + ${#path} + 1)) kernel.cow ours.cow ||
		fail "header bytes differ from the kernel's"
	[ "$(size_of kernel.cow)" = "$(size_of ours.cow)" ] || fail "apparent size"
}

run_test t_kernel_created_header
