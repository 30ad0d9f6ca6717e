#!/bin/sh
# Tests of uml_imgstat through its command line: --files on COW files
# written by real linux.uml guests that create, modify, grow, truncate,
# rename and delete known files in ext4 (and one that does not unmount);
# --check on each kind of damage; --map against the bitmap; stat of every
# COW layout, of backing mismatches, of raw images with no filesystem, a
# partition table, swap and vfat, and of a pair's merged view; JSON; bad
# input.
#   tests/imgstat/run.sh BUILD_DIR [t_NAME...]
set -u

SUITE=imgstat
. "$(dirname "$0")/../lib/runner.sh"

IS=$B/bin/uml_imgstat
COWUTIL=$B/tests/cowutil
MKCOW=$B/bin/uml_mkcow
MiB=1048576

# --- helpers -----------------------------------------------------------------

# The changes of `uml_imgstat --files` (text) as "KIND PATH [fields]" lines,
# sorted: "M /etc/app.conf content,mtime,ctime", "R /a -> /b", "A /new.txt".
changes() {
	awk '/^  [ADMR] / {
		line = substr($0, 5); kind = substr($0, 3, 1)
		i = index(line, "  (")
		path = i ? substr(line, 1, i - 1) : line
		if (kind == "M" || (kind == "R" && i)) {
			f = substr(line, i + 3); j = index(f, ";"); if (!j) j = index(f, ")")
			print kind " " path " " substr(f, 1, j - 1)
		} else
			print kind " " path
	}' "$1" | sort
}

# Compare two files of lines, failing with both shown.
same_lines() {
	cmp -s "$1" "$2" && return 0
	echo "--- expected ($2)" >&2; cat "$2" >&2
	echo "--- got ($1)" >&2; cat "$1" >&2
	diff "$2" "$1" >&2
	fail "$3"
}

# Every line of a JSON Lines file parses (when python3 is here).
json_ok() {
	command -v python3 >/dev/null || return 0
	python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    json.loads(line); n += 1
assert n == int(sys.argv[2]), "%d documents, expected %s" % (n, sys.argv[2])
' "$1" "$2" || fail "invalid JSON in $1: $(head -c 400 "$1")"
}

# Value of a JSON key path (a.b.c, numeric indices allowed) in line 1.
jget() {
	python3 -c '
import json, sys
v = json.loads(open(sys.argv[1]).readline())
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(json.dumps(v) if isinstance(v, (dict, list)) or v is None or isinstance(v, bool) else v)
' "$1" "$2"
}

need_python() { command -v python3 >/dev/null || skip "no python3"; }

# Write into COW the 4 KiB blocks where NEW differs from OLD (the COW's
# merged view): a guest's writes, synthesized.
#   cow_sync COW OLD NEW
cow_sync() {
	cmp -l "$2" "$3" | awk '{ print int(($1 - 1) / 4096) }' | uniq |
	while read -r _cs_b; do
		dd if="$3" of="$T/blk" bs=4096 skip="$_cs_b" count=1 status=none
		"$COWUTIL" write "$1" $((_cs_b * 4096)) "$T/blk" || fail "cowutil write"
	done
	rm -f "$T/blk"
}

# The ext4 master of the guest tests, with known files; mtime in the past.
make_master() {
	d=$T/tree
	mkdir -p "$d/etc" "$d/data" "$d/docs/sub" "$d/proj/src" "$d/unchanged"
	echo "hello from the master" >"$d/hello.txt"
	echo "version=1" >"$d/etc/app.conf"
	echo "keep me" >"$d/etc/keep.conf"
	printf 'a=1\nb=2\n' >"$d/etc/sed.conf"
	head -c 300000 /dev/urandom >"$d/data/blob.bin"
	head -c 200000 /dev/urandom >"$d/data/old.bin"
	seq 1 1000 >"$d/data/grow.log"
	head -c 100000 /dev/urandom >"$d/data/shrink.bin"
	echo "rename me" >"$d/data/rename-me.txt"
	echo "move me" >"$d/data/move-me.txt"
	echo "doc a" >"$d/docs/a.txt"
	echo "doc b" >"$d/docs/sub/b.txt"
	echo "int main(void) { return 0; }" >"$d/proj/src/main.c"
	echo "a project" >"$d/proj/README"
	printf '#!/bin/sh\necho hi\n' >"$d/perm.sh"
	chmod 644 "$d/perm.sh"
	i=0
	while [ $i -lt 50 ]; do echo "file $i" >"$d/unchanged/f$i"; i=$((i + 1)); done
	mkfs.ext4 -q -F -b 4096 -L master -d "$d" "$T/master.img" 64M >/dev/null ||
		fail "mkfs.ext4"
	rm -rf "$d"
	touch -d '2021-03-03 03:03:03' "$T/master.img"
}

