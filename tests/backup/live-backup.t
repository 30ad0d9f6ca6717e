#!/bin/sh
# A plain backup of both COWs, by socket path, while records are written:
# the manifest, --json, verify; a consistent point in time that boots.
. "$(dirname "$0")/functions.sh"

t_live_backup() {
	live_guest
	n0=$(last_rec g1)
	expect_status 0 "$BK" -j -d ubda,ubdb "$S" "$T/b1"
	cat err.txt
	manifest_keys "$T/b1/manifest.json"
	cmp -s out.txt "$T/b1/manifest.json" || fail "--json output is not the manifest"
	[ -f "$T/b1/ubd0.cow" ] && [ -f "$T/b1/ubd1.cow" ] || fail "files: $(ls "$T/b1")"
	echo "plain backup: method $(json_str "$T/b1/manifest.json" method)," \
		"pause $(json_num "$T/b1/manifest.json" pause_ms) ms, records before $n0"
	[ "$(json_str "$T/b1/manifest.json" guest)" = g1 ] || fail "guest name"
	grep -q "\"backing\": \"$T/disk.img\"" "$T/b1/manifest.json" || fail "backing path"
	assert_running g1 "after the plain backup"
	expect_status 0 "$BK" verify "$T/b1"
	# One more: it holds no more records than were written when it returned.
	expect_status 0 "$BK" -q -d 0 "$S" "$T/b4"
	n_b4=$(last_rec g1)
	live_guest_end
	n_end=$(last_rec g1)
	c1=$(merged_check "$T/b1/ubd0.cow" "$n0")
	echo "b1: $c1 records (guest had written $n0 before, $n_end at the end)"
	[ "$c1" -lt "$n_end" ] || fail "b1 holds records written after it"
	c4=$(merged_check "$T/b4/ubd0.cow" "$c1")
	[ "$c4" -le $((n_b4 + 1)) ] || fail "b4 holds $c4 records, more than the $n_b4 written when it returned"
	# ubdb: the kernel made its COW; nothing was written, still a valid COW.
	"$COWUTIL" check "$T/b1/ubd1.cow" >/dev/null || fail "ubd1 backup not a valid COW"
	# The backup boots as it is: a guest on b1/ubd0.cow reads the records.
	cat >"$T/boot.sh" <<EOS
#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc 2>/dev/null
mount /dev/ubda /mnt || { echo GUEST-ERROR mount; poweroff -f; }
echo "GUEST-RECORDS \$(wc -l </mnt/rec)"
echo "GUEST-LAST \$(tail -n 1 /mnt/rec)"
umount /mnt
poweroff -f
EOS
	uml_boot bootb "$T/boot.sh" "$T/log.boot" ubda="$T/b1/ubd0.cow" ||
		{ cat "$T/log.boot" >&2; fail "booting the backup"; }
	got=$(sed -n 's/^GUEST-RECORDS \([0-9]*\).*/\1/p' "$T/log.boot")
	[ "$got" = "$c1" ] || { tail -n 20 "$T/log.boot" >&2; fail "booted backup has '$got' records, expected $c1"; }
}

run_test t_live_backup
