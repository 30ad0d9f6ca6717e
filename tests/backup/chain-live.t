#!/bin/sh
# A chain of a full point and three incrementals taken while the guest
# writes records, with Debian's linux.uml (no tracking in its kernel: the
# comparison source).  Each point restored holds every record written
# before its backup started and none written after it returned; verify
# passes; prune keeps the newest two, byte-equal to before.
. "$(dirname "$0")/functions.sh"

t_chain_live() {
	trap on_exit EXIT
	make_disk disk 64
	start_guest gc ubda="$T/disk.cow,$T/disk.img"
	i=0
	while [ $i -lt 4 ]; do
		i=$((i + 1))
		eval "before$i=$(last_rec gc)"
		expect_status 0 "$BK" --incremental -j -u "$T/uml" gc "$T/chain"
		eval "after$i=$(last_rec gc)"
		cat err.txt
		kind=$(json_str out.txt kind)
		if [ $i = 1 ]; then
			[ "$kind" = full ] || fail "point 1: kind $kind"
			grep -q "full (the chain had no point)" err.txt || fail "summary: $(cat err.txt)"
		else
			[ "$kind" = incremental ] || fail "point $i: kind $kind"
			[ "$(json_str out.txt changes)" = comparison ] || fail "point $i: changes $(json_str out.txt changes)"
			grep -q '"changes_note": "the kernel has no changed-block tracking"' out.txt || fail "point $i: no note on why: $(json_str out.txt changes_note)"
			grep -q '"parent": {"point": "[0-9a-f]\{32\}", "dir": "[0-9T.Z]*"}' out.txt ||
				fail "point $i: parent entry: $(grep parent out.txt)"
		fi
		echo "point $i: pause $(json_num out.txt pause_ms) ms, stored $(json_num out.txt stored_bytes) bytes"
		# Without sleeping: a few more records before the next point.
		wait_records gc $(($(last_rec gc) + 3)) 60 || fail "guest gc stopped writing"
	done
	assert_running gc "after four chain points"
	stop_guest gc
	trap - EXIT
	[ "$(points "$T/chain" | wc -l)" = 4 ] || fail "points: $(ls "$T/chain")"
	expect_status 0 "$BK" verify "$T/chain"
	i=0
	for p in $(points "$T/chain"); do
		i=$((i + 1))
		expect_status 0 "$BK" restore "$T/chain/$p/ubd0.ubdx" "$T/r$i.cow"
		grep -q "chunk table matches" err.txt || fail "restore $i: $(cat err.txt)"
		eval "b=\$before$i a=\$after$i"
		c=$(merged_check "$T/r$i.cow" "$b")
		echo "point $i: $c records (written before: $b, when it returned: $a)"
		[ "$c" -le $((a + 1)) ] || fail "point $i holds $c records, more than the $a written when it returned"
	done
	# Retention: keep two; they restore to the same bytes; verify passes.
	expect_status 0 "$BK" prune --keep 2 "$T/chain"
	[ "$(points "$T/chain" | wc -l)" = 2 ] || fail "after prune: $(ls -A "$T/chain")"
	[ -z "$(ls -A "$T/chain" | grep '^\.')" ] || fail "prune left hidden files: $(ls -A "$T/chain")"
	expect_status 0 "$BK" verify "$T/chain"
	i=2
	for p in $(points "$T/chain"); do
		i=$((i + 1))
		expect_status 0 "$BK" restore "$T/chain/$p/ubd0.ubdx" "$T/p$i.cow"
		cmp "$T/p$i.cow" "$T/r$i.cow" || fail "point $i restored after prune differs"
	done
	grep -q '"kind": "full"' "$T/chain/$(points "$T/chain" | head -n 1)/manifest.json" ||
		fail "the oldest kept point is not full after prune"
}

run_test t_chain_live
