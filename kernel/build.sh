#!/bin/sh
# Build a UML kernel from Debian's linux-source-6.1 with this project's ubd
# driver (ubd/) and COW library (cow/) in place of the stock driver.
#   kernel/build.sh BUILD_DIR [ours|stock]
# ours  -> BUILD_DIR/kernel/linux        (objects in BUILD_DIR/kernel/obj)
# stock -> BUILD_DIR/kernel/linux-stock  (same source and config, stock ubd;
#          objects in BUILD_DIR/kernel/obj-stock; for the benchmark)
# The source is unpacked once into BUILD_DIR/kernel/src, patched with
# kernel/patches/series and only ever built out of tree (O=), so both
# variants share it.  Incremental: re-running after
# touching a driver or library file recompiles that file and relinks.
set -eu

B=$(mkdir -p "${1:?usage: build.sh BUILD_DIR [ours|stock]}" && cd "$1" && pwd)
VARIANT=${2:-ours}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KB=$B/kernel
SRC=$KB/src
TARBALL=${LINUX_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
JOBS=${KERNEL_JOBS:-2}
MAKE_K="make -C $SRC ARCH=um"

case $VARIANT in
ours) OBJ=$KB/obj OUT=$KB/linux FRAGS="$ROOT/kernel/config.fragment" ;;
stock) OBJ=$KB/obj-stock OUT=$KB/linux-stock
	FRAGS="$ROOT/kernel/config.fragment $ROOT/kernel/stock.fragment" ;;
*) echo "build.sh: unknown variant '$VARIANT'" >&2; exit 2 ;;
esac

say() { echo "kernel: $*" >&2; }

# --- the source ----------------------------------------------------------
need_pkgs() {
	missing=
	for p in "$@"; do
		case $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) in
		*" installed") ;;
		*) missing="$missing $p" ;;
		esac
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" = 0 ]; then
		say "installing:$missing"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $missing >&2
		return 0
	fi
	echo "kernel: missing Debian packages; install them with:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
	exit 1
}

tools="build-essential bc flex bison libelf-dev xz-utils"
if [ -f "$TARBALL" ]; then
	need_pkgs $tools
else
	need_pkgs $tools linux-source-6.1
fi
[ -f "$TARBALL" ] || { echo "kernel: $TARBALL missing" >&2; exit 1; }

if [ ! -f "$SRC/.ubdk-unpacked" ] || [ "$TARBALL" -nt "$SRC/.ubdk-unpacked" ]; then
	say "unpacking $TARBALL into $SRC"
	rm -rf "$SRC" "$KB/obj" "$KB/obj-stock"
	mkdir -p "$SRC"
	tar -xJf "$TARBALL" -C "$SRC" --strip-components=1
	touch "$SRC/.ubdk-unpacked"
fi

# --- our changes to the kernel: kernel/patches/series ----------------------
# The series applied last is kept in SRC/.ubdk-applied.  When the series
# changes, every file that the old or the new series touches is restored
# from the tarball and the new series applied whole, so a re-run is a no-op
# and a changed patch needs no fresh unpack (only the files it touches are
# rebuilt).  A tree without that record (wired by the old sed edits of
# wire.sh) restores the files those edits touched.
PATCHES=$ROOT/kernel/patches
APPLIED=$SRC/.ubdk-applied
patch_files() { # the files patches $@ touch, one a line
	for _p in "$@"; do
		if [ -f "$_p" ]; then sed -n 's|^+++ b/\([^	]*\).*|\1|p' "$_p"; fi
	done
}
series_same() {
	[ -f "$APPLIED/series" ] && cmp -s "$PATCHES/series" "$APPLIED/series" ||
		return 1
	while read -r _p; do
		cmp -s "$PATCHES/$_p" "$APPLIED/$_p" || return 1
	done <"$PATCHES/series"
}
if ! series_same; then
	say "applying kernel/patches/series"
	if [ -f "$APPLIED/series" ]; then
		old=$(sed "s|^|$APPLIED/|" "$APPLIED/series")
		# shellcheck disable=SC2086
		restore=$(patch_files $old)
	else
		restore="arch/um/drivers/Kconfig arch/um/drivers/Makefile
