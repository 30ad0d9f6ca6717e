#!/bin/sh
# nbdcopy over four connections (multi-conn) equals uml_moo's merge.
. "$(dirname "$0")/functions.sh"

t_nbdcopy_four_connections() {
	need nbdkit nbdcopy
	make_pair 8
	nbdkit -U - "$PLUGIN" c.cow readonly=true \
		--run 'nbdcopy --connections=4 "$uri" out.img' || fail "nbdcopy"
	cmp out.img exp.img || fail "nbdcopy output differs from uml_moo's merge"
}

run_test t_nbdcopy_four_connections