# Boot a guest on ubda=$1 (COW, created by the kernel), $T/master.img,
# running the shell lines in $2 on the filesystem mounted at /mnt.
guest_run() {
	{
		guest_prologue
		echo 'mount /dev/ubda /mnt || echo "GUEST-ERROR mount"'
		echo 'cd /mnt || echo "GUEST-ERROR cd"'
		printf '%s\n' "$2"
		echo 'cd /'
		echo 'umount /mnt && echo "GUEST-DONE"'
		echo 'sync'
		echo 'poweroff -f'
	} >"$T/init.sh"
	uml_boot "is$$" "$T/init.sh" "$T/guest.log" ubda="$1,$T/master.img"
	grep -q GUEST-DONE "$T/guest.log" && ! grep -q GUEST-ERROR "$T/guest.log" ||
		{ cat "$T/guest.log" >&2; fail "guest"; }
}

# The file operations of the main guest, and what --files must report.
GUEST_OPS='
set -e
echo "written by the guest" >new.txt
mkdir newdir && echo x >newdir/x.txt
ln -s hello.txt link
ln etc/keep.conf etc/keep.hard
echo "version=2" >etc/app.conf
sed -i "s/b=2/b=3/" etc/sed.conf
dd if=/dev/urandom of=data/blob.bin bs=4096 seek=10 count=5 conv=notrunc 2>/dev/null
rm data/old.bin
seq 1001 2000 >>data/grow.log
truncate -s 5000 data/shrink.bin
mv data/rename-me.txt data/renamed.txt
mv data/move-me.txt etc/moved.txt
rm -rf docs
mv proj project && echo "/* more */" >>project/src/main.c
chmod 755 perm.sh
set +e
'

expected_changes() {
	cat <<'EOF' | sort
A /etc/keep.hard
A /link
A /new.txt
A /newdir/
A /newdir/x.txt
D /data/old.bin
D /docs/
D /docs/a.txt
D /docs/sub/
D /docs/sub/b.txt
M /data/blob.bin content,mtime,ctime
M /data/grow.log size,mtime,ctime
M /data/shrink.bin size,mtime,ctime
M /etc/app.conf content,mtime,ctime
M /etc/keep.conf ctime,links
M /etc/sed.conf content,mtime,ctime,replaced
M /perm.sh mode,ctime
M /project/src/main.c size,mtime,ctime
R /data/move-me.txt -> /etc/moved.txt
R /data/rename-me.txt -> /data/renamed.txt
R /proj/ -> /project/
EOF
}

# --- real guests -------------------------------------------------------------

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

t_guest_unclean() {
	make_master
	guest_prologue >"$T/init.sh"
	cat >>"$T/init.sh" <<'EOS'
mount /dev/ubda /mnt || echo "GUEST-ERROR mount"
echo "not unmounted" >/mnt/dirty.txt
sync
echo GUEST-DONE
poweroff -f
EOS
	uml_boot "isu$$" "$T/init.sh" "$T/guest.log" ubda="$T/guest.cow,$T/master.img"
	grep -q GUEST-DONE guest.log || { cat guest.log >&2; fail "guest"; }
	expect_status 0 "$IS" --json guest.cow
	json_ok out.txt 1
	if command -v python3 >/dev/null; then
		[ "$(jget out.txt content.ext.needs_recovery)" = true ] ||
			fail "needs_recovery not reported"
	fi
	expect_status 0 "$IS" --files guest.cow
	grep -q 'journal needs recovery' out.txt || fail "no warning: $(cat out.txt)"
}

# --- without booting -----------------------------------------------------------

# A file system change made with debugfs and written into a COW in place
# of a guest; the filesystem sits in a partition.
t_files_in_partition() {
	truncate -s 32M disk.img
	printf 'label: dos\nstart=2048, size=40960, type=83\nstart=43008, type=82\n' |
		sfdisk -q disk.img || fail "sfdisk"
	mkdir -p tree/etc && echo host >tree/etc/hostname && echo old >tree/old.txt
	mkfs.ext4 -q -F -b 4096 -L inpart -E offset=1048576 -d tree disk.img 20M ||
		fail "mkfs.ext4 with offset"
	"$MKCOW" c.cow disk.img || fail "uml_mkcow"
	cp disk.img work.img
	echo "new file" >new.txt
	debugfs -w -R "write new.txt new.txt" "work.img?offset=1048576" >/dev/null 2>&1
	debugfs -w -R "rm old.txt" "work.img?offset=1048576" >/dev/null 2>&1
	cow_sync c.cow disk.img work.img
	"$COWUTIL" merged c.cow view.img && cmp view.img work.img || fail "cow_sync"
	expect_status 0 "$IS" --files c.cow
	changes out.txt >got.txt
	printf 'A /new.txt\nD /old.txt\n' >want.txt
	same_lines got.txt want.txt "--files in a partition"
	grep -q 'at offset 1048576' out.txt || fail "offset not named"
	# No change at all: nothing reported.
	"$MKCOW" fresh.cow disk.img
	expect_status 0 "$IS" --files fresh.cow
	[ -z "$(changes out.txt)" ] || fail "changes in a fresh COW: $(cat out.txt)"
	grep -q '0 added, 0 deleted, 0 modified, 0 renamed' out.txt || fail "summary"
}

