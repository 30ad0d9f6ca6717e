# The imgstat suite: what its tests (tests/imgstat/*.t) share; each test sources
# this file, tests/lib/tap.sh runs it.
#
# Tests of uml_imgstat through its command line: --files on COW files
# written by real linux.uml guests that create, modify, grow, truncate,
# rename and delete known files in ext4 (and one that does not unmount);
# --check on each kind of damage; --map against the bitmap; stat of every
# COW layout, of backing mismatches, of raw images with no filesystem, a
# partition table, swap and vfat, and of a pair's merged view; JSON; bad
# input.
#   prove -j2 --directives --comments tests/imgstat/   (make check-imgstat)
#   prove -v tests/imgstat/NAME.t                    (one test; B=BUILD_DIR)
set -u

SUITE=imgstat
. "$(dirname "$0")/../lib/tap.sh"

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
