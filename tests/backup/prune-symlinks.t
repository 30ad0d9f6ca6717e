#!/bin/sh
# prune never follows a symbolic link: a stray .prune-* link, or a point
# it would remove or rewrite (the oldest, the first kept) that is a link,
# is refused in one line (exit 8) before anything is removed or swapped;
# the links' targets and the chain stay as they were.
. "$(dirname "$0")/functions.sh"

t_prune_symlinks() {
	offline_chain "$T/chain" 3
	set -- $(points "$T/chain")
	mkdir "$T/victim"
	cp "$T/chain/$1"/* "$T/victim/"
	echo "not a backup" >"$T/victim/NOTES.txt"
	ln -s "$T/victim" "$T/chain/.prune-x"
	sums=$(tree_sums "$T/chain" "$T/victim")
	for k in 3 1; do
		expect_status 8 "$BK" prune --keep $k "$T/chain"
		err_has ".prune-x: a symbolic link"
		[ "$sums" = "$(tree_sums "$T/chain" "$T/victim")" ] || fail "prune --keep $k changed files"
	done
	rm "$T/chain/.prune-x"
	# The oldest point (--keep 1 removes it), then the first kept one
	# (--keep 2 rewrites it), moved to an archive and linked back.
	mkdir "$T/archive"
	for pk in "$1 1" "$2 2"; do
		set -- $pk
		mv "$T/chain/$1" "$T/archive/$1"
		echo "not a backup" >"$T/archive/$1/NOTES.txt"
		ln -s "$T/archive/$1" "$T/chain/$1"
		sums=$(tree_sums "$T/chain" "$T/archive")
		expect_status 8 "$BK" prune --keep "$2" "$T/chain"
		err_has "$1: a symbolic link"
		[ "$sums" = "$(tree_sums "$T/chain" "$T/archive")" ] || fail "prune --keep $2 changed files"
		rm "$T/chain/$1" "$T/archive/$1/NOTES.txt"
		mv "$T/archive/$1" "$T/chain/$1"
	done
	# A directory put in a point it would remove: refused the same way
	# (prune never descends; it stopped half way, exit 1, every run after).
	mkdir "$T/chain/$1/sub" && touch "$T/chain/$1/sub/z"
	sums=$(tree_sums "$T/chain")
	expect_status 8 "$BK" prune --keep 1 "$T/chain"
	err_has "$1: holds a directory, sub (a point holds files only); nothing removed"
	[ "$sums" = "$(tree_sums "$T/chain")" ] || fail "prune changed files beside a directory"
	rm -r "$T/chain/$1/sub"
	# Without linked points it prunes; a link among a point's files goes,
	# not its target.
	ln -s "$T/victim/NOTES.txt" "$T/chain/$1/NOTES.txt"
	sums=$(tree_sums "$T/victim")
	expect_status 0 "$BK" prune --keep 1 "$T/chain"
	[ "$(points "$T/chain" | wc -l)" = 1 ] && [ "$(ls -A "$T/chain" | wc -l)" = 1 ] ||
		fail "after prune: $(ls -A "$T/chain")"
	[ "$sums" = "$(tree_sums "$T/victim")" ] || fail "prune changed a link's target"
	expect_status 0 "$BK" verify "$T/chain"
}

run_test t_prune_symlinks