# Data rewritten in place with the inode untouched (as a crash between
# data and inode writes leaves it): found by the owner scan.
t_files_data_only_change() {
	mkdir tree && head -c 40960 /dev/urandom >tree/f.bin && echo same >tree/g.txt
	mkfs.ext4 -q -F -b 4096 -d tree m.img 16M || fail mkfs
	"$MKCOW" c.cow m.img
	blk=$(debugfs -R "bmap /f.bin 3" m.img 2>/dev/null)
	[ -n "$blk" ] || fail "bmap"
	head -c 4096 /dev/urandom >b.bin
	"$COWUTIL" write c.cow $((blk * 4096)) b.bin || fail "cowutil write"
	expect_status 0 "$IS" --files c.cow
	changes out.txt >got.txt
	echo "M /f.bin content" >want.txt
	same_lines got.txt want.txt "data-only change"
	grep -q '1 block differs' out.txt || fail "block count"
	# The same bytes written again: no change.
	"$MKCOW" -f c2.cow m.img
	dd if=m.img of=b.bin bs=4096 skip="$blk" count=1 status=none
	"$COWUTIL" write c2.cow $((blk * 4096)) b.bin
	expect_status 0 "$IS" --files c2.cow
	[ -z "$(changes out.txt)" ] || fail "identical rewrite reported: $(cat out.txt)"
}

# The guest made a new filesystem on an empty disk: everything is added.
t_files_new_filesystem() {
	truncate -s 16M empty.img
	"$MKCOW" c.cow empty.img
	mkdir -p tree/etc && echo x >tree/etc/x.conf && ln -s etc/x.conf tree/l
	cp empty.img work.img
	mkfs.ext4 -q -F -b 4096 -d tree work.img || fail mkfs
	cow_sync c.cow empty.img work.img
	expect_status 0 "$IS" --files c.cow
	changes out.txt >got.txt
	printf 'A /etc/\nA /etc/x.conf\nA /l\nA /lost+found/\n' >want.txt
	same_lines got.txt want.txt "new filesystem"
	grep -q 'the backing file holds no such filesystem' out.txt || fail "$(cat out.txt)"
}

t_files_refused() {
	truncate -s 8M raw.img
	expect_status 2 "$IS" --files raw.img
	grep -q 'raw.img: not a COW file' err.txt || fail "$(cat err.txt)"
	mkswap raw.img >/dev/null 2>&1 || fail mkswap
	"$MKCOW" c.cow raw.img
	expect_status 2 "$IS" --files c.cow
	grep -q 'no ext2/3/4 filesystem (swap)' err.txt || fail "$(cat err.txt)"
	rm raw.img
	expect_status 2 "$IS" --files c.cow
	grep -q 'c.cow: the backing file cannot be opened' err.txt || fail "$(cat err.txt)"
}

# --- damaged filesystems ---------------------------------------------------------

# Run uml_imgstat ARGS and expect status $1 (expect_status), then the same
# under AddressSanitizer when UBDK_ASAN_BIN names such a build of it (make
# check-imgstat builds one): the same status, nothing reported.
expect_files() {
	_ef_want=$1
	shift
	expect_status "$_ef_want" "$IS" "$@"
	[ "$_ef_want" = 0 ] && [ -s err.txt ] && fail "stderr not empty: $(cat err.txt)"
	if [ -z "${UBDK_ASAN_BIN:-}" ]; then
		echo "SKIP: no ASan build of uml_imgstat (UBDK_ASAN_BIN): not run under ASan"
		return 0
	fi
	[ -x "$UBDK_ASAN_BIN" ] || fail "UBDK_ASAN_BIN=$UBDK_ASAN_BIN: not an executable"
	ASAN_OPTIONS=detect_leaks=1 "$UBDK_ASAN_BIN" "$@" >asan-out.txt 2>asan-err.txt
	_ef_got=$?
	grep -q 'Sanitizer\|runtime error' asan-err.txt &&
		fail "ASan: $(head -n 20 asan-err.txt)"
	[ "$_ef_got" = "$_ef_want" ] ||
		fail "ASan build exited $_ef_got: $(cat asan-err.txt)"
	cmp -s asan-out.txt out.txt || fail "ASan build wrote other output"
	sed "s/^${UBDK_ASAN_BIN##*/}:/uml_imgstat:/" asan-err.txt | cmp -s - err.txt ||
		fail "ASan build wrote other errors: $(cat asan-err.txt)"
}

# Write bytes (printf escapes) at an offset of a file, in place.
poke() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

# Write into COW the 512-byte sectors where NEW differs from OLD.
cow_sync_sectors() {
	cmp -l "$2" "$3" | awk '{ print int(($1 - 1) / 512) }' | uniq |
	while read -r _cs_s; do
		dd if="$3" of="$T/sec" bs=512 skip="$_cs_s" count=1 status=none
		"$COWUTIL" write "$1" $((_cs_s * 512)) "$T/sec" || fail "cowutil write"
	done
	rm -f "$T/sec"
}

# A healthy 1 KiB-block ext4 whose superblock block the guest rewrote
# (with 4 KiB writes): nothing on stderr.
t_files_1k_blocks_quiet() {
	mkdir -p tree/d && echo a >tree/d/a.txt
	mkfs.ext4 -q -F -b 1024 -N 64 -d tree m.img 2M 2>/dev/null || fail mkfs
	"$MKCOW" c.cow m.img
	cp m.img w.img
	debugfs -w -R "mkdir new" w.img >/dev/null 2>&1
	cow_sync c.cow m.img w.img
	expect_files 0 --files c.cow
	[ "$(changes out.txt)" = "A /new/" ] || fail "$(cat out.txt)"
}

