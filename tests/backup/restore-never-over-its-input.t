#!/bin/sh
# restore -f never writes over what it reads: its input, a file of its
# backup, or a file of any point of the chain it applies (exit 5, the
# backup unchanged and still verifying).
. "$(dirname "$0")/functions.sh"

t_restore_never_over_its_input() {
	small_cow x
	printf 'x data' | dd of="$T/x.cow" bs=1 seek=200000 conv=notrunc status=none
	expect_status 0 "$BK" -q -c --offline "$T/x.cow" "$T/b"
	cp "$T/x.cow" "$T/x0.cow"
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$T/chain"
	printf 'later' | dd of="$T/x.cow" bs=1 seek=900000 conv=notrunc status=none
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$T/chain"
	set -- $(points "$T/chain")
	sums=$(cd "$T" && find b chain -type f | sort | xargs md5sum)
	expect_status 5 "$BK" restore -f "$T/b/ubd0.ubdx.lz4" "$T/b/ubd0.ubdx.lz4"
	err_has "is the input"
	expect_status 5 "$BK" restore -f -d ubd0 "$T/b" "$T/b/ubd0.chunks"
	err_has "a file of the backup being restored"
	expect_status 5 "$BK" restore -f "$T/b" "$T/b/manifest.json"
	expect_status 5 "$BK" restore -f "$T/chain/$2" "$T/chain/$1/ubd0.ubdx"
	err_has "a file of point $1 of the chain being restored"
	expect_status 5 "$BK" restore -f "$T/chain/$2/ubd0.ubdx" "$T/chain/$2/ubd0.ubdx"
	[ "$sums" = "$(cd "$T" && find b chain -type f | sort | xargs md5sum)" ] ||
		fail "a refused restore changed the backups"
	expect_status 0 "$BK" verify "$T/chain"
	expect_status 0 "$BK" verify "$T/b"
	# A symbolic link named as OUTPUT is replaced, not its target.
	ln -s "$T/b/ubd0.chunks" "$T/link.cow"
	expect_status 0 "$BK" restore -f "$T/b" "$T/link.cow"
	[ ! -L "$T/link.cow" ] || fail "the link was not replaced"
	cmp "$T/link.cow" "$T/x0.cow" || fail "restored through a link: wrong"
	expect_status 0 "$BK" verify "$T/b"
}

run_test t_restore_never_over_its_input
