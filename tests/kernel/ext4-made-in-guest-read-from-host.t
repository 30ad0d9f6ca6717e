#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_ext4_made_in_guest_read_from_host() {
	truncate -s 64M back.img
	cat >body <<'EOS'
mkfs.ext4 -q -F /dev/ubda || echo MKFS-FAILED
mkdir -p /tmp/m && mount -t ext4 /dev/ubda /tmp/m || echo MOUNT-FAILED
i=0
while [ $i -lt 20 ]; do
	head -c $((i * 37000 + 1)) /dev/urandom >/tmp/m/f$i
	echo "SUM f$i $(md5sum </tmp/m/f$i | cut -d' ' -f1)"
	i=$((i + 1))
done
mkdir /tmp/m/dir && cp /bin/ls /tmp/m/dir/ls
sync
umount /tmp/m
EOS
	ours ext4 body log ubda="$T/g.cow,$T/back.img" || true
	ended log
	! grep -q FAILED log || fail "guest: $(grep FAILED log)"
	grep -q 'Creating .*g.cow.* as COW file' log || fail "no creation message"
	[ "$(info_get g.cow layout)" = v3 ] || fail "not a v3 COW"
	[ "$(info_get g.cow backing)" = "$T/back.img" ] || fail "backing path"
	"$COWUTIL" merged g.cow merged.img || fail "cowutil merged"
	e2fsck -fn merged.img >fsck.txt 2>&1 || { cat fsck.txt; fail "fsck of the merged view"; }
	grep '^SUM ' log | while read -r _ f sum; do
		debugfs -R "dump /$f $T/out" merged.img 2>/dev/null
		[ "$(md5 out)" = "$sum" ] || { echo "$f differs" >&2; exit 1; }
	done || fail "file contents"
	debugfs -R "dump /dir/ls $T/ls" merged.img 2>/dev/null
	cmp ls /bin/ls || fail "dir/ls"
	"$MOO" g.cow moo.img >/dev/null || fail "our uml_moo"
	cmp merged.img moo.img || fail "our uml_moo differs from the merged view"
	"$PEER_MOO" g.cow peer.img >/dev/null 2>&1 || fail "uml-utilities uml_moo"
	cmp merged.img peer.img || fail "uml-utilities' uml_moo differs"
	# The stock kernel sees the same file system.
	cat >body2 <<'EOS'
mkdir -p /tmp/m && mount -o ro -t ext4 /dev/ubda /tmp/m && echo "SUM2 $(md5sum </tmp/m/f7 | cut -d' ' -f1)"
umount /tmp/m
EOS
	stock ext4s body2 log2 ubda="$T/g.cow,$T/back.img" || true
	ended log2
	[ "$(sed -n 's/^SUM2 //p' log2)" = "$(sed -n 's/^SUM f7 //p' log)" ] || fail "stock read f7 differently"
}

run_test t_ext4_made_in_guest_read_from_host