# A directory entry in the backing file names an inode past the last one,
# in a directory the guest renamed.
t_files_damaged_entry_inode() {
	mkdir -p tree/d && echo a >tree/d/a.txt && echo b >tree/d/b.txt
	mkfs.ext4 -q -F -b 4096 -N 64 -O ^metadata_csum -d tree m.img 8M 2>/dev/null || fail mkfs
	blk=$(debugfs -R "blocks /d" m.img 2>/dev/null | tr -d ' ')
	off=$(dd if=m.img bs=4096 skip="$blk" count=1 status=none |
		grep -obUa 'a\.txt' | head -n 1 | cut -d: -f1)
	[ -n "$blk" ] && [ -n "$off" ] || fail "no entry a.txt in /d"
	# The entry's inode field is 8 bytes before its name.
	poke m.img $((blk * 4096 + off - 8)) '\377\377\377\017'
	"$MKCOW" c.cow m.img
	cp m.img w.img
	debugfs -w -R "ln d e" w.img >/dev/null 2>&1
	debugfs -w -R "unlink d" w.img >/dev/null 2>&1
	cow_sync c.cow m.img w.img
	expect_files 2 --files c.cow
	grep -q '^uml_imgstat: c.cow: filesystem damaged: .*inode 268435455' err.txt ||
		fail "$(cat err.txt)"
}

# One sector written through the COW sets s_first_data_block to 148 on a
# 1 KiB-block ext4: the superblock checksum refuses it, and without the
# checksum the field itself does.
t_files_damaged_superblock() {
	mkdir -p tree/d && echo a >tree/d/a.txt
	mkfs.ext4 -q -F -b 1024 -N 64 -d tree m.img 2M 2>/dev/null || fail mkfs
	"$MKCOW" c.cow m.img
	cp m.img w.img
	poke w.img $((1024 + 20)) '\224'
	cow_sync_sectors c.cow m.img w.img
	expect_files 2 --files c.cow
	grep -q '^uml_imgstat: c.cow: filesystem damaged: the merged view: .*checksum' err.txt ||
		fail "$(cat err.txt)"
	expect_files 2 --files --ignore-checksums c.cow
	grep -q '^uml_imgstat: c.cow: filesystem damaged: the merged view: the first data block is 148, not 1$' err.txt ||
		fail "$(cat err.txt)"
	expect_status 2 "$IS" --ignore-checksums c.cow
	grep -q 'goes with --files' err.txt || fail "$(cat err.txt)"
}

# One byte of an inode table flipped (an extent header) in a file with an
# xattr block, while the guest changed another file's data only: the owner
# scan meets the broken inode, and frees what it read of it.
t_files_damaged_inode() {
	mkdir tree && echo x >tree/x.txt && head -c 40960 /dev/urandom >g.bin
	mkfs.ext4 -q -F -b 4096 -N 64 -O ^metadata_csum -d tree m.img 8M 2>/dev/null || fail mkfs
	head -c 3000 /dev/zero | tr '\0' v >val
	debugfs -w -R "ea_set -f val /x.txt user.big" m.img >/dev/null 2>&1
	debugfs -w -R "write g.bin g.bin" m.img >/dev/null 2>&1
	ino=$(debugfs -R "stat /x.txt" m.img 2>/dev/null | sed -n 's/^Inode: \([0-9]*\).*/\1/p')
	itab=$(dumpe2fs m.img 2>/dev/null | sed -n 's/.*Inode table at \([0-9]*\)-.*/\1/p' | head -n 1)
	isz=$(dumpe2fs -h m.img 2>/dev/null | sed -n 's/^Inode size:[ \t]*//p')
	[ -n "$ino" ] && [ -n "$itab" ] && [ -n "$isz" ] || fail "debugfs/dumpe2fs"
	debugfs -R "stat /x.txt" m.img 2>/dev/null | grep -q 'File ACL: [1-9]' ||
		fail "no xattr block"
	# i_block starts at byte 40: the low byte of the extent magic.
	poke m.img $((itab * 4096 + (ino - 1) * isz + 40)) '\000'
	"$MKCOW" c.cow m.img
	blk=$(debugfs -R "bmap /g.bin 3" m.img 2>/dev/null)
	head -c 4096 /dev/urandom >b.bin
	"$COWUTIL" write c.cow $((blk * 4096)) b.bin || fail "cowutil write"
	expect_files 0 --files c.cow
	[ "$(changes out.txt)" = "M /g.bin content" ] || fail "$(cat out.txt)"
}

# --- --check ---------------------------------------------------------------------

# A COW with data at known places: c.cow on back.img (8 MiB).
make_pair() {
	randfile back.img $((8 * MiB))
	touch -d '2020-02-02 02:02:02' back.img
	"$MKCOW" c.cow back.img || fail "uml_mkcow"
	for off in 0 4096 1048576 5242880 $((8 * MiB - 512)); do
		randfile chunk 512
		"$COWUTIL" write c.cow "$off" chunk || fail "cowutil write"
	done
	cp -p --sparse=always c.cow c.orig
}

