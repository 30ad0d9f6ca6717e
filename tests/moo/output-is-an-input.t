#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_output_is_an_input() {
	make_synth 8 6
	ln -s master.img link.img
	mkdir sub && ln -s ../c.cow sub/c-link.cow
	cp -p master.img copy.img
	before=$(snap master.img c.cow copy.img)
	for f in "" -f; do
		for out in c.cow "$T/c.cow" master.img ./master.img "$T/master.img" link.img \
			sub/../master.img sub/c-link.cow; do
			expect_status 5 "$MOO" $f c.cow "$out"
			err_names "$out"
		done
		expect_status 5 "$MOO" $f -b copy.img c.cow copy.img
		err_names copy.img
	done
	[ "$(snap master.img c.cow copy.img)" = "$before" ] || fail "an input changed"
	[ -L link.img ] && [ -L sub/c-link.cow ] || fail "a symlink was replaced"
	only_files . master.img master.orig c.cow c.orig exp.img copy.img link.img sub out.txt err.txt
	only_files sub c-link.cow
}

run_test t_output_is_an_input
