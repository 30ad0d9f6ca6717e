#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_build_uses_our_driver_and_library() {
	o=$B/kernel/obj
	grep -qx 'CONFIG_UBDK_UBD=y' "$o/.config" || fail "CONFIG_UBDK_UBD not set"
	! grep -q '^CONFIG_BLK_DEV_UBD=y' "$o/.config" || fail "stock ubd enabled"
	[ -f "$o/arch/um/drivers/ubdk/built-in.a" ] || fail "ubdk not built"
	grep -qx 'CONFIG_PAGE_REPORTING=y' "$o/.config" || fail "CONFIG_PAGE_REPORTING not set"
	for f in cow/cow.o cow/header.o cow/bitmap.o cow/bmap.o cow/cbt.o cow/cbt_file.o cow/crc32.o cow/ubdk_os_posix.o ubd_host.o ubd_host_io.o ubd_host_cbt.o ubd_kern.o ubd_map.o ubd_map_host.o page_report.o; do
		[ -f "$o/arch/um/drivers/ubdk/$f" ] || fail "$f not built"
	done
	# The library's one OS layer, also used by the tools, is linked in
	# (ubdk_os_map only exists there); the driver keeps no bitmap code.
	nm "$OURS" | grep -q ' [tT] ubdk_os_map$' || fail "ubdk_os_posix.c not linked"
	nm "$OURS" | grep -q ' [tT] ubdk_cow_pwritev$' || fail "ubdk_cow_pwritev not linked"
	! grep -q 'ubdk_bitmap_\|write_bitmap' "$ROOT/ubd/ubd_host.c" || fail "the driver still handles the bitmap itself"
	# The stock driver and the kernel's own COW code are not compiled.
	for f in ubd_kern.o ubd_user.o cow_user.o; do
		[ ! -e "$o/arch/um/drivers/$f" ] || fail "stock $f was built"
	done
	nm "$OURS" | grep -q ' [tT] ubdk_cow_open$' || fail "library not linked"
	! nm "$OURS" | grep -q ' [tT] read_cow_header$' || fail "stock COW code linked"
}

run_test t_build_uses_our_driver_and_library