check_finds() {
	expect_status 1 "$IS" --check c.cow
	grep -q "error $1:" out.txt || fail "no '$1' error: $(cat out.txt)"
	cp -p --sparse=always c.orig c.cow
}

t_check_damage() {
	make_pair
	do=$(info_get c.cow data_offset)
	bo=$(info_get c.cow bitmap_offset)
	bl=$(info_get c.cow bitmap_len)
	expect_status 0 "$IS" --check c.cow
	grep -q 'c.cow: check: clean' out.txt || fail "not clean: $(cat out.txt)"
	# The bitmap truncated.
	truncate -s $((bo + bl / 2)) c.cow
	check_finds short-bitmap
	# A bit past the end of the device (8 MiB = 16384 sectors: bit 16390).
	put_int c.cow $((bo + 16390 / 8)) $((1 << (16390 % 8))) 1 le
	check_finds bits-past-end
	# Header fields.
	put_int c.cow 4 7 4 be
	check_finds bad-version
	put_int c.cow 20 3 4 be
	check_finds bad-sectorsize
	put_int c.cow 24 0 4 be
	check_finds bad-alignment
	put_int c.cow 28 1 4 be
	check_finds bad-cow-format
	head -c 4096 /dev/zero | tr '\0' x | dd of=c.cow bs=1 seek=32 conv=notrunc status=none
	check_finds backing-unterminated
	put_int c.cow 12 $((8 * MiB + 4096)) 8 be
	check_finds size-mismatch
	put_int c.cow 8 12345 4 be
	check_finds mtime-mismatch
	grep -q "uml_mkcow --rebase $T/back.img c.cow" out.txt || fail "no fix command"
	# The data of set sectors cut off.
	truncate -s $((do + 2 * MiB)) c.cow
	check_finds short-data
	# The COW names itself.
	"$IS" --check -b c.cow c.cow >out.txt 2>err.txt
	grep -q 'error backing-is-self' out.txt || fail "self: $(cat out.txt)"
	# The backing file gone.
	mv back.img gone.img
	check_finds backing-missing
	mv gone.img back.img
	# Data stored for sectors whose bit is clear: a warning (--strict: 1).
	randfile chunk 8192
	dd if=chunk of=c.cow bs=4096 seek=$((do / 4096 + 100)) conv=notrunc status=none
	expect_status 0 "$IS" --check c.cow
	grep -q 'warning unmapped-data: 8192 bytes' out.txt || fail "unmapped data: $(cat out.txt)"
	expect_status 1 "$IS" --check --strict c.cow
	cp -p --sparse=always c.orig c.cow
	# JSON form.
	truncate -s $((bo + 10)) c.cow
	expect_status 1 "$IS" --check --json c.cow
	json_ok out.txt 1
	if command -v python3 >/dev/null; then
		[ "$(jget out.txt check.status)" = problems ] || fail "json status"
		[ "$(jget out.txt check.findings.0.code)" = short-bitmap ] || fail "json code"
		[ "$(jget out.txt check.findings.0.severity)" = error ] || fail "json severity"
	fi
	# Could not check: not a COW, missing.
	expect_status 2 "$IS" --check back.img
	grep -q 'back.img: not a COW file' err.txt || fail "$(cat err.txt)"
	expect_status 2 "$IS" --check nothere.cow
	grep -q 'nothere.cow: cannot open' err.txt || fail "$(cat err.txt)"
}

t_check_old_layouts() {
	randfile back.img $((2048 * 512))
	touch -d '2019-01-01' back.img
	for lay in v1 v2 v3b; do
		build_old $lay $lay.cow "$T/back.img" 2048 512 4096 "0 3 10 11 12 63 64 1000 2047"
		expect_status 0 "$IS" --json $lay.cow
		json_ok out.txt 1
		want=$lay
		[ $lay = v3b ] && want=v3-broken
		grep -q "\"layout\":\"$want\"" out.txt || fail "$lay: layout: $(head -c 300 out.txt)"
		expect_status 0 "$IS" --map $lay.cow
		awk 'NR > 2 && NF == 4 { print $3, $4 }' out.txt >got.txt
		printf '0 1\n3 1\n10 3\n63 2\n1000 1\n2047 1\n' >want.txt
		same_lines got.txt want.txt "$lay: map"
	done
	expect_status 0 "$IS" v3b.cow
	grep -q 'broken version 3' out.txt || fail "broken layout not named"
	expect_status 0 "$IS" --check v3b.cow
	grep -q 'warning broken-v3-layout' out.txt || fail "$(cat out.txt)"
	# The v1/v2 rounding bug: one sector without a bit.
	randfile b2.img 950784
	build_old v1 r.cow "$T/b2.img" 1857 512 4096 "0 1855"
	expect_status 0 "$IS" --check r.cow
	grep -q 'warning uncovered-sectors: 1 sector at the end (from 1856)' out.txt ||
		fail "rounding bug: $(cat out.txt)"
}

