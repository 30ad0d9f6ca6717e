#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_verify_json_quiet() {
	make_synth 16 10
	expect_status 0 "$MOO" --verify c.cow new.img
	cmp new.img exp.img || fail "--verify: wrong image"
	rm new.img
	cow_bytes=$(( $(info_get c.cow cow_sectors) * 512 ))
	keys='["mode","cow","backing","output","size","bytes_from_backing","bytes_from_cow","seconds","verified"]'
	expect_status 0 "$MOO" -j c.cow new.img
	[ "$(wc -l <out.txt)" = 1 ] || fail "--json: not one line: $(cat out.txt)"
	jq -e --argjson k "$keys" 'type == "object" and ($k - keys == [])' \
		out.txt >/dev/null || fail "--json keys missing: $(cat out.txt)"
	extra=$(jq -c --argjson k "$keys" 'keys - $k' out.txt)
	[ "$extra" = "[]" ] || echo "NOTE: --json has keys beyond the spec: $extra"
	jq -e --argjson s $((16 * MiB)) --argjson c $cow_bytes '.mode == "new" and .size == $s
		and .bytes_from_cow == $c and (.bytes_from_backing | type) == "number"
		and (.seconds | type) == "number" and .verified == false
		and (.output | endswith("new.img")) and (.cow | endswith("c.cow"))
		and (.backing | endswith("master.img"))' out.txt >/dev/null ||
		fail "--json values: $(cat out.txt) (COW bytes $cow_bytes)"
	cmp new.img exp.img || fail "--json: wrong image"
	expect_status 0 "$MOO" --json --verify -f c.cow new.img
	jq -e '.verified == true and .mode == "new"' out.txt >/dev/null || fail "--verify --json: $(cat out.txt)"
	expect_status 0 "$MOO" -j --verify -d c.cow
	jq -e --argjson c $cow_bytes '.mode == "in-place" and .verified == true
		and .bytes_from_cow == $c and (.backing | endswith("master.img"))' out.txt >/dev/null ||
		fail "in-place --json: $(cat out.txt)"
	cmp master.img exp.img || fail "-d --verify: wrong result"
	# Progress: never without a terminal, never with -q.
	restore_synth && rm -f new.img
	expect_status 0 "$MOO" c.cow new.img
	no_progress
	[ ! -s out.txt ] || fail "stdout without --json: $(cat out.txt)"
	rm new.img
	expect_status 0 "$MOO" -q c.cow new.img
	[ ! -s err.txt ] && [ ! -s out.txt ] || fail "-q printed: $(cat out.txt err.txt)"
	rm new.img
	script -qec "$MOO -q c.cow new.img" /dev/null </dev/null >tty.txt 2>&1 || fail "-q on a terminal failed"
	[ ! -s tty.txt ] || fail "-q on a terminal printed: $(od -c tty.txt | head)"
	cmp new.img exp.img || fail "-q on a terminal: wrong image"
	rm new.img
	script -qec "$MOO c.cow new.img" /dev/null </dev/null >tty.txt 2>&1 || fail "on a terminal failed"
	[ -s tty.txt ] || fail "no progress on a terminal"
	cmp new.img exp.img || fail "on a terminal: wrong image"
	# With --json on a terminal, stdout is still just the JSON (progress on stderr).
	rm new.img
	script -qec "$MOO -j c.cow new.img 2>/dev/null" /dev/null </dev/null >tty.txt 2>&1
	tr -d '\r' <tty.txt | jq -e .mode >/dev/null || fail "--json on a terminal: $(cat tty.txt)"
}

run_test t_verify_json_quiet
