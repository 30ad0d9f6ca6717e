# The backup suite: what its tests (tests/backup/*.t) share; each test sources
# this file, tests/lib/tap.sh runs it.
#
# Tests of uml_backup against real linux.uml guests: a guest keeps writing
# numbered, checksummed records (each one fsynced) to an ext4 on its COW
# while it is backed up; the backup, merged with its backing, must pass
# fsck and hold a gap-free prefix of the records.  Also: compression and
# restore (ours, lz4 -d, gunzip), --verify, offline backups and their lock
# check, SIGKILL and SIGTERM in the middle of the pause (the guest must run
# afterwards, no backup may look complete), a guest that exits or stops
# answering during the backup, bad destinations, bad devices, and the
# mconsole client's own unit tests.
#   prove -j2 --directives --comments tests/backup/   (make check-backup)
#   prove -v tests/backup/NAME.t                    (one test; B=BUILD_DIR)
set -u

SUITE=backup
. "$(dirname "$0")/../lib/tap.sh"

BK=$B/bin/uml_backup
COWUTIL=$B/tests/cowutil
MKCOW=$B/bin/uml_mkcow
UML_TIMEOUT=600

# --- helpers -----------------------------------------------------------------

# The watchdog, a process of its own, may add a line to a failure's one.
EXPECT_ALSO='^uml_backup: watchdog'

err_has() {
	grep -qi -- "$1" err.txt || fail "error does not say '$1': $(cat err.txt)"
}

# The records a guest writes: "REC n c(n)", c(n) = (n * 7919 + 104729) % 1000003.
rec_check() {
	awk 'BEGIN { bad = 0 }
	{
		want = sprintf("REC %08d %07d", NR, (NR * 7919 + 104729) % 1000003)
		if ($0 != want) { printf "record %d is \"%s\", expected \"%s\"\n", NR, $0, want; bad = 1; exit 1 }
	}
	END { if (!bad) print NR }'
}

# A guest init script: mount ubda, write records until $T/stop.UMID exists,
# each appended with fsync; a megabyte of buffered writes every 10 records
# keeps dirty data around for the sync.  Prints "N n" after each record.
writer_init() {
	cat <<EOS
#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc 2>/dev/null
mount /dev/ubda /mnt || { echo GUEST-ERROR mount; poweroff -f; }
echo GUEST-READY
# A guest booted again on the same disk goes on numbering after the last
# complete record.
n=\$(grep -c '^REC' /mnt/rec 2>/dev/null)
n=\${n:-0}
[ "\$n" -gt 0 ] && { head -n \$n /mnt/rec >/mnt/rec.new; mv /mnt/rec.new /mnt/rec; sync; }
while [ ! -e "$T/stop.$1" ]; do
	n=\$((n + 1))
	printf 'REC %08d %07d\n' \$n \$(( (n * 7919 + 104729) % 1000003 )) |
		dd of=/mnt/rec oflag=append conv=notrunc,fsync status=none ||
		{ echo "GUEST-ERROR writing record \$n"; break; }
	echo "N \$n"
	[ \$((n % 10)) = 0 ] && dd if=/dev/urandom of=/mnt/bulk bs=64k count=16 conv=notrunc status=none
done
umount /mnt
echo GUEST-DONE
poweroff -f
EOS
}

# Boot a writer guest in the background: start_guest UMID ubd-args...
# Waits until it wrote 5 records.  Its pid is in $T/pid.UMID.
start_guest() {
	_sg_umid=$1
	shift
	writer_init "$_sg_umid" >"$T/init.$_sg_umid.sh"
	uml_boot "$_sg_umid" "$T/init.$_sg_umid.sh" "$T/log.$_sg_umid" "$@" &
	echo $! >"$T/pid.$_sg_umid"
	wait_records "$_sg_umid" 5 120 || { cat "$T/log.$_sg_umid" >&2; fail "guest $_sg_umid did not start writing"; }
}

# The last record number a guest printed.
last_rec() {
	sed -n 's/^N \([0-9]*\).*/\1/p' "$T/log.$1" 2>/dev/null | tail -n 1
}

# wait_records UMID N SECONDS: until the guest printed record N.
wait_records() {
	_wr_i=0
	while [ "$_wr_i" -lt $(($3 * 10)) ]; do
		_wr_n=$(last_rec "$1")
		[ -n "$_wr_n" ] && [ "$_wr_n" -ge "$2" ] && return 0
		grep -q GUEST-ERROR "$T/log.$1" 2>/dev/null && return 1
		sleep 0.1
		_wr_i=$((_wr_i + 1))
	done
	return 1
}