# A process holding the kernel's fcntl lock, as a running guest does.
t_check_in_use() {
	need_python
	make_pair
	hold_lock c.cow || fail "could not take the lock"
	pid=$lock_holder
	expect_status 0 "$IS" --check c.cow
	grep -q "warning in-use: process $pid holds a lock" out.txt || fail "$(cat out.txt)"
	expect_status 1 "$IS" --check --strict c.cow
	expect_status 0 "$IS" --json c.cow
	[ "$(jget out.txt locked_by)" = "$pid" ] || fail "locked_by"
	kill "$pid"
	wait "$pid" 2>/dev/null
	expect_status 0 "$IS" --json c.cow
	[ "$(jget out.txt locked_by)" = 0 ] || fail "locked_by after"
}

# --- --map -----------------------------------------------------------------------

t_map() {
	make_pair
	expect_status 0 "$IS" --map c.cow
	awk 'NR > 2 && NF == 4 { print $3, $4 }' out.txt >got.txt
	"$COWUTIL" runs c.cow >want.txt
	same_lines got.txt want.txt "map differs from the bitmap's runs"
	grep -q '5 extents, 2560 bytes' out.txt || fail "total: $(tail -n 1 out.txt)"
	# Merged into 1 MiB-aligned extents, and by gap.
	expect_status 0 "$IS" --map --align 1M c.cow
	awk '$1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ { print $1, $2 }' out.txt >got.txt
	printf '0 2097152\n5242880 1048576\n7340032 1048576\n' >want.txt
	same_lines got.txt want.txt "--align 1M"
	expect_status 0 "$IS" --map --gap 2M --json c.cow
	json_ok out.txt 1
	grep -q '"extents":\[\[0,1049088\],\[5242880,512\],\[8388096,512\]\]' out.txt ||
		fail "--gap: $(cat out.txt)"
	grep -q '"runs":5,"count":3' out.txt || fail "counts: $(cat out.txt)"
	expect_status 2 "$IS" --map back.img
	expect_status 2 "$IS" --align 4096 c.cow
}

# --- stat ------------------------------------------------------------------------

t_stat_backing_mismatch() {
	make_pair
	expect_status 0 "$IS" --json c.cow
	json_ok out.txt 1
	if command -v python3 >/dev/null; then
		[ "$(jget out.txt backing.status)" = ok ] || fail "status"
		[ "$(jget out.txt usage.cow_sectors)" = 5 ] || fail "cow_sectors"
		[ "$(jget out.txt usage.cow_bytes)" = 2560 ] || fail "cow_bytes"
		[ "$(jget out.txt usage.runs)" = 5 ] || fail "runs"
		[ "$(jget out.txt header.size)" = $((8 * MiB)) ] || fail "size"
		[ "$(jget out.txt geometry.data_offset)" = "$(info_get c.cow data_offset)" ] || fail "data_offset"
		[ "$(jget out.txt allocation.cow.apparent)" = "$(size_of c.cow)" ] || fail "apparent"
		[ "$(jget out.txt allocation.cow.allocated)" = $(($(blocks_of c.cow) * 512)) ] || fail "allocated"
		[ "$(jget out.txt content.signature)" = null ] || fail "content of random data"
	fi
	touch -d '2020-02-02 02:02:12' back.img
	expect_status 0 "$IS" c.cow
	grep -q 'status: mtime-mismatch' out.txt || fail "$(cat out.txt)"
	grep -q 'mtime: header .*, +10 s' out.txt || fail "mtime delta: $(grep mtime out.txt)"
	grep -q "fix: if its content is unchanged: uml_mkcow --rebase $T/back.img c.cow" out.txt ||
		fail "fix command: $(grep fix out.txt)"
	# The fix works.
	"$MKCOW" --rebase "$T/back.img" c.cow >/dev/null || fail "rebase"
	expect_status 0 "$IS" --check c.cow
	truncate -s $((8 * MiB + 512)) back.img
	touch -d '2020-02-02 02:02:12' back.img
	expect_status 0 "$IS" c.cow
	grep -q 'status: size-mismatch' out.txt || fail "$(cat out.txt)"
	grep -q 'size: header 8388608, file 8389120 (+512 bytes)' out.txt || fail "size delta"
	# -b names another file; a missing backing is described, not fatal.
	truncate -s $((8 * MiB)) back.img
	touch -d '2020-02-02 02:02:22' back.img
	mv back.img moved.img
	expect_status 0 "$IS" c.cow
	grep -q 'status: missing' out.txt || fail "$(cat out.txt)"
	grep -q 'fix: if the backing file moved: uml_mkcow --rebase BACKING c.cow' out.txt || fail "fix"
	expect_status 0 "$IS" -b moved.img c.cow
	grep -q 'path: moved.img' out.txt && grep -q 'status: mtime-mismatch' out.txt ||
		fail "-b: $(cat out.txt)"
}

