#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_option_orders() {
	make_synth 16 10
	# other.img: the same size and mtime as the header's backing, another
	# content: -b must read (or write) it, not the header's file.
	randfile other.img $((16 * MiB))
	touch -r master.img other.img
	cp -p other.img other.orig
	"$COWUTIL" merged -b other.img c.cow exp-other.img || fail "merged -b"
	for args in "-b other.img c.cow new.img" "c.cow new.img -b other.img" \
		"c.cow -b other.img new.img" "--backing other.img c.cow new.img" \
		"--backing=other.img c.cow new.img" "-q -f -b other.img c.cow new.img"; do
		rm -f new.img
		# shellcheck disable=SC2086
		expect_status 0 "$MOO" $args
		cmp new.img exp-other.img || fail "'$args': wrong image"
		cmp -s master.img master.orig && cmp -s other.img other.orig || fail "'$args' changed a backing"
	done
	for args in "c.cow new.img" "-q c.cow new.img" "c.cow -q new.img" \
		"c.cow new.img -q" "--quiet -- c.cow new.img"; do
		rm -f new.img
		# shellcheck disable=SC2086
		expect_status 0 "$MOO" $args
		cmp new.img exp.img || fail "'$args': wrong image"
	done
	for args in "-b other.img -d c.cow" "-d -b other.img c.cow" "c.cow -d -b other.img" \
		"-d c.cow -b other.img" "--in-place --backing other.img c.cow" \
		"--backing=other.img --in-place c.cow"; do
		cp -p other.orig other.img
		# shellcheck disable=SC2086
		expect_status 0 "$MOO" $args
		cmp other.img exp-other.img || fail "'$args': wrong result"
		cmp -s master.img master.orig || fail "'$args' wrote the header's backing"
	done
	for args in "-d c.cow" "c.cow -d" "--in-place c.cow" "-q -d c.cow"; do
		restore_synth
		# shellcheck disable=SC2086
		expect_status 0 "$MOO" $args
		cmp master.img exp.img || fail "'$args': wrong result"
	done
}

run_test t_option_orders
