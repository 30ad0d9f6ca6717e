#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_guest_unclean() {
	make_master
	guest_prologue >"$T/init.sh"
	cat >>"$T/init.sh" <<'EOS'
mount /dev/ubda /mnt || echo "GUEST-ERROR mount"
echo "not unmounted" >/mnt/dirty.txt
sync
echo GUEST-DONE
poweroff -f
EOS
	uml_boot "isu$$" "$T/init.sh" "$T/guest.log" ubda="$T/guest.cow,$T/master.img"
	grep -q GUEST-DONE guest.log || { cat guest.log >&2; fail "guest"; }
	expect_status 0 "$IS" --json guest.cow
	json_ok out.txt 1
	if command -v python3 >/dev/null; then
		[ "$(jget out.txt content.ext.needs_recovery)" = true ] ||
			fail "needs_recovery not reported"
	fi
	expect_status 0 "$IS" --files guest.cow
	grep -q 'journal needs recovery' out.txt || fail "no warning: $(cat out.txt)"
}

run_test t_guest_unclean