t_stat_raw_images() {
	truncate -s 16M zero.img
	randfile rand.img $((4 * MiB))
	mkswap -L myswap swap.img 2>/dev/null >/dev/null || { truncate -s 16M swap.img; mkswap -L myswap swap.img >/dev/null 2>&1; }
	expect_status 0 "$IS" zero.img rand.img swap.img
	grep -q 'zero.img: raw disk image' out.txt || fail "raw line"
	[ "$(grep -c 'nothing found: no filesystem, no partition table' out.txt)" = 2 ] ||
		fail "empty images: $(cat out.txt)"
	grep -q 'signature: swap (other), version 1' out.txt || fail "swap: $(cat out.txt)"
	grep -q 'label: myswap' out.txt || fail "swap label"
	# Partition tables: dos with ext4 and swap; gpt.
	truncate -s 32M disk.img
	printf 'label: dos\nstart=2048, size=40960, type=83\nstart=43008, type=82\n' |
		sfdisk -q disk.img || fail sfdisk
	mkfs.ext4 -q -F -b 4096 -L inpart -E offset=1048576 disk.img 20M || fail mkfs
	truncate -s 16M gpt.img
	printf 'label: gpt\nstart=2048, size=8192, name=boot\nstart=10240, name=data\n' |
		sfdisk -q gpt.img || fail "sfdisk gpt"
	expect_status 0 "$IS" disk.img gpt.img
	grep -q 'partition table: dos (id [0-9a-f]*), 2 partitions' out.txt || fail "dos: $(cat out.txt)"
	grep -q 'partition 1: primary, type 0x83, start 1048576, size 20971520' out.txt || fail "p1"
	grep -q 'partition 2: primary, type 0x82, start 22020096' out.txt || fail "p2"
	grep -q 'label: inpart' out.txt || fail "ext4 in partition 1"
	grep -q 'partition table: gpt (id [0-9a-f-]*), 2 partitions' out.txt || fail "gpt"
	grep -q 'partition 2: primary, type 0fc63daf-8483-4772-8e79-3d69d8477de4, start 5242880, .*name "data"' out.txt ||
		fail "gpt p2: $(grep 'partition 2' out.txt)"
	expect_status 0 "$IS" --json disk.img gpt.img
	json_ok out.txt 2
	if command -v python3 >/dev/null; then
		[ "$(jget out.txt content.partition_table.type)" = dos ] || fail "json pt"
		[ "$(jget out.txt content.partition_table.partitions.0.start)" = 1048576 ] || fail "json start"
		[ "$(jget out.txt content.partition_table.partition_content.0.signature.type)" = ext4 ] ||
			fail "json partition content"
		[ "$(jget out.txt content.partition_table.partition_content.0.ext.block_size)" = 4096 ] ||
			fail "json ext in partition"
	fi
	# vfat, when dosfstools is installed.
	if command -v mkfs.vfat >/dev/null; then
		truncate -s 16M fat.img
		mkfs.vfat -n FATLABEL fat.img >/dev/null || fail mkfs.vfat
		expect_status 0 "$IS" fat.img
		grep -q 'signature: vfat (filesystem), version FAT16' out.txt || fail "vfat: $(cat out.txt)"
		grep -q 'label: FATLABEL' out.txt || fail "vfat label"
		! grep -q 'ext2/3/4' out.txt || fail "ext details for vfat"
	else
		echo "note: mkfs.vfat missing (dosfstools): vfat not tested"
	fi
}

# The merged view: what the pair holds, not what the backing holds.
t_stat_merged_view() {
	truncate -s 32M empty.img
	"$MKCOW" c.cow empty.img
	expect_status 0 "$IS" c.cow
	grep -q 'nothing found' out.txt || fail "empty: $(cat out.txt)"
	# A partitioned disk with ext4 written into the COW.
	truncate -s 32M disk.img
	printf 'label: dos\nstart=2048, size=40960, type=83\nstart=43008, type=82\n' |
		sfdisk -q disk.img || fail sfdisk
	mkfs.ext4 -q -F -b 4096 -L viewfs -E offset=1048576 disk.img 20M || fail mkfs
	cow_sync c.cow empty.img disk.img
	expect_status 0 "$IS" c.cow empty.img
	sed -n '/c.cow:/,/empty.img:/p' out.txt >cow.txt
	grep -q 'partition table: dos' cow.txt || fail "view: $(cat cow.txt)"
	grep -q 'label: viewfs' cow.txt || fail "view label"
	grep -q 'block size: 4096' cow.txt || fail "view ext details"
	sed -n '/empty.img:/,$p' out.txt | grep -q 'nothing found' || fail "the backing changed?"
	# mkswap over the whole device in the COW.
	"$MKCOW" s.cow empty.img
	cp empty.img sw.img
	mkswap -L viewswap sw.img >/dev/null 2>&1 || fail mkswap
	cow_sync s.cow empty.img sw.img
	expect_status 0 "$IS" s.cow
	grep -q 'signature: swap' out.txt && grep -q 'label: viewswap' out.txt ||
		fail "swap in the view: $(cat out.txt)"
}

# --- command line ---------------------------------------------------------------

