#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_library_v1_v2_boot() {
	cd "$T"
	randfile back.img $((4096 * 512))
	{
		guest_prologue
		cat <<'EOS'
printf 'guest-wrote-this-sector' | dd of=/dev/ubda bs=4096 seek=100 conv=sync,notrunc 2>/dev/null
sync
echo "GUEST-SUM $(md5sum </dev/ubda | cut -c1-32)"
poweroff -f
EOS
	} >init.sh
	for v in 1 2 3; do
		rm -f v$v.cow
		"$MKCOW" --format-version $v v$v.cow back.img || fail "create v$v"
		[ "$(info_get v$v.cow version)" = $v ] || fail "version $v"
		uml_boot lv "$T/init.sh" v$v.log ubda="$T/v$v.cow" ||
			{ cat v$v.log >&2; fail "v$v: boot"; }
		sum=$(sed -n 's/.*GUEST-SUM \([0-9a-f]*\).*/\1/p' v$v.log | head -n1)
		[ -n "$sum" ] || { cat v$v.log >&2; fail "v$v: no checksum"; }
		"$COWUTIL" merged v$v.cow ours.img || fail "v$v: merged"
		[ "$(md5sum <ours.img | cut -c1-32)" = "$sum" ] ||
			fail "v$v: library's merged view differs from what the guest saw"
		[ "$("$COWUTIL" grep v$v.cow guest-wrote-this-sector)" = 409600 ] ||
			fail "v$v: guest write not found"
		"$PEER_MOO" v$v.cow moo.img && cmp moo.img ours.img ||
			fail "v$v: uml_moo disagrees"
	done
}

run_test t_library_v1_v2_boot