# The guest is running: it writes new records within 20 s.
assert_running() {
	_ar_n=$(last_rec "$1")
	wait_records "$1" $((_ar_n + 2)) 20 ||
		fail "guest $1 is not running (stuck at record $_ar_n)${2:+: $2}"
}

sock() { echo "$T/uml/$1/mconsole"; }
uml_pid() { cat "$T/uml/$1/pid"; }

stop_guest() {
	touch "$T/stop.$1"
	_sg_pid=$(cat "$T/pid.$1")
	wait "$_sg_pid" 2>/dev/null
	grep -q GUEST-DONE "$T/log.$1" || { tail -n 20 "$T/log.$1" >&2; fail "guest $1 did not end cleanly"; }
}

# Kill every guest of this test (and, on the way out, undo mounts).
kill_guests() {
	for _kg in "$T"/uml/*/pid; do
		[ -f "$_kg" ] || continue
		_kg_pid=$(cat "$_kg")
		for _kg_c in $(cat /proc/"$_kg_pid"/task/*/children 2>/dev/null) "$_kg_pid"; do
			kill -9 "$_kg_c" 2>/dev/null
		done
	done
	for _kg in "$T"/pid.*; do
		[ -f "$_kg" ] && wait "$(cat "$_kg")" 2>/dev/null
	done
	return 0
}

on_exit() {
	for _oe in "$T"/log.*; do
		[ -f "$_oe" ] && [ -z "${NO_GUEST_LOGS:-}" ] && { echo "--- $_oe"; grep -v "^N [0-9]*$" "$_oe" | tail -n 40; } >&2
	done
	kill_guests
	umount "$T/ro" "$T/small" "$T/xfs" 2>/dev/null
}

# An ext4 master and a COW on it: make_disk NAME SIZE_MB [MKFS-OPTIONS...]
make_disk() {
	_md_n=$1 _md_s=$2
	shift 2
	mkfs.ext4 -q -F -b 4096 "$@" "$T/$_md_n.img" "${_md_s}M" >/dev/null 2>&1 || fail "mkfs.ext4"
	set -- "$_md_n"
	"$MKCOW" -q "$T/$1.cow" "$T/$1.img" || fail "uml_mkcow"
}

# merged_check COW MINRECORDS: the COW merged with its backing passes fsck
# (after replaying the journal, as mounting would) and holds a gap-free
# prefix of at least MINRECORDS records; prints the number of records.
merged_check() {
	rm -f "$T/merged.img"
	"$COWUTIL" merged "$1" "$T/merged.img" >/dev/null || fail "cowutil merged $1"
	e2fsck -fy "$T/merged.img" >"$T/fsck.log" 2>&1
	[ $? -le 1 ] || { cat "$T/fsck.log" >&2; fail "$1: e2fsck -fy failed"; }
	e2fsck -fn "$T/merged.img" >"$T/fsck.log" 2>&1 ||
		{ cat "$T/fsck.log" >&2; fail "$1: not clean after journal replay"; }
	_mc_n=$(debugfs -R "cat /rec" "$T/merged.img" 2>/dev/null | rec_check) ||
		fail "$1: records: $_mc_n"
	[ "$_mc_n" -ge "$2" ] || fail "$1: only $_mc_n records, expected at least $2"
	rm -f "$T/merged.img"
	echo "$_mc_n"
}

# The manifest has the documented keys.
manifest_keys() {
	for _mk in format guest mconsole live created method pause_ms devices device \
		cow backing size mtime file compression chunks chunks_xxh128 \
		point kind format; do
		grep -q "\"$_mk\":" "$1" || fail "$1: no key \"$_mk\""
	done
}

# A directory left by a failed or killed run: nothing that looks complete.
no_backup() {
	[ ! -e "$1/manifest.json" ] || fail "$1: a failed run left a manifest"
	_nb=$(ls -A "$1" 2>/dev/null | grep -v '^\.' | tr '\n' ' ')
	[ -z "$_nb" ] || fail "$1: a failed run left files: $_nb"
}

