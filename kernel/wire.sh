#!/bin/sh
# Wire this project's driver into an unpacked linux-source tree:
#   kernel/wire.sh SRC ROOT
# - SRC/arch/um/drivers/ubdk/ holds symbolic links to ROOT/ubd/* (the driver
#   and its Kbuild and Kconfig) and ubdk/cow/ to ROOT/cow/*.[ch] (the format
#   library, compiled unchanged as host-side objects);
# (kernel/patches/0001 makes arch/um/drivers/ source ubdk/Kconfig and
# descend into ubdk/; every other change of kernel files is a patch there.)
# Idempotent; links follow files added to or removed from ubd/ and cow/.
set -eu
SRC=$1 ROOT=$2
D=$SRC/arch/um/drivers

mkdir -p "$D/ubdk/cow"
link_dir() { # link_dir FROM TO patterns...
	_from=$1 _to=$2
	shift 2
	# Drop links to files that are gone or that lie elsewhere (a tree
	# wired from another checkout before).
	for l in "$_to"/*; do
		[ -L "$l" ] || continue
		case $(readlink "$l") in
		"$_from"/*) [ -e "$l" ] || rm -f "$l" ;;
		*) rm -f "$l" ;;
		esac
	done
	for p in "$@"; do
		for f in "$_from"/$p; do
			[ -e "$f" ] || continue
			t=$_to/$(basename "$f")
			[ "$(readlink "$t" 2>/dev/null || true)" = "$f" ] || ln -sfn "$f" "$t"
		done
	done
}
link_dir "$ROOT/ubd" "$D/ubdk" '*.c' '*.h' Kbuild Kconfig
link_dir "$ROOT/cow" "$D/ubdk/cow" '*.c' '*.h'
