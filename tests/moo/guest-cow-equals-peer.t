#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_guest_cow_equals_peer() {
	make_master
	guest_writes
	echo "guest COW: $(info_get guest.cow cow_sectors) sectors in $("$COWUTIL" runs guest.cow | wc -l) runs"
	cp -p master.img master.orig
	before=$(snap master.img guest.cow)
	"$PEER_MOO" guest.cow peer.img || fail "peer uml_moo"
	expect_status 0 "$MOO" guest.cow new.img
	no_progress
	cmp new.img peer.img || fail "new image differs from uml-utilities' uml_moo"
	"$COWUTIL" merged guest.cow view.img && cmp new.img view.img ||
		fail "new image differs from the merged view"
	[ "$(snap master.img guest.cow)" = "$before" ] || fail "new-image mode changed an input"
	# It is the guest's filesystem.
	e2fsck -fn new.img >fsck.log 2>&1 || { cat fsck.log >&2; fail "fsck"; }
	[ "$(debugfs -R 'cat /new.txt' new.img 2>/dev/null)" = "written by the guest" ] ||
		fail "new file missing"
	[ "$(debugfs -R 'cat /etc/app.conf' new.img 2>/dev/null)" = "version=2" ] ||
		fail "modified file wrong"
	debugfs -R 'stat /data/old.bin' new.img 2>&1 | grep -q 'File not found' ||
		fail "deleted file still there"
	big=$(sed -n 's/.*GUEST-BIG \([0-9a-f]*\).*/\1/p' guest.log | head -n1)
	[ "$(debugfs -R 'cat /big.bin' new.img 2>/dev/null | md5sum | cut -c1-32)" = "$big" ] ||
		fail "big file content wrong"
	[ "$(debugfs -R 'cat /many/f199' new.img 2>/dev/null)" = "file 199" ] || fail "small files"
	# In place: the uml-utilities way on a copy, ours with -b on a copy,
	# ours on the header's backing; all equal the new image.
	cp -p master.orig peer-d.img
	"$PEER_MOO" -d -b "$T/peer-d.img" guest.cow || fail "peer uml_moo -d"
	cmp peer-d.img new.img || fail "uml-utilities' -d differs from its new image?"
	cp -p master.orig ours-d.img
	expect_status 0 "$MOO" -d -b ours-d.img guest.cow
	cmp ours-d.img new.img || fail "-d -b result differs from the new image"
	cmp ours-d.img peer-d.img || fail "-d result differs from uml-utilities' -d"
	expect_status 0 "$MOO" -d guest.cow
	cmp master.img new.img || fail "-d (header's backing) differs from the new image"
	[ "$(size_of master.img)" = "$(size_of master.orig)" ] || fail "-d changed the size"
}

run_test t_guest_cow_equals_peer