# A fake guest on an mconsole socket, in the background: start_fake SOCK
# [UBD0].  It answers version, `config ubd0` with UBD0 (other devices: not
# configured), proc meminfo, sysrq, stop and go, and logs each command to
# SOCK.log; the commands listed in $FAKE_TRICKLE ('*': all) get instead an
# empty `more` part every 0.2 s for 30 s, a reply that never completes.
start_fake() {
	rm -f "$1" "$1.ready" "$1.log"
	python3 - "$@" <<'EOS' &
import os, socket, struct, sys, threading, time
path, ubd0 = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
trickle = os.environ.get("FAKE_TRICKLE", "").split()
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
open(path + ".ready", "w").close()
def reply(to, text, err=0, more=0):
    data = text.encode("utf-8", "surrogateescape") + b"\0"
    s.sendto(struct.pack("=III", err, more, len(data)) + data, to)
def drip(to):
    for _ in range(150):
        try:
            reply(to, "", more=1)
        except OSError:
            return
        time.sleep(0.2)
while True:
    req, to = s.recvfrom(1024)
    n = struct.unpack("=III", req[:12])[2]
    cmd = req[12:12 + n].decode("utf-8", "replace")
    with open(path + ".log", "a") as f:
        f.write(cmd + "\n")
    if "*" in trickle or cmd in trickle:
        threading.Thread(target=drip, args=(to,), daemon=True).start()
    elif cmd == "version":
        reply(to, "fake 1.0")
    elif cmd == "config ubd0" and ubd0:
        reply(to, ubd0)
    elif cmd.startswith("config ubd"):
        reply(to, "")
    elif cmd == "proc meminfo":
        reply(to, "\nDirty: 0 kB\nWriteback: 0 kB\n")
    elif cmd in ("stop", "go", "sysrq s"):
        reply(to, "")
    else:
        reply(to, "Unknown command", err=1)
EOS
	echo $! >"$1.pid"
	_sf_i=0
	while [ ! -e "$1.ready" ] && [ $_sf_i -lt 100 ]; do sleep 0.05; _sf_i=$((_sf_i + 1)); done
	[ -e "$1.ready" ] || fail "the fake guest did not start"
}

# Kill the fake guest; a watchdog still trying `go` then sees it gone.
stop_fake() {
	kill "$(cat "$1.pid")" 2>/dev/null
	wait "$(cat "$1.pid")" 2>/dev/null
	return 0
}

# A small COW (no filesystem in it) on a backing file: small_cow NAME
small_cow() {
	truncate -s 4M "$T/$1.img" || fail "truncate"
	"$MKCOW" -q "$T/$1.cow" "$T/$1.img" || fail "uml_mkcow"
}

# --- tests -------------------------------------------------------------------

# The live scenario: a guest with two COWs (ubda, ubdb) and a plain file
# (ubdc) writes records while it is backed up; each t_live_* test boots
# its own and checks one behaviour.  Sets S, the guest's socket.
live_guest() {
	trap on_exit EXIT
	make_disk disk 128
	make_disk second 16
	head -c $((8 * 1048576)) /dev/zero >"$T/plain.img"
	start_guest g1 ubda="$T/disk.cow,$T/disk.img" ubdb="$T/second.cow,$T/second.img" \
		ubdc="$T/plain.img"
	S=$(sock g1)
}

# The guest ends cleanly, its own writes having succeeded.
live_guest_end() {
	stop_guest g1
	trap - EXIT
	! grep GUEST-ERROR "$T/log.g1" || fail "the guest's own writes failed"
}

# Start a backup that waits in the pause: live_stall DEST [OPTIONS...];
# its pid in $bk, once the guest is stopped and its I/O idle.
live_stall() {
	_ls_dest=$1
	shift
	rm -f "$T/stall"
	UBDK_BACKUP_TEST_STALL="$T/stall" "$BK" "$@" -d 0 "$S" "$_ls_dest" >out.txt 2>err.txt &
	bk=$!
	_ls_i=0
	while [ ! -e "$T/stall" ] && [ $_ls_i -lt 300 ]; do sleep 0.1; _ls_i=$((_ls_i + 1)); done
	[ -e "$T/stall" ] || fail "the backup never reached the pause: $(cat err.txt)"
}

# --- chains (--incremental) ----------------------------------------------------

# The points of a chain, oldest first.
points() { ls "$1" | grep '^[0-9]\{8\}T[0-9]\{6\}\.[0-9]\{3\}Z$'; }

# A chain of the offline COW $T/x.cow (made if missing): offline_chain
# CHAINDIR N [OPTIONS...]: a full point, then N - 1 incrementals (taken
# with OPTIONS), the COW changed before each.
offline_chain() {
	_oc_dir=$1 _oc_n=$2
	shift 2
	[ -e "$T/x.cow" ] || small_cow x
	printf 'data' | dd of="$T/x.cow" bs=1 seek=100000 conv=notrunc status=none
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$_oc_dir"
	_oc_i=1
	while [ $_oc_i -lt "$_oc_n" ]; do
		printf "more $_oc_i" | dd of="$T/x.cow" bs=1 seek=$((_oc_i * 300000)) conv=notrunc status=none
		expect_status 0 "$BK" -q -i "$@" --offline "$T/x.cow" "$_oc_dir"
		_oc_i=$((_oc_i + 1))
	done
}

