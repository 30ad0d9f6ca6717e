#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_bad_options_and_template() {
	truncate -s 1M master.img
	for args in "--count 3 --name g.cow" "--count 3 --name g-%s.cow" \
		"--count 3 --name g-%d-%d.cow" "--count 3 --name g-%-3d.cow" \
		"--count 0 --name g-%d.cow" "--count 3" "-V 4" "-s 1000" "-s 256" \
		"-V 1 -a 512" "-a 0" "--bogus"; do
		# shellcheck disable=SC2086
		expect_status 2 "$MKCOW" $args x.cow master.img
	done
	expect_status 2 "$MKCOW" --count 3 --name 'g%d.cow' x.cow master.img
	expect_status 2 "$MKCOW" master.img
	only_files . master.img out.txt err.txt
	# %% is a literal percent; width and zero padding work; --start shifts.
	"$MKCOW" -q --count 2 --start 9 --name '100%%-%03d.cow' master.img || fail "template"
	only_files . master.img out.txt err.txt 100%-009.cow 100%-010.cow
}

run_test t_bad_options_and_template
