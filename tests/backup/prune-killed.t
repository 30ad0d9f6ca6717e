#!/bin/sh
# A prune killed at any unlink, rmdir or rename (strace kills it at the
# Nth call of one) leaves a chain that verify accepts, each point
# restoring to the bytes it did before; prune run again finishes the job.
. "$(dirname "$0")/functions.sh"

t_prune_killed() {
	command -v strace >/dev/null || skip "no strace"
	strace -f -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	offline_chain "$T/chain" 4
	mkdir "$T/ref" "$T/got"
	restore_points "$T/chain" "$T/ref"
	calls="unlink unlinkat rmdir rename renameat renameat2"
	# Where a whole prune can be killed: each call it makes.
	cp -a "$T/chain" "$T/c"
	strace -f -o "$T/calls.txt" -e trace="$(echo $calls | tr ' ' ,)" "$BK" -q prune --keep 2 "$T/c" ||
		fail "prune under strace failed"
	kills=0
	for sc in $calls; do
		n=$(grep -c "^[0-9]* *$sc(" "$T/calls.txt")
		k=1
		while [ $k -le "$n" ]; do
			at="killed at $sc call $k: "
			rm -rf "$T/c"
			cp -a "$T/chain" "$T/c"
			strace -f -o /dev/null -e trace=$sc -e inject=$sc:signal=SIGKILL:when=$k \
				"$BK" -q prune --keep 2 "$T/c" >/dev/null 2>&1 && fail "${at}prune was not killed"
			"$BK" -q verify "$T/c" >out.txt 2>err.txt || fail "${at}verify: $(cat err.txt)"
			restore_points "$T/c" "$T/got" "$at"
			for p in $(points "$T/c"); do
				cmp -s "$T/got/$p.cow" "$T/ref/$p.cow" || fail "${at}point $p restores other bytes"
			done
			"$BK" -q prune --keep 2 "$T/c" 2>err.txt || fail "${at}prune again: $(cat err.txt)"
			[ "$(points "$T/c" | tr '\n' ' ')" = "$(points "$T/chain" | tail -n 2 | tr '\n' ' ')" ] &&
				[ "$(ls -A "$T/c" | wc -l)" = 2 ] || fail "${at}after prune again: $(ls -A "$T/c")"
			"$BK" -q verify "$T/c" >out.txt 2>err.txt || fail "${at}verify after prune again: $(cat err.txt)"
			restore_points "$T/c" "$T/got" "$at"
			for p in $(points "$T/c"); do
				cmp -s "$T/got/$p.cow" "$T/ref/$p.cow" || fail "${at}point $p restores other bytes after prune again"
			done
			kills=$((kills + 1))
			k=$((k + 1))
		done
	done
	echo "killed at $kills places"
	[ "$kills" -ge 8 ] || fail "only $kills places to kill prune at: $(cat "$T/calls.txt")"
}

run_test t_prune_killed