# Every name under the directories (links not followed) and every file's md5.
tree_sums() {
	find "$@" | sort
	find "$@" -type f | sort | xargs -r md5sum
}

# restore_points CHAINDIR DIR: each point's ubd0 restored to DIR/POINT.cow.
restore_points() {
	for _rp in $(points "$1"); do
		rm -f "$2/$_rp.cow"
		"$BK" -q restore "$1/$_rp/ubd0.ubdx" "$2/$_rp.cow" 2>err.txt ||
			fail "${3:-}point $_rp does not restore: $(cat err.txt)"
	done
}

# --- the tracking source (our kernel's changed-block tracking) ---------------

OURS=$B/kernel/linux
need_ours() {
	[ -x "$OURS" ] || skip "no $OURS: run make kernel"
	command -v uml_mconsole >/dev/null || skip "no uml_mconsole (uml-utilities)"
}
mcon() { uml_mconsole "$(sock "$1")" "$2" 2>/dev/null; }
# The summary's figures: MiB read, chunks stored.
read_mib() { sed -n 's/.* \([0-9.]*\) MiB of COW data read.*/\1/p' err.txt; }
chunks_stored() { sed -n 's/.*: \([0-9]*\) chunks\{0,1\} stored.*/\1/p' err.txt; }

# One backup of the chain, checked: chain_point UMID N SOURCE [NOTE]; the
# records written before and when it returned in before$N and after$N.
chain_point() {
	eval "before$2=$(last_rec "$1")"
	expect_status 0 "$BK" -i -j -u "$T/uml" "$1" "$T/chain"
	eval "after$2=$(last_rec "$1")"
	cat err.txt
	case $3 in
	full)
		[ "$(json_str out.txt kind)" = full ] || fail "point $2: kind $(json_str out.txt kind)" ;;
	*)
		[ "$(json_str out.txt changes)" = "$3" ] || fail "point $2: changes $(json_str out.txt changes), expected $3: $(cat err.txt)"
		grep -q "changes: $3" err.txt || fail "point $2: summary: $(cat err.txt)" ;;
	esac
	[ -z "${4:-}" ] || grep -q "\"changes_note\": \"$4" out.txt ||
		fail "point $2: note $(json_str out.txt changes_note), expected $4"
	[ "$3" != comparison ] || grep -q "($4" err.txt || fail "point $2: the summary lacks the note: $(cat err.txt)"
	# The kernel's checkpoint is now this point (for the next one).
	_cp_id=$(json_str out.txt point)
	mcon "$1" "cbt ubd0" | grep -q "checkpoint=$_cp_id " ||
		fail "point $2: the guest's checkpoint is not $_cp_id: $(mcon "$1" "cbt ubd0")"
	# Without sleeping: a few more records before the next point.
	wait_records "$1" $(($(last_rec "$1") + 3)) 60 || fail "guest $1 stopped writing"
}

# Every point restored, compared with the records the guest had.
chain_restore_all() {
	expect_status 0 "$BK" verify "$T/chain"
	_ra=0
	for p in $(points "$T/chain"); do
		_ra=$((_ra + 1))
		expect_status 0 "$BK" restore "$T/chain/$p/ubd0.ubdx" "$T/r$_ra.cow"
		eval "b=\$before$_ra a=\$after$_ra"
		c=$(merged_check "$T/r$_ra.cow" "$b")
		echo "point $_ra: $c records (written before: $b, when it returned: $a)"
		[ "$c" -le $((a + 1)) ] || fail "point $_ra holds $c records, more than the $a written when it returned"
	done
}

# $T/x.cow over a sparse 64 MiB image, all of it random data, for a test
# that counts a point's seeks with strace (skipped without a usable one).
random_cow_for_strace() {
	command -v strace >/dev/null || skip "no strace"
	strace -f -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	truncate -s 64M "$T/x.img" || fail "truncate"
	"$MKCOW" -q "$T/x.cow" "$T/x.img" || fail "uml_mkcow"
	head -c 64M /dev/urandom >"$T/data" || fail "head"
	"$COWUTIL" write "$T/x.cow" 0 "$T/data" >/dev/null || fail "cowutil write"
}

# Fails unless strace's count in FILE has fewer than 256 lseeks (the 1,024
# chunks of random_cow_for_strace, WHAT, read by extents, not by chunk).
#   few_seeks FILE WHAT
few_seeks() {
	_fs_n=$(awk '$NF == "lseek" { print $4 }' "$1")
	echo "$2 of 64 MiB of data (1,024 chunks): ${_fs_n:-no} lseeks"
	[ -n "$_fs_n" ] && [ "$_fs_n" -lt 256 ] || fail "${_fs_n:-no} lseeks for 1,024 chunks of data"
}