arch/um/drivers/mconsole_user.c arch/um/drivers/mconsole.h
arch/um/drivers/mconsole_kern.c"
	fi
	# shellcheck disable=SC2046,SC2086 # lists of paths, split on purpose
	restore=$(printf '%s\n' $restore $(patch_files $(sed "s|^|$PATCHES/|" \
		"$PATCHES/series")) | sort -u)
	top=$(tar -tJf "$TARBALL" | head -n 1 | cut -d/ -f1)
	# Files that come out as they were keep their times (below): a patch
	# change rebuilds what it changes, not all that includes page.h.
	keep=$KB/.ubdk-keep
	rm -rf "$keep" "$APPLIED"
	for f in $restore; do
		[ ! -f "$SRC/$f" ] || { mkdir -p "$keep/${f%/*}" &&
			cp -p "$SRC/$f" "$keep/$f"; }
	done
	# shellcheck disable=SC2046,SC2086
	tar -xJf "$TARBALL" -C "$SRC" --strip-components=1 \
		$(printf "$top/%s " $restore)
	while read -r p; do
		patch -d "$SRC" -p1 --batch --quiet --forward --no-backup-if-mismatch \
			<"$PATCHES/$p" >&2 ||
			{ echo "kernel: $p does not apply" >&2; exit 1; }
	done <"$PATCHES/series"
	for f in $restore; do
		! cmp -s "$keep/$f" "$SRC/$f" 2>/dev/null ||
			touch -r "$keep/$f" "$SRC/$f"
	done
	rm -rf "$keep"
	mkdir -p "$APPLIED"
	cp "$PATCHES/series" "$APPLIED/series"
	while read -r p; do cp "$PATCHES/$p" "$APPLIED/$p"; done <"$PATCHES/series"
fi

# --- link ubd/ and cow/ into the tree --------------------------------------
"$ROOT/kernel/wire.sh" "$SRC" "$ROOT"

# --- configuration -----------------------------------------------------------
mkdir -p "$OBJ"
stamp=$OBJ/.ubdk-config
redo=
[ -f "$OBJ/.config" ] && [ -f "$stamp" ] || redo=1
for f in $FRAGS "$ROOT/ubd/Kconfig" "$ROOT/kernel/build.sh"; do
	[ -n "$redo" ] || [ ! "$f" -nt "$stamp" ] || redo=1
done
if [ -n "$redo" ]; then
	say "configuring $VARIANT ($OBJ)"
	$MAKE_K O="$OBJ" defconfig >"$OBJ/config.log" 2>&1 ||
		{ cat "$OBJ/config.log" >&2; exit 1; }
	# shellcheck disable=SC2086
	KCONFIG_CONFIG=$OBJ/.config "$SRC/scripts/kconfig/merge_config.sh" -m \
		-O "$OBJ" "$OBJ/.config" $FRAGS >>"$OBJ/config.log" 2>&1 ||
		{ cat "$OBJ/config.log" >&2; exit 1; }
	$MAKE_K O="$OBJ" olddefconfig >>"$OBJ/config.log" 2>&1 ||
		{ cat "$OBJ/config.log" >&2; exit 1; }
	# Every setting of the fragments (the last one wins) must have survived.
	# shellcheck disable=SC2086
	awk '/^CONFIG_/ { split($0, a, "="); want[a[1]] = $0 }
	     /^# CONFIG_.* is not set$/ { want[$2] = "" }
	     END { for (k in want) print k "\t" want[k] }' $FRAGS |
	while IFS="$(printf '\t')" read -r sym line; do
		if [ -z "$line" ]; then
			! grep -q "^$sym=" "$OBJ/.config" || echo "$sym still set"
		else
			grep -qx "$line" "$OBJ/.config" || echo "'$line' did not stick"
		fi
	done >"$OBJ/config.bad"
	if [ -s "$OBJ/config.bad" ]; then
		sed 's/^/kernel: config: /' "$OBJ/config.bad" >&2
		exit 1
	fi
	touch "$stamp"
fi

# --- build -------------------------------------------------------------------
say "building $VARIANT (make -j$JOBS linux)"
if ! $MAKE_K O="$OBJ" -j"$JOBS" linux >"$OBJ/build.log" 2>&1; then
	grep -E 'error|Error|warning' "$OBJ/build.log" | head -n 40 >&2 || true
	tail -n 20 "$OBJ/build.log" >&2
	exit 1
fi
grep -E '(ubdk|drivers/ubd).*warning' "$OBJ/build.log" >&2 || true
if ! cmp -s "$OBJ/linux" "$OUT" 2>/dev/null; then
	cp "$OBJ/linux" "$OUT.tmp" && mv -f "$OUT.tmp" "$OUT"
fi
say "$OUT ready"
