#!/bin/sh
# Wire this project's driver into an unpacked linux-source tree:
#   kernel/wire.sh SRC ROOT
# - SRC/arch/um/drivers/ubdk/ holds symbolic links to ROOT/ubd/* (the driver
#   and its Kbuild and Kconfig) and ubdk/cow/ to ROOT/cow/*.[ch] (the format
#   library, compiled unchanged as host-side objects);
# - arch/um/drivers/Kconfig sources ubdk/Kconfig (CONFIG_UBDK_UBD, which
#   excludes the stock CONFIG_BLK_DEV_UBD) and arch/um/drivers/Makefile
#   descends into ubdk/.
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

grep -q 'arch/um/drivers/ubdk/Kconfig' "$D/Kconfig" ||
	printf '\nsource "arch/um/drivers/ubdk/Kconfig"\n' >>"$D/Kconfig"
grep -q 'CONFIG_UBDK_UBD' "$D/Makefile" ||
	printf '\n# ubdkit: this project'"'"'s ubd driver (kernel/wire.sh)\nobj-$(CONFIG_UBDK_UBD) += ubdk/\n' >>"$D/Makefile"

# mconsole's "cbt" command (changed-block tracking, docs/cbt.md): an entry
# in mconsole's command table, served by our driver's mconsole_cbt(); the
# weak default in mconsole_kern.c answers for a kernel without it (the
# stock variant, built from this same tree).
if ! grep -q '"cbt", mconsole_cbt' "$D/mconsole_user.c"; then
	sed -i 's|^\(\t{ "stack", mconsole_stack, MCONSOLE_INTR },\)$|\1\n\t{ "cbt", mconsole_cbt, MCONSOLE_PROC }, /* ubdkit */|' "$D/mconsole_user.c"
	grep -q '"cbt", mconsole_cbt' "$D/mconsole_user.c" ||
		{ echo "wire.sh: cannot add cbt to mconsole_user.c" >&2; exit 1; }
fi
if ! grep -q 'mconsole_cbt' "$D/mconsole.h"; then
	sed -i 's|^\(extern void mconsole_stack(struct mc_request \*req);\)$|\1\nextern void mconsole_cbt(struct mc_request *req); /* ubdkit */|' "$D/mconsole.h"
	grep -q 'mconsole_cbt' "$D/mconsole.h" ||
		{ echo "wire.sh: cannot declare mconsole_cbt in mconsole.h" >&2; exit 1; }
fi
if ! grep -q 'cbt ubd<n>' "$D/mconsole_kern.c"; then
	sed -i 's|^\(    stack <pid> - returns the stack of the specified pid\\n\\\)$|\1\n    cbt ubd<n> [checkpoint <name>] - changed-block tracking (ubdkit)\\n\\|' "$D/mconsole_kern.c"
	grep -q 'cbt ubd<n>' "$D/mconsole_kern.c" ||
		{ echo "wire.sh: cannot add cbt to mconsole's help" >&2; exit 1; }
fi
if ! grep -q 'mconsole_cbt' "$D/mconsole_kern.c"; then
	cat >>"$D/mconsole_kern.c" <<'EOC'

/* ubdkit (kernel/wire.sh): "cbt" is served by ubdkit's ubd driver. */
void __weak mconsole_cbt(struct mc_request *req)
{
	mconsole_reply(req, "cbt: no changed-block tracking in this kernel",
		       1, 0);
}
EOC
fi
