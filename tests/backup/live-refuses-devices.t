#!/bin/sh
# Every device, or a missing one: refused before the guest is touched.
. "$(dirname "$0")/functions.sh"

t_live_refuses_devices() {
	live_guest
	# All devices: ubd2 has no COW.
	expect_status 4 "$BK" -u "$T/uml" g1 "$T/all"
	err_has "ubd2: .*plain.img is not a COW file"
	[ ! -e "$T/all" ] || fail "destination created although a device has no COW"
	expect_status 4 "$BK" -u "$T/uml" -d ubd5 g1 "$T/all"
	err_has "not configured"
	assert_running g1 "after refused backups"
	live_guest_end
}

run_test t_live_refuses_devices
