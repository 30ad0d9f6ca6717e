#!/bin/sh
# A parent of another guest's COW or another master is refused (exit 8),
# the chain untouched.
. "$(dirname "$0")/functions.sh"

t_chain_other_guest() {
	small_cow x
	"$MKCOW" -q "$T/y.cow" "$T/x.img" || fail "uml_mkcow"
	truncate -s 4M "$T/z.img"
	"$MKCOW" -q "$T/z.cow" "$T/z.img" || fail "uml_mkcow"
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$T/chain"
	sums=$(cd "$T/chain" && find . -type f | sort | xargs md5sum)
	expect_status 8 "$BK" -i --offline "$T/y.cow" "$T/chain"
	err_has "another COW file"
	# The same COW path over another master.
	mv "$T/x.cow" "$T/x.orig"
	cp "$T/z.cow" "$T/x.cow"
	expect_status 8 "$BK" -i --offline "$T/x.cow" "$T/chain"
	err_has "another master"
	expect_status 8 "$BK" -i --offline "$T/x.orig" "$T/y.cow" "$T/chain"
	err_has "another set of devices"
	[ "$sums" = "$(cd "$T/chain" && find . -type f | sort | xargs md5sum)" ] || fail "a refused run changed the chain"
	[ "$(points "$T/chain" | wc -l)" = 1 ] || fail "a refused run left a point: $(ls "$T/chain")"
}

run_test t_chain_other_guest
