#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_output_errors() {
	make_synth 8 6
	before=$(snap master.img c.cow)
	expect_status 1 "$MOO" c.cow nodir/new.img
	err_names nodir/new.img
	# RLIMIT_FSIZE below the image size: a clean error, not SIGXFSZ.
	(ulimit -f 2048 && exec "$MOO" c.cow new.img) >out.txt 2>err.txt
	st=$?
	[ $st = 1 ] || fail "past RLIMIT_FSIZE: exit $st, expected 1: $(cat err.txt)"
	[ "$(wc -l <err.txt)" = 1 ] || fail "not one line: $(cat err.txt)"
	err_names new.img
	grep -q 'File too large' err.txt || fail "$(cat err.txt)"
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
	only_files . master.img master.orig c.cow c.orig exp.img out.txt err.txt
	# A full filesystem.
	if [ "$(id -u)" != 0 ]; then
		skip "not root: the full-filesystem case needs a tmpfs"
	fi
	mkdir full
	mount -t tmpfs -o size=2m tmpfs full || skip "cannot mount a tmpfs"
	"$MOO" c.cow full/new.img >out.txt 2>err.txt
	st=$?
	left=$(ls -A full)
	umount full
	[ $st = 1 ] || fail "full filesystem: exit $st, expected 1: $(cat err.txt)"
	[ "$(wc -l <err.txt)" = 1 ] || fail "not one line: $(cat err.txt)"
	err_names full/new.img
	grep -q 'No space left' err.txt || fail "$(cat err.txt)"
	[ -z "$left" ] || fail "left on the full filesystem: $left"
	[ "$(snap master.img c.cow)" = "$before" ] || fail "an input changed"
}

run_test t_output_errors
