#!/bin/sh
# README: convert a pair to qcow2 without merging it first.
. "$(dirname "$0")/functions.sh"

t_convert_to_qcow2() {
	need nbdkit qemu-img
	make_pair 8
	before=$(snap master.img c.cow)
	nbdkit -U - "$PLUGIN" c.cow --run 'qemu-img convert -O qcow2 "$uri" out.qcow2' ||
		fail "nbdkit --run qemu-img convert"
	qemu-img compare -q out.qcow2 exp.img || fail "out.qcow2 differs from uml_moo's merge"
	[ "$(snap master.img c.cow)" = "$before" ] || fail "the pair changed"
}

run_test t_convert_to_qcow2