t_options_and_errors() {
	make_pair
	expect_status 2 "$IS"
	expect_status 2 "$IS" --bogus c.cow
	grep -q "option '--bogus' is unknown" err.txt || fail "$(cat err.txt)"
	expect_status 2 "$IS" -x c.cow
	expect_status 2 "$IS" --map --align 0 c.cow
	expect_status 2 "$IS" --map --gap -5 c.cow
	expect_status 2 "$IS" --strict c.cow
	expect_status 2 "$IS" -b back.img c.cow c.cow
	expect_status 0 "$IS" --help
	grep -q '^Usage: uml_imgstat' out.txt || fail help
	expect_status 0 "$IS" --version
	grep -q '^uml_imgstat (ubdkit) ' out.txt || fail version
	# Several files, one missing: the others are still described.
	"$IS" c.cow nothere.img back.img >out.txt 2>err.txt
	[ $? = 2 ] || fail "exit status with a missing file"
	[ "$(wc -l <err.txt)" = 1 ] && grep -q '^uml_imgstat: nothere.img: cannot open: No such file' err.txt ||
		fail "error: $(cat err.txt)"
	grep -q '^c.cow: UML COW file' out.txt && grep -q '^back.img: raw disk image' out.txt ||
		fail "other files not described"
	"$IS" --json c.cow nothere.img back.img >out.txt 2>/dev/null
	json_ok out.txt 3
	sed -n 2p out.txt | grep -q '"error":"nothere.img: cannot open' || fail "json error"
	# A directory, an empty file, a truncated header.
	mkdir d
	expect_status 2 "$IS" d
	: >empty
	expect_status 0 "$IS" empty
	head -c 100 c.cow >short.cow
	expect_status 2 "$IS" short.cow
	grep -q 'short.cow' err.txt || fail "$(cat err.txt)"
	expect_status 1 "$IS" --check short.cow
	grep -q 'error short-header' out.txt || fail "$(cat out.txt)"
	# Modes combine, in one document per file.
	expect_status 0 "$IS" --stat --map --check --json c.cow
	json_ok out.txt 1
	for k in '"header":' '"map":' '"check":' '"content":'; do
		grep -q "$k" out.txt || fail "missing $k"
	done
}

# Hostile input: FIFOs anywhere a path comes from (the file, -b, the
# header) never hang; COWs cut in their bitmap or data area and devices say
# why on one line; --gap near 2^64 does not wrap; names that are not UTF-8
# or hold newlines keep JSON valid and errors on one line.
t_hostile_input() {
	make_pair
	mkfifo fifo
	for m in --stat --map --check --files --json; do
		expect_status 2 timeout 10 "$IS" $m fifo
		grep -q 'fifo: not a regular file or block device' err.txt || fail "$m: $(cat err.txt)"
		expect_status 2 timeout 10 "$IS" $m /dev/null
		grep -q 'not a regular file or block device' err.txt || fail "$m: $(cat err.txt)"
	done
	# The backing a FIFO, by -b and by the header.
	truncate -s 1M f.img
	"$MKCOW" f.cow "$T/f.img" >/dev/null || fail mkcow
	rm f.img && mkfifo f.img
	for m in --stat --map --files --json; do
		expect_status 2 timeout 10 "$IS" $m -b fifo c.cow
		grep -q 'backing file fifo: not a regular file or block device' err.txt || fail "$m: $(cat err.txt)"
		expect_status 2 timeout 10 "$IS" $m f.cow
		grep -q 'f.img: not a regular file or block device' err.txt || fail "$m: $(cat err.txt)"
	done
	expect_status 1 timeout 10 "$IS" --check f.cow
	grep -q 'error backing-not-regular' out.txt || fail "$(cat out.txt)"
	# Cut inside the data area, and inside the bitmap.
	cp c.cow cut.cow
	truncate -s $(( $(info_get cut.cow data_offset) + 512 )) cut.cow
	expect_status 2 "$IS" cut.cow
	grep -q 'past the end of the file' err.txt || fail "$(cat err.txt)"
	expect_status 1 "$IS" --check cut.cow
	grep -q 'error short-data' out.txt || fail "$(cat out.txt)"
	head -c $(( $(info_get c.cow bitmap_offset) + 1 )) c.cow >bm.cow
	expect_status 2 "$IS" bm.cow
	grep -q 'ends inside its bitmap' err.txt || fail "$(cat err.txt)"
	# --gap of 2^64 - 1 merges every run into one extent.
	expect_status 0 "$IS" --map --json --gap 18446744073709551615 c.cow
	[ "$(jget out.txt map.count)" = 1 ] || fail "--gap 2^64-1: $(cat out.txt)"
	# Names: not UTF-8, and with a newline.
	bad=$(printf 'x\377\nz')
	cp c.cow "$bad.cow"
	expect_status 0 "$IS" --json "$bad.cow"
	json_ok out.txt 1
	python3 -c 'import json,sys; d=json.loads(open("out.txt").readline()); assert d["file"] == "x\u00ff\nz.cow", d' ||
		fail "name not as Latin-1: $(head -c 300 out.txt)"
	expect_status 2 "$IS" "$bad.nothere"
	grep -qF 'x\xff\nz.nothere: cannot open' err.txt || fail "$(cat err.txt)"
	# A long name: the reason survives.
	long=$(printf '%0200d' 0)
	long="$long/$long/$long"
	mkdir -p "$long" && head -c 100 c.cow >"$long/s.cow"
	expect_status 2 "$IS" "$long/s.cow"
	grep -q 'shorter\|header' err.txt || fail "reason lost: $(cat err.txt)"
}

run_tests "$@"
