#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_guest_files() {
	make_master
	guest_run "$T/guest.cow" "$GUEST_OPS"
	expect_status 0 "$IS" --files guest.cow
	changes out.txt >got.txt
	expected_changes >want.txt
	same_lines got.txt want.txt "--files does not report exactly the guest's changes"
	grep -q '^  M /data/blob.bin .*; 5 blocks differ)' out.txt ||
		fail "blob.bin: 5 rewritten blocks expected: $(grep blob out.txt)"
	grep -q '^  M /data/shrink.bin .*size 100000 -> 5000' out.txt || fail "shrink size"
	grep -q '5 added, 5 deleted, 8 modified, 3 renamed' out.txt || fail "summary: $(tail -n 2 out.txt)"
	grep -q 'unexplained 0)' out.txt || fail "unexplained COW blocks: $(tail -n 1 out.txt)"
	# The same in JSON, with its documented keys.
	expect_status 0 "$IS" --files --json guest.cow
	json_ok out.txt 1
	if command -v python3 >/dev/null; then
		[ "$(jget out.txt files.summary.added)" = 5 ] || fail "json added"
		[ "$(jget out.txt files.summary.renamed)" = 3 ] || fail "json renamed"
		[ "$(jget out.txt files.filesystem.type)" = ext4 ] || fail "json type"
		[ "$(jget out.txt files.cow_blocks.unexplained)" = 0 ] || fail "json unexplained"
		python3 - out.txt <<'EOF' || fail "json changes"
import json, sys
d = json.loads(open(sys.argv[1]).readline())
ch = {c["path"]: c for c in d["files"]["changes"]}
assert ch["/etc/moved.txt"]["change"] == "renamed" and ch["/etc/moved.txt"]["from"] == "/data/move-me.txt"
assert ch["/link"]["type"] == "symlink" and ch["/newdir"]["type"] == "dir"
assert ch["/data/blob.bin"]["fields"] == ["content", "mtime", "ctime"]
assert ch["/data/blob.bin"]["changed_blocks"] == 5
assert ch["/data/grow.log"]["size_before"] < ch["/data/grow.log"]["size"]
assert ch["/data/old.bin"]["change"] == "deleted" and ch["/data/old.bin"]["size"] == 200000
for c in d["files"]["changes"]:
    assert set(c) >= {"change", "path", "type", "ino", "size"}, c
EOF
	fi
	# A second guest on the same COW: the changes add up.
	guest_run "$T/guest.cow" 'rm -rf newdir; mv project proj2; echo again >>new.txt'
	expect_status 0 "$IS" --files guest.cow
	changes out.txt >got2.txt
	expected_changes | sed -e '/newdir/d' -e 's|/project/|/proj2/|' \
		-e 's|^M /new.txt.*||' -e 's|^A /new.txt$|A /new.txt|' | sed '/^$/d' | sort >want2.txt
	same_lines got2.txt want2.txt "after the second guest"
	# The kernel-written COW is consistent; the stat describes it.
	expect_status 0 "$IS" --check guest.cow
	grep -q 'check: clean' out.txt || fail "check: $(cat out.txt)"
	expect_status 0 "$IS" guest.cow
	grep -q 'UML COW file, version 3' out.txt || fail "layout line"
	grep -q 'status: ok' out.txt || fail "backing status"
	grep -q 'signature: ext4' out.txt || fail "content: $(cat out.txt)"
	grep -q 'label: master' out.txt || fail "label"
	grep -q "sectors in the COW: $(info_get guest.cow cow_sectors)\$" out.txt ||
		fail "sector count differs from cowutil's"
	grep -q "runs: $("$COWUTIL" runs guest.cow | wc -l)\$" out.txt || fail "run count"
	grep -q 'last mounted on: /mnt' out.txt || fail "ext details of the merged view"
	# The backing file itself says nothing about the guest.
	expect_status 0 "$IS" master.img
	grep -q 'last mount: 0 (never)' out.txt || fail "master was never mounted"
	[ "$(mtime_of master.img)" = "$(date -d '2021-03-03 03:03:03' +%s)" ] ||
		fail "uml_imgstat changed the master's mtime"
}

run_test t_guest_files
