#!/bin/sh
# Names with newlines and quotes: one-line errors, commands shell-quoted;
# a long name keeps the reason; --json valid for names that are not UTF-8.
. "$(dirname "$0")/functions.sh"

t_hostile_names() {
	make_synth 4 2
	nl="$(printf 'a\nb')"
	expect_status 3 "$MOO" "$nl.cow" new.img
	grep -qF 'a\nb.cow' err.txt || fail "newline not escaped: $(cat err.txt)"
	# A touched backing: the suggested command quotes the COW's name.
	cp -p c.cow "it's $nl.cow"
	touch master.img
	expect_status 4 "$MOO" "it's $nl.cow" new.img
	grep -qF "uml_mkcow --rebase BACKING \$'it\\'s a\\nb.cow'" err.txt ||
		fail "command not quoted: $(cat err.txt)"
	touch -r master.orig master.img
	# A name past the library's 512-byte messages: the reason survives.
	long=$(printf '%0200d' 0)
	long="$long/$long/$long"
	mkdir -p "$long"
	cp c.cow "$long/c.cow" && truncate -s 5000 "$long/c.cow"
	expect_status 3 "$MOO" "$long/c.cow" new.img
	grep -q 'bitmap' err.txt || fail "reason lost: $(cat err.txt)"
	# Not UTF-8: the byte as its Latin-1 character, as every tool writes it.
	bad="$(printf 'x\377y')"
	cp -p c.cow "$bad.cow"
	expect_status 0 "$MOO" -q --json "$bad.cow" new.img
	python3 -c 'import json,sys; d=json.load(open("out.txt")); assert d["cow"] == "x\u00ffy.cow", d' ||
		fail "--json: $(cat out.txt)"
}

run_test t_hostile_names
