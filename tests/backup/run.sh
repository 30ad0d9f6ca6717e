#!/bin/sh
# Tests of uml_backup against real linux.uml guests: a guest keeps writing
# numbered, checksummed records (each one fsynced) to an ext4 on its COW
# while it is backed up; the backup, merged with its backing, must pass
# fsck and hold a gap-free prefix of the records.  Also: compression and
# restore (ours, lz4 -d, gunzip), --verify, offline backups and their lock
# check, SIGKILL and SIGTERM in the middle of the pause (the guest must run
# afterwards, no backup may look complete), a guest that exits or stops
# answering during the backup, bad destinations, bad devices, and the
# mconsole client's own unit tests.
#   tests/backup/run.sh BUILD_DIR [t_NAME...]
set -u

SUITE=backup
. "$(dirname "$0")/../lib/runner.sh"

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

t_mconsole_client() {
	"$B/tests/mconsole_test" "$T" || fail "mconsole unit tests"
}

t_usage() {
	expect_status 0 "$BK" --help
	grep -q 'Exit status' out.txt || fail "--help has no exit codes"
	expect_status 0 "$BK" --version
	grep -q '^uml_backup (ubdkit) ' out.txt || fail "--version: $(cat out.txt)"
	expect_status 2 "$BK"
	expect_status 2 "$BK" onlyone
	expect_status 2 "$BK" --bogus g d
	expect_status 2 "$BK" -m magic g d
	expect_status 2 "$BK" -c zip g d
	expect_status 2 "$BK" -t 0 g d
	expect_status 2 "$BK" -d ubdz g d
	err_has "not a ubd device"
	expect_status 2 "$BK" restore
	expect_status 2 "$BK" verify a b
	expect_status 1 "$BK" verify "$T/nothing"
	err_has "no manifest"
}

t_no_guest() {
	expect_status 3 "$BK" -u "$T/uml" nosuchumid "$T/d1"
	err_has "no such guest"
	[ ! -e "$T/d1" ] || fail "destination created for a missing guest"
	# A stale socket: the guest was killed and left it behind.
	mkdir -p "$T/uml/stale"
	python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])" \
		"$T/uml/stale/mconsole" || fail "python3"
	expect_status 3 "$BK" -u "$T/uml" stale "$T/d1"
	err_has "not running"
	# A socket nobody answers on.
	mkdir -p "$T/uml/mute"
	python3 -c "import socket,sys,time; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); open(sys.argv[2],'w').close(); time.sleep(30)" \
		"$T/uml/mute/mconsole" "$T/mute.ready" &
	mute=$!
	while [ ! -e "$T/mute.ready" ]; do sleep 0.1; done
	t0=$(date +%s%N)
	expect_status 3 "$BK" -t 1 "$T/uml/mute/mconsole" "$T/d1"
	t1=$(date +%s%N)
	kill $mute
	err_has "not answering"
	[ $(( (t1 - t0) / 1000000 )) -lt 5000 ] || fail "took $(( (t1 - t0) / 1000000 )) ms for a 1 s timeout"
	[ ! -e "$T/d1" ] || fail "destination created for a mute guest"
}

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

# Every device, or a missing one: refused before the guest is touched.
t_live_refuses_devices() {
	live_guest
	# All devices: ubd2 has no COW.
	expect_status 4 "$BK" -u "$T/uml" g1 "$T/all"
	err_has "ubd2: .*plain.img is not a COW file"
	[ ! -e "$T/all" ] || fail "destination created although a device has no COW"
	expect_status 4 "$BK" -u "$T/uml" -d ubd5 g1 "$T/all"
	err_has "not configured"
	assert_running g1 "after refused backups"
	live_guest_end
}

# A plain backup of both COWs, by socket path, while records are written:
# the manifest, --json, verify; a consistent point in time that boots.
t_live_backup() {
	live_guest
	n0=$(last_rec g1)
	expect_status 0 "$BK" -j -d ubda,ubdb "$S" "$T/b1"
	cat err.txt
	manifest_keys "$T/b1/manifest.json"
	cmp -s out.txt "$T/b1/manifest.json" || fail "--json output is not the manifest"
	[ -f "$T/b1/ubd0.cow" ] && [ -f "$T/b1/ubd1.cow" ] || fail "files: $(ls "$T/b1")"
	echo "plain backup: method $(json_str "$T/b1/manifest.json" method)," \
		"pause $(json_num "$T/b1/manifest.json" pause_ms) ms, records before $n0"
	[ "$(json_str "$T/b1/manifest.json" guest)" = g1 ] || fail "guest name"
	grep -q "\"backing\": \"$T/disk.img\"" "$T/b1/manifest.json" || fail "backing path"
	assert_running g1 "after the plain backup"
	expect_status 0 "$BK" verify "$T/b1"
	# One more: it holds no more records than were written when it returned.
	expect_status 0 "$BK" -q -d 0 "$S" "$T/b4"
	n_b4=$(last_rec g1)
	live_guest_end
	n_end=$(last_rec g1)
	c1=$(merged_check "$T/b1/ubd0.cow" "$n0")
	echo "b1: $c1 records (guest had written $n0 before, $n_end at the end)"
	[ "$c1" -lt "$n_end" ] || fail "b1 holds records written after it"
	c4=$(merged_check "$T/b4/ubd0.cow" "$c1")
	[ "$c4" -le $((n_b4 + 1)) ] || fail "b4 holds $c4 records, more than the $n_b4 written when it returned"
	# ubdb: the kernel made its COW; nothing was written, still a valid COW.
	"$COWUTIL" check "$T/b1/ubd1.cow" >/dev/null || fail "ubd1 backup not a valid COW"
	# The backup boots as it is: a guest on b1/ubd0.cow reads the records.
	cat >"$T/boot.sh" <<EOS
#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc 2>/dev/null
mount /dev/ubda /mnt || { echo GUEST-ERROR mount; poweroff -f; }
echo "GUEST-RECORDS \$(wc -l </mnt/rec)"
echo "GUEST-LAST \$(tail -n 1 /mnt/rec)"
umount /mnt
poweroff -f
EOS
	uml_boot bootb "$T/boot.sh" "$T/log.boot" ubda="$T/b1/ubd0.cow" ||
		{ cat "$T/log.boot" >&2; fail "booting the backup"; }
	got=$(sed -n 's/^GUEST-RECORDS \([0-9]*\).*/\1/p' "$T/log.boot")
	[ "$got" = "$c1" ] || { tail -n 20 "$T/log.boot" >&2; fail "booted backup has '$got' records, expected $c1"; }
}

# Compressed (lz4 by default, gzip): extent streams; and the other methods.
# Restores by us (sparse) give the COW; lz4 -d and gunzip give the stream,
# which restore - turns into the same COW; damage is caught.
t_live_compressed() {
	live_guest
	n0=$(last_rec g1)
	expect_status 0 "$BK" -q -c -d 0 "$S" "$T/b2"
	[ -f "$T/b2/ubd0.ubdx.lz4" ] && [ ! -e "$T/b2/ubd0.cow" ] || fail "lz4 files: $(ls "$T/b2")"
	expect_status 0 "$BK" -q --compress=gzip -l 1 --verify -d a "$S" "$T/b3"
	[ -f "$T/b3/ubd0.ubdx.gz" ] || fail "gzip files: $(ls "$T/b3")"
	for m in compare copy; do
		expect_status 0 "$BK" -q -j -m $m -d 0 "$S" "$T/m-$m"
		[ "$(json_str "$T/m-$m/manifest.json" method)" = $m ] || fail "method $m not used"
		echo "method $m: pause $(json_num "$T/m-$m/manifest.json" pause_ms) ms"
	done
	expect_status 5 "$BK" -m reflink -d 0 "$S" "$T/m-reflink"
	err_has "cannot share extents"
	assert_running g1 "after compressed backups"
	live_guest_end
	for m in compare copy; do
		merged_check "$T/m-$m/ubd0.cow" "$n0" >/dev/null
	done
	expect_status 0 "$BK" restore "$T/b2/ubd0.ubdx.lz4"
	grep -q "chunk table matches" err.txt || fail "restore did not check the manifest: $(cat err.txt)"
	[ "$(blocks_of "$T/b2/ubd0.cow")" -lt $(( $(size_of "$T/b2/ubd0.cow") / 512 / 4 )) ] ||
		fail "restored COW is not sparse"
	grep -q "\"format\": \"ubdx\"" "$T/b2/manifest.json" || fail "b2: format not ubdx"
	lz4 -d -q -c "$T/b2/ubd0.ubdx.lz4" >"$T/b2.ubdx" || fail "lz4 -d"
	expect_status 0 "$BK" restore - "$T/b2-pipe.cow" <"$T/b2.ubdx"
	cmp "$T/b2-pipe.cow" "$T/b2/ubd0.cow" || fail "lz4 -d | restore - differs"
	merged_check "$T/b2/ubd0.cow" "$n0" >/dev/null
	expect_status 0 "$BK" restore -j "$T/b3/ubd0.ubdx.gz" "$T/b3.cow"
	gunzip -c "$T/b3/ubd0.ubdx.gz" | "$BK" -q restore - "$T/b3-pipe.cow" ||
		fail "gunzip | restore -"
	cmp "$T/b3-pipe.cow" "$T/b3.cow" || fail "gunzip | restore - differs"
	merged_check "$T/b3.cow" "$n0" >/dev/null
	expect_status 5 "$BK" restore "$T/b3/ubd0.ubdx.gz" "$T/b3.cow"
	expect_status 0 "$BK" restore -f "$T/b3/ubd0.ubdx.gz" "$T/b3.cow"
	# --verify catches damage, in plain and compressed backups.
	printf 'X' | dd of="$T/m-copy/ubd0.cow" bs=1 seek=5000 conv=notrunc status=none
	expect_status 1 "$BK" verify "$T/m-copy"
	err_has "differs from its chunk table ubd0.chunks at byte 0"
	# Damage where it must change the content: the first deflate block, which
	# holds the stream's header.  (In the middle of a run of zeros a
	# changed back-reference distance may still inflate to the same zeros.)
	printf '\377\377' | dd of="$T/b3/ubd0.ubdx.gz" bs=1 seek=40 conv=notrunc status=none
	expect_status 1 "$BK" verify "$T/b3"
	expect_status 1 "$BK" restore "$T/b3/ubd0.ubdx.gz" "$T/bad.cow"
	[ ! -e "$T/bad.cow" ] || fail "a failed restore left its output"
}

# Exactly the COW as it was in the pause: copy it ourselves while the
# backup waits in the pause (the guest stopped, its I/O idle), then
# compare with what the backup wrote.
t_live_exact_pause() {
	live_guest
	for m in auto compare copy; do
		live_stall "$T/t-$m" -q -m $m
		cp --sparse=always "$T/disk.cow" "$T/truth.cow"
		rm -f "$T/stall"
		wait $bk || fail "$m: backup failed: $(cat err.txt)"
		cmp "$T/t-$m/ubd0.cow" "$T/truth.cow" ||
			fail "$m: the backup differs from the COW as it was in the pause"
	done
	live_guest_end
}

# Killed with SIGKILL in the middle of the pause: the watchdog resumes the
# guest; SIGTERM and SIGINT: resumed, exit 7.  Nothing looks like a backup.
t_live_signals() {
	live_guest
	live_stall "$T/k9"
	n1=$(last_rec g1)
	sleep 1
	[ "$(last_rec g1)" = "$n1" ] || fail "the guest wrote while stopped"
	kill -9 $bk
	wait $bk 2>/dev/null
	rm -f "$T/stall"
	assert_running g1 "after SIGKILL of the backup"
	no_backup "$T/k9"
	grep -q "watchdog.*resumed it" err.txt || fail "watchdog did not say it resumed: $(cat err.txt)"
	for sig in TERM INT; do
		live_stall "$T/k-$sig"
		kill -$sig $bk
		wait $bk
		st=$?
		rm -f "$T/stall"
		[ $st = 7 ] || fail "SIG$sig: exit $st: $(cat err.txt)"
		grep -q "interrupted" err.txt || fail "SIG$sig: $(cat err.txt)"
		assert_running g1 "after SIG$sig"
		no_backup "$T/k-$sig"
	done
	live_guest_end
}

# The guest stops answering in the pause (SIGSTOP): `go` times out, the
# watchdog keeps trying and resumes it once it answers again.
t_live_mute_guest() {
	live_guest
	live_stall "$T/mute" -t 1
	kill -STOP "$(uml_pid g1)"
	rm -f "$T/stall"
	wait $bk
	st=$?
	[ $st = 3 ] || { kill -CONT "$(uml_pid g1)"; fail "mute guest: exit $st: $(cat err.txt)"; }
	grep -q "not answering 'go'" err.txt || { kill -CONT "$(uml_pid g1)"; fail "mute guest: $(cat err.txt)"; }
	sleep 1
	kill -CONT "$(uml_pid g1)"
	assert_running g1 "after it answered again (watchdog)"
	no_backup "$T/mute"
	live_guest_end
}

# Destinations: an existing backup (kept unless -f), a file, a file size
# limit mid-copy.
t_live_destinations() {
	live_guest
	expect_status 0 "$BK" -q -d 0 "$S" "$T/b1"
	expect_status 5 "$BK" -d 0 "$S" "$T/b1"
	err_has "already holds a backup"
	: >"$T/afile"
	expect_status 5 "$BK" -d 0 "$S" "$T/afile"
	err_has "not a directory"
	(ulimit -f 100 && exec "$BK" -d 0 "$S" "$T/fsize") >out.txt 2>err.txt
	st=$?
	[ $st = 5 ] || fail "file size limit: exit $st: $(cat err.txt)"
	err_has "too large"
	no_backup "$T/fsize"
	assert_running g1 "after the destination errors"
	live_guest_end
}

# Destinations that are read-only or full (tmpfs mounts: root only).
t_live_full_destinations() {
	[ "$(id -u)" = 0 ] || skip "not root: no tmpfs to fill"
	mkdir -p "$T/ro" "$T/small"
	mount -t tmpfs -o ro,size=1m tmpfs "$T/ro" 2>/dev/null || skip "no tmpfs mount here"
	live_guest
	expect_status 5 "$BK" -d 0 "$S" "$T/ro/b"
	err_has "read-only"
	umount "$T/ro"
	# Smaller than the young guest's COW data: refused before the copy.
	mount -t tmpfs -o size=64k tmpfs "$T/small"
	expect_status 5 "$BK" -d 0 "$S" "$T/small/b"
	err_has "not enough space"
	no_backup "$T/small/b"
	umount "$T/small"
	assert_running g1 "after the full destinations"
	live_guest_end
}

# Offline backups are refused while the guest holds the files; once it is
# gone they copy them exactly (by --offline and by a COW as GUEST).
t_live_offline() {
	live_guest
	expect_status 6 "$BK" --offline "$T/disk.cow" "$T/off"
	err_has "in use by a running guest"
	live_guest_end
	expect_status 0 "$BK" -j --offline "$T/disk.cow" "$T/second.cow" "$T/off"
	grep -q '"live": false' "$T/off/manifest.json" || fail "offline manifest"
	cmp "$T/off/ubd0.cow" "$T/disk.cow" || fail "offline copy differs"
	cmp "$T/off/ubd1.cow" "$T/second.cow" || fail "offline copy of ubd1 differs"
	expect_status 0 "$BK" -q -c gzip "$T/disk.cow" "$T/off2"
	expect_status 0 "$BK" --verify "$T/off2"
}

# Backups in quick succession while the guest forks a process per record:
# the tracker must leave alone the stubs UML traces itself (catching one
# panicked the guest's kernel: "Failed to get registers from stub").
t_back_to_back() {
	trap on_exit EXIT
	make_disk disk 64
	start_guest g4 ubda="$T/disk.cow,$T/disk.img"
	i=0
	while [ $i -lt 60 ]; do
		i=$((i + 1))
		expect_status 0 "$BK" -q -j -u "$T/uml" g4 "$T/b$i"
		[ "$(json_str out.txt method)" = tracked ] || fail "backup $i: method $(json_str out.txt method)"
		! grep -q "GUEST-ERROR\|Kernel panic\|from stub" "$T/log.g4" ||
			fail "the guest broke during backup $i"
	done
	assert_running g4 "after 60 backups"
	n=$(last_rec g4)
	stop_guest g4
	trap - EXIT
	c=$(merged_check "$T/b60/ubd0.cow" 1)
	[ "$c" -le "$n" ] || fail "backup 60 holds $c records, the guest wrote $n"
}

# The guest goes away while it is stopped for the backup.
t_guest_exits() {
	trap on_exit EXIT
	make_disk disk 64
	# Relative paths on the guest's command line: resolved against its cwd.
	start_guest g2 ubda=disk.cow,disk.img
	(cd / && exec "$BK" -q -j -u "$T/uml" g2 "$T/rel") >out.txt 2>err.txt ||
		fail "relative paths: $(cat err.txt)"
	grep -q "\"cow\": \"$T/disk.cow\"" out.txt || fail "relative COW path not resolved: $(cat out.txt)"
	UBDK_BACKUP_TEST_STALL="$T/stall" "$BK" -u "$T/uml" g2 "$T/gone" >out.txt 2>err.txt &
	bk=$!
	i=0
	while [ ! -e "$T/stall" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	[ -e "$T/stall" ] || fail "the backup never reached the pause: $(cat err.txt)"
	kill_guests
	rm -f "$T/stall"
	wait $bk
	st=$?
	[ $st = 3 ] || fail "guest gone: exit $st: $(cat err.txt)"
	grep -q "exited during the backup" err.txt || fail "message: $(cat err.txt)"
	no_backup "$T/gone"
	# And a guest that is gone before we start: its socket is stale.
	expect_status 3 "$BK" -u "$T/uml" g2 "$T/gone2"
	err_has "not running"
	trap - EXIT
}

# On a filesystem that shares extents the pause is one FICLONE per COW.
# Needs root, xfsprogs and loop devices; skipped otherwise.
t_reflink() {
	[ "$(id -u)" = 0 ] && command -v mkfs.xfs >/dev/null || skip "not root or no mkfs.xfs (xfsprogs)"
	truncate -s 600M "$T/xfs.img"
	mkfs.xfs -q -m reflink=1 "$T/xfs.img" || fail "mkfs.xfs"
	mkdir -p "$T/xfs"
	mount -o loop "$T/xfs.img" "$T/xfs" 2>/dev/null || skip "no loop mount here"
	trap on_exit EXIT
	mkfs.ext4 -q -F -b 4096 "$T/xfs/disk.img" 128M >/dev/null 2>&1 || fail "mkfs.ext4"
	"$MKCOW" -q "$T/xfs/disk.cow" "$T/xfs/disk.img" || fail "uml_mkcow"
	start_guest g3 ubda="$T/xfs/disk.cow,$T/xfs/disk.img"
	n0=$(last_rec g3)
	expect_status 0 "$BK" -j -u "$T/uml" g3 "$T/xfs/b"
	[ "$(json_str "$T/xfs/b/manifest.json" method)" = reflink ] ||
		fail "method $(json_str "$T/xfs/b/manifest.json" method), expected reflink"
	echo "reflink: pause $(json_num "$T/xfs/b/manifest.json" pause_ms) ms"
	# Across filesystems: no reflink, the tracked copy.
	expect_status 0 "$BK" -j -u "$T/uml" g3 "$T/b-ext4"
	[ "$(json_str "$T/b-ext4/manifest.json" method)" != reflink ] || fail "reflink across filesystems"
	expect_status 0 "$BK" -q -m reflink -c -u "$T/uml" g3 "$T/xfs/bz"
	assert_running g3 "after reflink backups"
	stop_guest g3
	trap - EXIT
	merged_check "$T/xfs/b/ubd0.cow" "$n0" >/dev/null
	merged_check "$T/b-ext4/ubd0.cow" "$n0" >/dev/null
	expect_status 0 "$BK" verify "$T/xfs/bz"
	umount "$T/xfs" || fail "umount"
}

# FIFOs (and devices) named by the user, a guest or a manifest must never
# block an open: each is refused at once, in one line, leaving nothing.
t_fifo() {
	mkfifo "$T/fifo" || fail "mkfifo"
	expect_status 4 timeout 10 "$BK" --offline "$T/fifo" "$T/d1"
	err_has "fifo: not a regular file or block device"
	[ ! -e "$T/d1" ] || fail "destination created for a FIFO"
	# A guest whose ubd0 is a FIFO, and whose umid directory has a FIFO as pid.
	mkdir -p "$T/uml/fake"
	mkfifo "$T/uml/fake/pid"
	start_fake "$T/uml/fake/mconsole" "$T/fifo"
	expect_status 4 timeout 10 "$BK" -t 2 -u "$T/uml" fake "$T/d2"
	err_has "ubd0: $T/fifo: not a regular file or block device"
	stop_fake "$T/uml/fake/mconsole"
	[ ! -e "$T/d2" ] || fail "destination created for a FIFO"
	# restore and verify: FIFOs as input, as manifest, as a backup file.
	expect_status 1 timeout 10 "$BK" restore "$T/fifo" "$T/out.cow"
	err_has "not a regular file or block device"
	[ ! -e "$T/out.cow" ] || fail "restore from a FIFO left its output"
	mkdir "$T/v"
	mkfifo "$T/v/manifest.json"
	expect_status 1 timeout 10 "$BK" verify "$T/v"
	err_has "manifest.json: not a regular file or block device"
	small_cow x
	expect_status 0 "$BK" -q --offline "$T/x.cow" "$T/b"
	rm "$T/b/ubd0.cow"
	mkfifo "$T/b/ubd0.cow"
	expect_status 1 timeout 10 "$BK" verify "$T/b"
	err_has "ubd0.cow: not a regular file or block device"
}

# A guest that answers every request with empty `more` parts, each well
# within the timeout, never completing: the timeout is per command.
t_trickle() {
	small_cow x
	mkdir -p "$T/uml/fake"
	S=$T/uml/fake/mconsole
	FAKE_TRICKLE='*' start_fake "$S" "$T/x.cow"
	t0=$(date +%s%N)
	expect_status 3 timeout 20 "$BK" -t 0.5 "$S" "$T/d1"
	t1=$(date +%s%N)
	err_has "no reply to 'version' in 0.5 s"
	[ $(( (t1 - t0) / 1000000 )) -lt 3000 ] || fail "took $(( (t1 - t0) / 1000000 )) ms for a 0.5 s timeout"
	[ ! -e "$T/d1" ] || fail "destination created for a mute guest"
	stop_fake "$S"

	# `stop` and `go` trickle: one message, saying the guest may be stopped.
	FAKE_TRICKLE='stop go' start_fake "$S" "$T/x.cow"
	expect_status 3 timeout 20 "$BK" --no-sync -t 0.3 "$S" "$T/d2"
	err_has "no reply to 'stop' in 0.3 s"
	err_has "may still be stopped"
	! grep -q "is running" err.txt || fail "says the guest is running: $(cat err.txt)"
	no_backup "$T/d2"
	stop_fake "$S"

	# Only `stop` trickles: `go` is answered, so the guest runs.
	FAKE_TRICKLE='stop' start_fake "$S" "$T/x.cow"
	expect_status 3 timeout 20 "$BK" --no-sync -t 0.3 "$S" "$T/d3"
	err_has "no reply to 'stop' in 0.3 s.*the guest is running"
	no_backup "$T/d3"
	stop_fake "$S"

	# SIGTERM while waiting for `stop`, then `go` unanswered: one line that
	# does not claim the guest runs.
	FAKE_TRICKLE='stop go' start_fake "$S" "$T/x.cow"
	timeout 20 "$BK" --no-sync -t 0.6 "$S" "$T/d4" >out.txt 2>err.txt &
	bk=$!
	i=0
	while ! grep -qx stop "$S.log" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	kill -TERM $bk
	wait $bk
	st=$?
	stop_fake "$S"
	[ $st = 7 ] || fail "SIGTERM: exit $st: $(cat err.txt)"
	[ "$(wc -l <err.txt)" = 1 ] || fail "SIGTERM: not one line: $(cat err.txt)"
	err_has "interrupted by signal 15; the guest may still be stopped"
	no_backup "$T/d4"
}

# Checks that check nothing must fail: a manifest that does not parse,
# lists no devices, has a key twice, an entry without checksums (no chunk
# table, no 0.2.0 checksums), or a table that is not the one it names.
t_manifest_checks() {
	small_cow x
	expect_status 0 "$BK" -q -c --offline "$T/x.cow" "$T/b"
	M=$T/b/manifest.json
	cp "$M" "$T/good.json"
	printf '{"devices": [' >"$M"
	expect_status 1 "$BK" verify "$T/b"
	err_has "not a uml_backup manifest"
	expect_status 1 "$BK" restore "$T/b/ubd0.ubdx.lz4" "$T/r.cow"
	err_has "not a uml_backup manifest"
	[ ! -e "$T/r.cow" ] || fail "restore went on without its manifest"
	printf '{"format": "ubdkit-backup", "version": 1, "devices": []}\n' >"$M"
	expect_status 1 "$BK" verify "$T/b"
	err_has "lists no devices"
	expect_status 1 "$BK" restore "$T/b/ubd0.ubdx.lz4" "$T/r.cow"
	err_has "lists no devices"
	# The same key twice, the empty list first or last.
	python3 -c 'import sys; t = open(sys.argv[1]).read().rstrip(); print("{\"devices\": [], " + t[1:])' \
		"$T/good.json" >"$M"
	expect_status 1 "$BK" verify "$T/b"
	err_has "duplicate object key"
	python3 -c 'import sys; t = open(sys.argv[1]).read().rstrip(); print(t[:-1] + ", \"devices\": []}")' \
		"$T/good.json" >"$M"
	expect_status 1 "$BK" verify "$T/b"
	err_has "duplicate object key"
	expect_status 1 "$BK" restore "$T/b/ubd0.ubdx.lz4" "$T/r.cow"
	# A NUL in a key would make a second "devices" too.
	sed 's/"devices"/"devices\\u0000x"/' "$T/good.json" >"$M"
	expect_status 1 "$BK" verify "$T/b"
	# An entry without its checksums.
	python3 -c 'import json, sys; m = json.load(open(sys.argv[1]))
for d in m["devices"]:
    del d["chunks"], d["chunks_xxh128"]
print(json.dumps(m))' "$T/good.json" >"$M"
	grep -q chunks "$M" && fail "the test's sed left the chunk keys: $(cat "$M")"
	expect_status 1 "$BK" restore "$T/b/ubd0.ubdx.lz4" "$T/r.cow"
	err_has "has no checksums"
	[ ! -e "$T/r.cow" ] || fail "restore without checksums left its output"
	expect_status 1 "$BK" verify "$T/b"
	err_has "incomplete entry"
	# Another table than the manifest names (its digest differs).
	sed 's/"chunks_xxh128": "[0-9a-f]/"chunks_xxh128": "x/' "$T/good.json" >"$M"
	expect_status 1 "$BK" restore "$T/b/ubd0.ubdx.lz4" "$T/r.cow"
	err_has "ubd0.chunks: not the table its manifest names (digest differs"
	[ ! -e "$T/r.cow" ] || fail "restore with another table left its output"
	expect_status 1 "$BK" verify "$T/b"
	err_has "not the table its manifest names"
	cp "$T/good.json" "$M"
	expect_status 0 "$BK" verify "$T/b"
	expect_status 0 "$BK" restore "$T/b/ubd0.ubdx.lz4" "$T/r.cow"
	grep -q "chunk table matches" err.txt || fail "restore did not check: $(cat err.txt)"
}

# restore's OUTPUT: a directory, an empty name, a device node or FIFO.
t_restore_targets() {
	small_cow x
	expect_status 0 "$BK" -q -c --offline "$T/x.cow" "$T/b"
	mkdir "$T/dir"
	expect_status 5 "$BK" restore -f "$T/b/ubd0.ubdx.lz4" "$T/dir"
	err_has "dir: is a directory"
	expect_status 5 "$BK" restore "$T/b/ubd0.ubdx.lz4" "$T/dir/"
	err_has "is a directory"
	expect_status 2 "$BK" restore "$T/b/ubd0.ubdx.lz4" ''
	err_has "OUTPUT is an empty name"
	if [ "$(id -u)" = 0 ] && mknod "$T/null" c 1 3 2>/dev/null; then
		expect_status 5 "$BK" restore -f "$T/b/ubd0.ubdx.lz4" "$T/null"
		err_has "not a regular file"
		[ -c "$T/null" ] || fail "restore -f replaced a character device"
	else
		echo "NOTE: not root: a FIFO stands in for the device node"
	fi
	mkfifo "$T/fifo"
	expect_status 5 timeout 10 "$BK" restore -f "$T/b/ubd0.ubdx.lz4" "$T/fifo"
	err_has "not a regular file"
	[ -p "$T/fifo" ] || fail "restore -f replaced a FIFO"
	only_files "$T" b dir fifo x.cow x.img out.txt err.txt $([ -e "$T/null" ] && echo null)
}

# restore -f over a COW that nbdkit-ubd-plugin serves (a backup's stream
# and a chain point's): refused, exit 6, and the client's next write and
# flush land in the file under the name (a replaced file would take them
# unlinked).  Once the server stops, -f replaces it.
t_restore_over_served_cow() {
	# Debian's python3 with python3-libnbd, whatever python3 comes first.
	/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "SKIP: python3-libnbd not installed"
	small_cow x
	randfile "$T/data" 65536
	"$COWUTIL" write "$T/x.cow" 1048576 "$T/data" || fail "cowutil write"
	expect_status 0 "$BK" -q -c --offline "$T/x.cow" "$T/b"
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$T/chain"
	point=$T/chain/$(points "$T/chain")
	"$MKCOW" -q "$T/g.cow" "$T/x.img" || fail "uml_mkcow"
	ino=$(stat -c %i "$T/g.cow")
	nbd_serve "$T/g.cow"
	for stream in "$T/b/ubd0.ubdx.lz4" "$point/ubd0.ubdx"; do
		expect_status 6 "$BK" restore -f "$stream" "$T/g.cow"
		grep -q "^uml_backup: $T/g.cow: in use: process $nbd_pid holds a lock on it.*not replaced" err.txt ||
			fail "$stream: $(cat err.txt)"
	done
	/usr/bin/python3 -c 'import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
h.pwrite(b"\x5a" * 4096, 65536)
h.flush()' "$nbd_uri" || fail "NBD client write"
	nbd_stop
	[ "$(stat -c %i "$T/g.cow")" = "$ino" ] || fail "the served COW was replaced"
	head -c 4096 /dev/zero | tr '\0' '\132' >"$T/want"
	"$COWUTIL" merged "$T/g.cow" "$T/g.img" || fail "cowutil merged"
	cmp -s -n 4096 -i 0:65536 "$T/want" "$T/g.img" || fail "the client's write is not in g.cow"
	expect_status 0 "$BK" restore -q -f "$point/ubd0.ubdx" "$T/g.cow"
	"$COWUTIL" merged "$T/x.cow" "$T/x.merged" && "$COWUTIL" merged "$T/g.cow" "$T/g.img" &&
		cmp "$T/x.merged" "$T/g.img" || fail "restored once released: wrong"
}

# restore -f never writes over what it reads: its input, a file of its
# backup, or a file of any point of the chain it applies (exit 5, the
# backup unchanged and still verifying).
t_restore_never_over_its_input() {
	small_cow x
	printf 'x data' | dd of="$T/x.cow" bs=1 seek=200000 conv=notrunc status=none
	expect_status 0 "$BK" -q -c --offline "$T/x.cow" "$T/b"
	cp "$T/x.cow" "$T/x0.cow"
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$T/chain"
	printf 'later' | dd of="$T/x.cow" bs=1 seek=900000 conv=notrunc status=none
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$T/chain"
	set -- $(points "$T/chain")
	sums=$(cd "$T" && find b chain -type f | sort | xargs md5sum)
	expect_status 5 "$BK" restore -f "$T/b/ubd0.ubdx.lz4" "$T/b/ubd0.ubdx.lz4"
	err_has "is the input"
	expect_status 5 "$BK" restore -f -d ubd0 "$T/b" "$T/b/ubd0.chunks"
	err_has "a file of the backup being restored"
	expect_status 5 "$BK" restore -f "$T/b" "$T/b/manifest.json"
	expect_status 5 "$BK" restore -f "$T/chain/$2" "$T/chain/$1/ubd0.ubdx"
	err_has "a file of point $1 of the chain being restored"
	expect_status 5 "$BK" restore -f "$T/chain/$2/ubd0.ubdx" "$T/chain/$2/ubd0.ubdx"
	[ "$sums" = "$(cd "$T" && find b chain -type f | sort | xargs md5sum)" ] ||
		fail "a refused restore changed the backups"
	expect_status 0 "$BK" verify "$T/chain"
	expect_status 0 "$BK" verify "$T/b"
	# A symbolic link named as OUTPUT is replaced, not its target.
	ln -s "$T/b/ubd0.chunks" "$T/link.cow"
	expect_status 0 "$BK" restore -f "$T/b" "$T/link.cow"
	[ ! -L "$T/link.cow" ] || fail "the link was not replaced"
	cmp "$T/link.cow" "$T/x0.cow" || fail "restored through a link: wrong"
	expect_status 0 "$BK" verify "$T/b"
}

# restore takes a point directory as verify and export do: a plain
# backup's, a chain point's (its chain applied), one device of several
# chosen with -d; the result is the COW that was backed up.
t_restore_point_dir() {
	small_cow x
	small_cow y
	printf 'x data' | dd of="$T/x.cow" bs=1 seek=200000 conv=notrunc status=none
	printf 'y data' | dd of="$T/y.cow" bs=1 seek=300000 conv=notrunc status=none
	expect_status 0 "$BK" -q -c --offline "$T/x.cow" "$T/b"
	expect_status 0 "$BK" restore "$T/b" "$T/r.cow"
	cmp "$T/r.cow" "$T/x.cow" || fail "restore of a backup directory differs"
	expect_status 2 "$BK" restore "$T/b"
	err_has "a point directory; name the OUTPUT"
	expect_status 0 "$BK" -q --offline "$T/x.cow" "$T/y.cow" "$T/two"
	expect_status 4 "$BK" restore "$T/two" "$T/r2.cow"
	err_has "2 devices in this backup: choose one with -d"
	expect_status 4 "$BK" restore -d ubd5 "$T/two" "$T/r2.cow"
	err_has "no device ubd5"
	expect_status 0 "$BK" restore -d ubd1 "$T/two" "$T/r2.cow"
	cmp "$T/r2.cow" "$T/y.cow" || fail "restore -d ubd1 differs from the second COW"
	expect_status 2 "$BK" restore -d 0 "$T/b/ubd0.ubdx.lz4" "$T/r3.cow"
	err_has "-d chooses a device of a point directory"
	expect_status 0 "$BK" -q -i -c --offline "$T/x.cow" "$T/chain"
	printf 'later' | dd of="$T/x.cow" bs=1 seek=900000 conv=notrunc status=none
	expect_status 0 "$BK" -q -i -c --offline "$T/x.cow" "$T/chain"
	set -- $(points "$T/chain")
	expect_status 0 "$BK" restore "$T/chain/$2" "$T/r4.cow"
	cmp "$T/r4.cow" "$T/x.cow" || fail "restore of an incremental point directory differs"
}

# The README's backup examples, run as written against a running guest
# named web1 (its umid under ~/.uml, HOME pointed at the test): only the
# /backups directory, the guest's COW names and the example point id are
# put in their places.
t_readme_backup_examples() {
	trap on_exit EXIT
	make_disk disk 32
	start_guest web1 ubda="$T/disk.cow,$T/disk.img"
	ln -s "$T/uml" "$T/.uml"
	mkdir "$T/backups"
	sed -n '/^## Backups/,/^## /p' "$ROOT/README.md" | sed -n 's/^    \(uml_backup .*\)/\1/p' |
		sed 's/ *#.*//' >"$T/examples"
	[ "$(grep -c . "$T/examples")" -ge 6 ] || fail "the README's examples were not found"
	while read -r cmd; do
		case $cmd in
		*"/backups/web1-chain/"[0-9]*)
			point=$(points "$T/backups/web1-chain" | tail -n 1)
			cmd=$(echo "$cmd" | sed "s|web1-chain/[0-9TZ.]*|web1-chain/$point|") ;;
		esac
		cmd=$(echo "$cmd" | sed -e "s|/backups|$T/backups|g" -e "s| web1.cow| $T/restored-\$n.cow|")
		n=$(( ${n:-0} + 1 ))
		echo "    $cmd"
		(cd "$T" && HOME=$T PATH="$B/bin:$PATH" n=$n eval "$cmd") >out.txt 2>err.txt ||
			fail "README example '$cmd' failed: $(cat err.txt)"
	done <"$T/examples"
	stop_guest web1
	trap - EXIT
	restored=$(ls "$T"/restored-*.cow | wc -l)
	[ "$restored" -ge 2 ] || fail "the examples restored $restored COW files"
	for r in "$T"/restored-*.cow; do
		"$COWUTIL" merged "$r" "$T/m.img" >/dev/null || fail "merged view of $r"
		e2fsck -fy "$T/m.img" >/dev/null 2>&1
		e2fsck -fn "$T/m.img" >/dev/null 2>&1 || fail "$r: not a clean file system"
	done
}

# restore - (streams on stdin): a stray byte after a whole stream is
# named as that, at its byte, not as a cut header; streams that build a
# 0-byte file, a file that is not a COW, or a COW whose data offset is not
# where their chunk grid starts (no backup writes them) are refused, and
# nothing is left.
t_restore_stdin_refused() {
	XS=$B/tests/xs_test
	small_cow x
	randfile "$T/d" 65536
	"$COWUTIL" write "$T/x.cow" 8192 "$T/d" || fail "cowutil write"
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$T/chain"
	s="$T/chain/$(points "$T/chain")/ubd0.ubdx"
	n=$(size_of "$s")
	{ cat "$s"; printf 'X'; } >"$T/stray.ubdx"
	expect_status 1 "$BK" restore - "$T/r.cow" <"$T/stray.ubdx"
	err_has "^uml_backup: stdin: stream byte $n: 1 stray byte after the end of stream 1 (not a stream: no magic)$"
	{ cat "$s"; head -c 100 /dev/zero; } >"$T/stray.ubdx"
	expect_status 1 "$BK" restore - "$T/r.cow" <"$T/stray.ubdx"
	err_has "stream byte $n: stray bytes after the end of stream 1 (not a stream: no magic)"
	{ cat "$s"; head -c 20 "$s"; } >"$T/cut.ubdx"
	expect_status 1 "$BK" restore - "$T/r.cow" <"$T/cut.ubdx"
	err_has "stream byte $n: 20 bytes after the end of stream 1: a next stream cut inside its header"
	"$XS" --stream 0 </dev/null >"$T/empty.ubdx" || fail "xs_test --stream"
	expect_status 1 "$BK" restore - "$T/r.cow" <"$T/empty.ubdx"
	err_has "stdin: stream 1 (byte 0): builds a file of 0 bytes, not a COW file"
	"$XS" --stream 0 <"$T/d" >"$T/notcow.ubdx" || fail "xs_test --stream"
	expect_status 1 "$BK" restore - "$T/r.cow" <"$T/notcow.ubdx"
	err_has "stdin: the stream builds a file that is not a COW file (the restored file: bad magic"
	"$XS" --stream 4096 <"$T/x.cow" >"$T/grid.ubdx" || fail "xs_test --stream"
	expect_status 1 "$BK" restore - "$T/r.cow" <"$T/grid.ubdx"
	err_has "builds a COW file whose data starts at byte $(info_get "$T/x.cow" data_offset), but its chunk grid at 4096"
	[ ! -e "$T/r.cow" ] || fail "a refused restore left its output"
	expect_status 0 "$BK" restore - "$T/r.cow" <"$s"
	cmp "$T/r.cow" "$T/x.cow" || fail "the stream alone does not restore the COW"
}

# Names with newlines and bytes that are not UTF-8, and very long paths:
# errors stay one line and keep their reason; --json stays valid JSON.
t_hostile_names() {
	odd=$(printf 'n\351w\nline')
	mkdir "$T/$odd"
	truncate -s 4M "$T/$odd/x.img"
	"$MKCOW" -q "$T/$odd/x.cow" "$T/$odd/x.img" || fail "uml_mkcow"
	expect_status 0 "$BK" -j --offline "$T/$odd/x.cow" "$T/b"
	[ "$(wc -l <err.txt)" = 1 ] || fail "the summary is not one line: $(cat err.txt)"
	python3 -c '
import json, sys
m = json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))
assert m["devices"][0]["cow"].endswith("/n\xe9w\nline/x.cow"), m["devices"][0]["cow"]
' out.txt || fail "--json is not valid JSON: $(cat out.txt)"
	expect_status 0 "$BK" verify "$T/b"
	expect_status 0 "$BK" verify -j "$T/b"
	python3 -c 'import json, sys; json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))' out.txt ||
		fail "verify --json is not valid JSON"
	expect_status 4 "$BK" --offline "$T/$odd/nothing.cow" "$T/b2"
	err_has 'n\\xe9w\\nline/nothing.cow: cannot open'
	# A path of over 600 bytes to a COW of an unknown version.
	long=$T/$(printf 'd%.0s' $(seq 200))/$(printf 'e%.0s' $(seq 200))/$(printf 'f%.0s' $(seq 200))
	mkdir -p "$long"
	truncate -s 4M "$long/x.img"
	"$MKCOW" -q "$long/x.cow" "$long/x.img" || fail "uml_mkcow"
	put_int "$long/x.cow" 4 99 4 be
	expect_status 4 "$BK" --offline "$long/x.cow" "$T/b3"
	err_has "unknown COW version 99"
}

# No leaks (valgrind): -d's list was strdup'ed and never freed.
t_no_leaks() {
	command -v valgrind >/dev/null || skip "no valgrind"
	small_cow x
	expect_status 0 valgrind -q --leak-check=full --show-leak-kinds=definite \
		--errors-for-leak-kinds=definite --error-exitcode=99 \
		"$BK" -q -d 0,1 --offline "$T/x.cow" "$T/b"
	[ ! -s err.txt ] || fail "valgrind: $(cat err.txt)"
}

# Backups made by uml_backup 0.2.0 (tests/backup/fixtures/v0.2.0/make.sh):
# verified and restored byte for byte; the backing file's name is not UTF-8.
t_old_backups() {
	cp -r "$ROOT/tests/backup/fixtures/v0.2.0/plain" "$ROOT/tests/backup/fixtures/v0.2.0/lz4" \
		"$ROOT/tests/backup/fixtures/v0.2.0/gzip" "$T/"
	backing=$(printf 'n\351w.img')
	truncate -s 4M "$backing"
	touch -d @1700000000 "$backing"
	for d in plain lz4 gzip; do
		expect_status 0 "$BK" verify "$d"
	done
	expect_status 0 "$BK" verify -j lz4
	grep -q '"ok": true}$' out.txt || fail "verify -j: $(cat out.txt)"
	expect_status 0 "$BK" restore lz4/ubd0.cow.lz4 lz4.cow
	grep -q "checksums match" err.txt || fail "restore did not check: $(cat err.txt)"
	cmp lz4.cow plain/ubd0.cow || fail "lz4 restore differs"
	expect_status 0 "$BK" restore gzip/ubd0.cow.gz gzip.cow
	cmp gzip.cow plain/ubd0.cow || fail "gzip restore differs"
	# Exported as a stream (converted from the COW file), restored from it.
	for d in plain lz4 gzip; do
		"$BK" -q export "$d" >"$d.ubdx" || fail "export $d"
		expect_status 0 "$BK" restore - "$d-x.cow" <"$d.ubdx"
		cmp "$d-x.cow" plain/ubd0.cow || fail "export $d | restore - differs"
	done
	# Its backing file changed: no longer bootable, so no longer verified.
	touch -d @1700000001 "$backing"
	expect_status 1 "$BK" verify plain
	err_has "the backing file changed"
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

# A chain of a full point and three incrementals taken while the guest
# writes records, with Debian's linux.uml (no tracking in its kernel: the
# comparison source).  Each point restored holds every record written
# before its backup started and none written after it returned; verify
# passes; prune keeps the newest two, byte-equal to before.
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

# A damaged or missing link is named by verify, and a chain with a hole
# takes no new point; previous points are left as they were.
t_chain_damage() {
	offline_chain "$T/chain" 4 -c
	set -- $(points "$T/chain")
	expect_status 0 "$BK" verify "$T/chain/$4"
	cp -r "$T/chain" "$T/bad"
	printf 'X' | dd of="$T/bad/$3/ubd0.chunks" bs=1 seek=70 conv=notrunc status=none
	# One line per damaged point and file: the point itself, and its child's link.
	"$BK" verify -q "$T/bad" >out.txt 2>err.txt && fail "verify passed a damaged chain"
	grep -q "$3/ubd0.ubdx.lz4: ubd0.chunks: not a valid chunk table at byte .*: digest mismatch" err.txt ||
		fail "damage not named: $(cat err.txt)"
	grep -q "$4/ubd0.ubdx.lz4: parent $3: ubd0.chunks" err.txt || fail "the child's link not named: $(cat err.txt)"
	[ "$(wc -l <err.txt)" = 2 ] || fail "verify: $(cat err.txt)"
	rm -r "$T/bad"
	cp -r "$T/chain" "$T/bad"
	rm -r "${T:?}/bad/$2"
	expect_status 1 "$BK" verify -q "$T/bad/$4"
	err_has "missing or damaged link: point $2 is missing"
	sums=$(cd "$T/bad" && find . -type f | sort | xargs md5sum)
	expect_status 8 "$BK" -i --offline "$T/x.cow" "$T/bad"
	err_has "missing or damaged link"
	[ "$sums" = "$(cd "$T/bad" && find . -type f | sort | xargs md5sum)" ] || fail "a refused run changed the chain"
	expect_status 1 "$BK" restore "$T/bad/$4/ubd0.ubdx.lz4" "$T/r.cow"
	err_has "point $2 is missing"
	[ ! -e "$T/r.cow" ] || fail "a failed restore left its output"
}

# A hostile record beside the COW: a CLEAN header claiming an 8 GiB device
# and 2^29 runs, over a sparse file made 8 GiB to match.  The offline
# incremental refuses it from its header (the runs against the 4 MiB
# device's 64 blocks), without reading the file's holes, and compares,
# saying why; the point restores to the COW.
t_chain_cbt_record_bounded() {
	small_cow x
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$T/chain"
	printf 'changed' | dd of="$T/x.cow" bs=1 seek=200000 conv=notrunc status=none
	python3 - "$T/x.cow.cbt" <<'EOS' || fail "python3"
import struct, sys
runs = 1 << 29
h = bytearray(256)
h[0:8] = b"UBDKCBTR"
struct.pack_into("<IIIII", h, 8, 1, 256, 2, 0, 65536)
struct.pack_into("<Q", h, 32, 8 << 30)
struct.pack_into("<QQ", h, 80, runs, runs)
with open(sys.argv[1], "wb") as f:
    f.write(h)
    f.truncate(256 + 16 * runs + 4)
EOS
	t0=$(date +%s%N)
	expect_status 0 timeout 60 "$BK" -i -j --offline "$T/x.cow" "$T/chain"
	echo "offline incremental beside an 8 GiB hostile record: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
	[ "$(json_str out.txt changes)" = comparison ] || fail "changes: $(json_str out.txt changes)"
	grep -q '"changes_note": "[^"]*x.cow.cbt: its header says 536870912 runs, more than the 64 blocks of the device (4194304 bytes)"' out.txt ||
		fail "note: $(json_str out.txt changes_note)"
	grep -q "changes: comparison (.*536870912 runs" err.txt || fail "summary: $(cat err.txt)"
	expect_status 0 "$BK" restore "$T/chain/$(points "$T/chain" | tail -n 1)/ubd0.ubdx" "$T/r.cow"
	cmp "$T/r.cow" "$T/x.cow" || fail "the point differs from the COW"
	# Within the bound on a 1 TiB device (2^28 runs of 4 KiB blocks, a
	# 4 GiB record made sparse): refused from its extents, not read.
	truncate -s 1T "$T/big.img" || fail "truncate"
	"$MKCOW" -q "$T/big.cow" "$T/big.img" || fail "uml_mkcow"
	expect_status 0 "$BK" -q -i --offline "$T/big.cow" "$T/bigchain"
	python3 - "$T/big.cow.cbt" <<'EOS' || fail "python3"
import struct, sys
runs = 1 << 28
h = bytearray(256)
h[0:8] = b"UBDKCBTR"
struct.pack_into("<IIIII", h, 8, 1, 256, 2, 0, 4096)
struct.pack_into("<Q", h, 88, runs)
with open(sys.argv[1], "wb") as f:
    f.write(h)
    f.truncate(256 + 16 * runs + 4)
EOS
	t0=$(date +%s%N)
	expect_status 0 timeout 60 "$BK" -i -j --offline "$T/big.cow" "$T/bigchain"
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	echo "offline incremental of 1 TiB beside a sparse 4 GiB record: $ms ms"
	json_str out.txt changes_note | grep -q "big.cow.cbt: its body has holes (268435456 runs in a sparse file)" ||
		fail "note: $(json_str out.txt changes_note)"
}

# The comparison source of an incremental reads the COW's data extents,
# not the whole 64 KiB chunks around them: 2,000 4 KiB sectors scattered
# over a 1 GiB device (about 8 MiB allocated, most in chunks of their own)
# are about 8 MiB read, as the summary says; the point restores to the COW.
t_chain_compare_reads_data() {
	truncate -s 1G "$T/x.img" || fail "truncate"
	"$MKCOW" -q -s 4096 "$T/x.cow" "$T/x.img" || fail "uml_mkcow"
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$T/chain"
	"$COWUTIL" scatter "$T/x.cow" 2000 7 || fail "cowutil scatter"
	expect_status 0 "$BK" -i --offline "$T/x.cow" "$T/chain"
	grep -q "changes: comparison (offline: ubd0 has no tracking record)" err.txt ||
		fail "not a comparison: $(cat err.txt)"
	alloc=$(( $(blocks_of "$T/x.cow") * 512 ))
	rd=$(read_mib)
	echo "2,000 scattered sectors: $(chunks_stored) chunks stored, $rd MiB read," \
		"$alloc bytes allocated"
	awk -v r="$rd" -v a="$alloc" 'BEGIN { exit !(r * 1048576 <= a * 1.1 + 65536) }' ||
		fail "read $rd MiB for $alloc bytes allocated"
	expect_status 0 "$BK" restore "$T/chain/$(points "$T/chain" | tail -n 1)/ubd0.ubdx" "$T/r.cow"
	"$COWUTIL" same "$T/x.cow" "$T/r.cow" >/dev/null || fail "the point differs from the COW"
}

# A full point reads a chunk that lies inside a data extent in one go: its
# seeks follow the COW's extents, not its 64 KiB chunks (chunk_walk sought
# each chunk's extents again: two lseeks per chunk, 2,048 and more here).
t_chain_full_point_seeks() {
	command -v strace >/dev/null || skip "no strace"
	strace -f -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	truncate -s 64M "$T/x.img" || fail "truncate"
	"$MKCOW" -q "$T/x.cow" "$T/x.img" || fail "uml_mkcow"
	head -c 64M /dev/urandom >"$T/data" || fail "head"
	"$COWUTIL" write "$T/x.cow" 0 "$T/data" >/dev/null || fail "cowutil write"
	strace -f -c -e trace=lseek -o "$T/st" "$BK" -q -i --offline "$T/x.cow" "$T/chain" ||
		fail "uml_backup -i: $?"
	n=$(awk '$NF == "lseek" { print $4 }' "$T/st")
	echo "a full point of 64 MiB of data (1,024 chunks): ${n:-no} lseeks"
	[ -n "$n" ] && [ "$n" -lt 256 ] || fail "${n:-no} lseeks for 1,024 chunks of data"
	expect_status 0 "$BK" restore "$T/chain/$(points "$T/chain" | tail -n 1)/ubd0.ubdx" "$T/r.cow"
	"$COWUTIL" same "$T/x.cow" "$T/r.cow" >/dev/null || fail "the point differs from the COW"
}

# A parent of another guest's COW or another master is refused (exit 8),
# the chain untouched.
t_chain_other_guest() {
	small_cow x
	"$MKCOW" -q "$T/y.cow" "$T/x.img" || fail "uml_mkcow"
	truncate -s 4M "$T/z.img"
	"$MKCOW" -q "$T/z.cow" "$T/z.img" || fail "uml_mkcow"
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$T/chain"
	sums=$(cd "$T/chain" && find . -type f | sort | xargs md5sum)
	expect_status 8 "$BK" -i --offline "$T/y.cow" "$T/chain"
	err_has "another COW file"
	# The same COW path over another master.
	mv "$T/x.cow" "$T/x.orig"
	cp "$T/z.cow" "$T/x.cow"
	expect_status 8 "$BK" -i --offline "$T/x.cow" "$T/chain"
	err_has "another master"
	expect_status 8 "$BK" -i --offline "$T/x.orig" "$T/y.cow" "$T/chain"
	err_has "another set of devices"
	[ "$sums" = "$(cd "$T/chain" && find . -type f | sort | xargs md5sum)" ] || fail "a refused run changed the chain"
	[ "$(points "$T/chain" | wc -l)" = 1 ] || fail "a refused run left a point: $(ls "$T/chain")"
}

# prune never follows a symbolic link: a stray .prune-* link, or a point
# it would remove or rewrite (the oldest, the first kept) that is a link,
# is refused in one line (exit 8) before anything is removed or swapped;
# the links' targets and the chain stay as they were.
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

# restore_points CHAINDIR DIR: each point's ubd0 restored to DIR/POINT.cow.
restore_points() {
	for _rp in $(points "$1"); do
		rm -f "$2/$_rp.cow"
		"$BK" -q restore "$1/$_rp/ubd0.ubdx" "$2/$_rp.cow" 2>err.txt ||
			fail "${3:-}point $_rp does not restore: $(cat err.txt)"
	done
}

# A prune killed at any unlink, rmdir or rename (strace kills it at the
# Nth call of one) leaves a chain that verify accepts, each point
# restoring to the bytes it did before; prune run again finishes the job.
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

# prune refuses a chain that verify rejects (exit 8, naming the point and
# its problem), removing nothing: a damaged table of a point it would
# remove, or of a kept point that is not the one it rewrites.
t_prune_damaged() {
	offline_chain "$T/chain" 4
	set -- $(points "$T/chain")
	for p in "$1" "$4"; do
		rm -rf "$T/bad"
		cp -a "$T/chain" "$T/bad"
		printf 'X' | dd of="$T/bad/$p/ubd0.chunks" bs=1 seek=70 conv=notrunc status=none
		"$BK" verify -q "$T/bad" >out.txt 2>err.txt && fail "verify passed a damaged chain"
		sums=$(tree_sums "$T/bad")
		expect_status 8 "$BK" prune --keep 2 "$T/bad"
		err_has "$p: ubd0.ubdx: ubd0.chunks: not a valid chunk table"
		err_has "nothing removed"
		[ "$sums" = "$(tree_sums "$T/bad")" ] || fail "prune of a damaged chain changed files"
	done
	# Nothing to prune: still refused.
	expect_status 8 "$BK" prune --keep 4 "$T/bad"
}

# verify checks a chain point's manifest size and compression against its
# stream: a size of 1 GiB, or compression zstd, gzip or lz4 on a raw
# stream, fails; so does another compression on a stand-alone backup's.
t_verify_manifest_fields() {
	offline_chain "$T/chain" 1
	p=$(points "$T/chain")
	m=$T/chain/$p/manifest.json
	cp "$m" "$T/m.orig"
	for edit in '.devices[0].size = 1073741824' '.devices[0].compression = "zstd"' \
		'.devices[0].compression = "gzip"' '.devices[0].compression = "lz4"' \
		'.devices[0].sectorsize = 4096' '.devices[0].layout = "v1"' \
		'.devices[0].stored_bytes = 1'; do
		jq "$edit" "$T/m.orig" >"$m" || fail "jq"
		for dir in "$T/chain" "$T/chain/$p"; do
			expect_status 1 "$BK" verify "$dir"
			case $edit in
			*sectorsize*) err_has "sector size 512, the manifest 4096" ;;
			*layout*) err_has "layout v3, the manifest says v1" ;;
			*stored_bytes*) err_has "the manifest's stored_bytes says 1" ;;
			*size*) err_has "size" ;;
			*) err_has "compression" ;;
			esac
		done
		expect_status 8 "$BK" prune --keep 1 "$T/chain"
	done
	cp "$T/m.orig" "$m"
	expect_status 0 "$BK" verify "$T/chain"
	# A stand-alone compressed backup.
	expect_status 0 "$BK" -q -c --offline "$T/x.cow" "$T/b"
	cp "$T/b/manifest.json" "$T/m.orig"
	jq '.devices[0].compression = "gzip"' "$T/m.orig" >"$T/b/manifest.json" || fail "jq"
	expect_status 1 "$BK" verify "$T/b"
	err_has "compression"
}

# verify of a chain names a point directory that lost its manifest (it
# was passed over as a run that did not finish, and the point with it);
# an empty one, what a killed run leaves, is said but fails nothing.
t_verify_point_without_manifest() {
	offline_chain "$T/chain" 2
	set -- $(points "$T/chain")
	expect_status 0 "$BK" verify -q "$T/chain"
	mv "$T/chain/$2/manifest.json" "$T/m.json"
	expect_status 1 "$BK" verify -q "$T/chain"
	err_has "chain/$2: no manifest.json, but files"
	mv "$T/m.json" "$T/chain/$2/manifest.json"
	mkdir "$T/chain/29991231T235959.999Z"
	expect_status 0 "$BK" verify "$T/chain"
	err_has "29991231T235959.999Z: an empty point directory without a manifest"
	expect_status 0 "$BK" verify -q "$T/chain"
	[ ! -s err.txt ] || fail "verify -q said: $(cat err.txt)"
}

# A plain backup is a chain of one point: restore and verify read a plain
# backup and a chain point through one point reader and say what they did
# in one form (the same JSON keys, the same lines); a point's manifest is
# opened once.
t_point_one_form() {
	command -v strace >/dev/null || skip "no strace (Debian package strace)"
	small_cow x
	printf 'x data' | dd of="$T/x.cow" bs=1 seek=200000 conv=notrunc status=none
	expect_status 0 "$BK" -q -i -c --offline "$T/x.cow" "$T/chain"
	printf 'later' | dd of="$T/x.cow" bs=1 seek=900000 conv=notrunc status=none
	expect_status 0 "$BK" -q -c --offline "$T/x.cow" "$T/b"
	expect_status 0 "$BK" -q -i -c --offline "$T/x.cow" "$T/chain"
	set -- $(points "$T/chain")
	for p in "$T/b" "$T/chain/$2"; do
		expect_status 0 "$BK" restore -f -j "$p" "$T/r.cow"
		cmp "$T/r.cow" "$T/x.cow" || fail "$p: restored differs"
		jq -r 'keys_unsorted | join(",")' out.txt >>"$T/restore-keys" || fail "restore -j: $(cat out.txt)"
		grep -q "^uml_backup: restored $p to $T/r.cow (4.0 MiB, [0-9.]* MiB of data): [12] streams\{0,1\} applied (.*), chunk table matches the manifest's$" err.txt ||
			fail "$p: restore said: $(cat err.txt)"
		expect_status 0 "$BK" verify -j "$p"
		jq -r '.verified[] | keys_unsorted | join(",")' out.txt >>"$T/verify-keys" ||
			fail "verify -j: $(cat out.txt)"
		expect_status 0 "$BK" verify "$p"
		grep -q "^uml_backup: $p/ubd0.ubdx.lz4: OK$" err.txt || fail "$p: verify said: $(cat err.txt)"
	done
	[ "$(sort -u "$T/restore-keys" | wc -l)" = 1 ] || fail "restore -j keys: $(cat "$T/restore-keys")"
	[ "$(sort -u "$T/verify-keys" | wc -l)" = 1 ] || fail "verify -j keys: $(cat "$T/verify-keys")"
	grep -c "^uml_backup: $T/chain/$1/ubd0.ubdx.lz4: OK$" err.txt >/dev/null ||
		fail "verify of a point: its parent not said: $(cat err.txt)"
	for p in "$T/b" "$T/b/ubd0.ubdx.lz4"; do
		strace -f -e trace=open,openat -o "$T/trace" "$BK" -q restore -f "$p" "$T/r.cow" ||
			fail "restore $p under strace"
		[ "$(grep -c 'manifest\.json' "$T/trace")" = 1 ] ||
			fail "restore $p opened the manifest $(grep -c 'manifest\.json' "$T/trace") times"
	done
}

# The destination fills up in the middle of an incremental of a running
# guest: exit 5, the guest runs, no new point, the previous ones intact.
t_chain_full_disk() {
	[ "$(id -u)" = 0 ] || skip "not root: no tmpfs to fill"
	mkdir -p "$T/small"
	mount -t tmpfs -o size=48m tmpfs "$T/small" 2>/dev/null || skip "no tmpfs mount here"
	trap on_exit EXIT
	make_disk disk 64
	start_guest gf ubda="$T/disk.cow,$T/disk.img"
	expect_status 0 "$BK" -q -i -u "$T/uml" gf "$T/small/chain"
	sums=$(cd "$T/small/chain" && find . -type f | sort | xargs md5sum)
	# Leave 64 KiB free: the changed records and bulk data need more.
	dd if=/dev/zero of="$T/small/fill" bs=64k status=none 2>/dev/null
	truncate -s $(( $(stat -c %s "$T/small/fill") - 65536 )) "$T/small/fill"
	wait_records gf $(( $(last_rec gf) + 12 )) 60 || fail "guest stuck"
	expect_status 5 "$BK" -i -u "$T/uml" gf "$T/small/chain"
	err_has "No space left on device"
	assert_running gf "after a full destination"
	[ "$(points "$T/small/chain" | wc -l)" = 1 ] && [ "$(ls "$T/small/chain" | wc -l)" = 1 ] ||
		fail "a failed incremental left files: $(ls -A "$T/small/chain")"
	[ "$sums" = "$(cd "$T/small/chain" && find . -type f | sort | xargs md5sum)" ] ||
		fail "the previous point changed"
	rm "$T/small/fill"
	expect_status 0 "$BK" -q -i -u "$T/uml" gf "$T/small/chain"
	expect_status 0 "$BK" verify "$T/small/chain"
	stop_guest gf
	trap - EXIT
	umount "$T/small"
}

# Compressed backups are extent streams: their size and time follow the
# data, not the device.  An empty COW over a sparse 64 GiB backing file
# stores under 1 MiB; restore and verify read the stream (raw too), and
# damage or a cut is refused naming the byte.
t_stream_size() {
	truncate -s 64G "$T/big.img" || fail "truncate"
	"$MKCOW" -q "$T/big.cow" "$T/big.img" || fail "uml_mkcow"
	t0=$(date +%s%N)
	expect_status 0 "$BK" -q -c --offline "$T/big.cow" "$T/b"
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	sz=$(size_of "$T/b/ubd0.ubdx.lz4")
	echo "empty COW over 64 GiB: $sz bytes stored in $ms ms"
	[ "$sz" -lt 1048576 ] || fail "stored $sz bytes for an empty COW"
	manifest_keys "$T/b/manifest.json"
	[ "$(json_str "$T/b/manifest.json" kind)" = full ] || fail "kind not full"
	json_str "$T/b/manifest.json" point | grep -qx '[0-9a-f]\{32\}' || fail "point not 32 hex digits"
	json_str "$T/b/manifest.json" stream_xxh128 | grep -qx '[0-9a-f]\{32\}' ||
		fail "no stream_xxh128"
	expect_status 0 "$BK" verify "$T/b"
	# Again over it: refused, then replaced with -f (stream and table).
	expect_status 5 "$BK" -q -c --offline "$T/big.cow" "$T/b"
	expect_status 0 "$BK" -q -f -c --offline "$T/big.cow" "$T/b"
	expect_status 0 "$BK" verify "$T/b"
	# The chunk table of all 64 GiB against the manifest's (cmp would read them).
	expect_status 0 "$BK" restore "$T/b/ubd0.ubdx.lz4"
	err_has "chunk table matches the manifest's"
	[ "$(size_of "$T/b/ubd0.cow")" = "$(size_of "$T/big.cow")" ] || fail "restored size differs"
	[ "$(blocks_of "$T/b/ubd0.cow")" -lt 1024 ] || fail "restored COW is not sparse"
	# With data: 3 MiB at two places, gzip; the raw stream restores too.
	small_cow x
	randfile "$T/d" 1048576
	"$COWUTIL" write "$T/x.cow" 4096 "$T/d" || fail "cowutil write"
	"$COWUTIL" write "$T/x.cow" 2097152 "$T/d" || fail "cowutil write"
	expect_status 0 "$BK" -q -c gzip --offline "$T/x.cow" "$T/g"
	expect_status 0 "$BK" verify "$T/g"
	gunzip -c "$T/g/ubd0.ubdx.gz" >"$T/x.ubdx" || fail "gunzip"
	expect_status 0 "$BK" restore "$T/x.ubdx" "$T/x2.cow"
	cmp "$T/x2.cow" "$T/x.cow" || fail "restore of the raw stream differs"
	expect_status 0 "$BK" export "$T/g"
	cmp out.txt "$T/x.ubdx" || fail "export differs from the stored stream (but for its point)"
	# A changed payload byte: the digest says so, with its byte offset.
	cp "$T/x.ubdx" "$T/bad.ubdx"
	printf 'X' | dd of="$T/bad.ubdx" bs=1 seek=100000 conv=notrunc status=none
	expect_status 1 "$BK" restore "$T/bad.ubdx" "$T/bad.cow"
	err_has "stream byte"
	err_has "digest mismatch"
	[ ! -e "$T/bad.cow" ] || fail "a failed restore left its output"
	# Cut short on a pipe: refused, nothing left.
	head -c 500000 "$T/x.ubdx" | "$BK" restore - "$T/cut.cow" >out.txt 2>err.txt &&
		fail "a cut stream was restored"
	err_has "stream byte 500000: the stream ends"
	[ ! -e "$T/cut.cow" ] || fail "a failed restore left its output"
	# Not a stream on stdin.
	expect_status 1 "$BK" restore - "$T/n.cow" <"$T/x.img"
	err_has "not an extent stream"
}

# uml_backup export | restic backup --stdin, restic dump | uml_backup restore -:
# a whole point as one file comes back byte for byte; a chain (full + 2
# incrementals of an offline COW changed between points) sent as each
# point's own stream grows the repository by about the changed data, and
# each point restored from restic (its chain's streams piped in order, as
# uml_backup(1) RESTIC says) is byte-equal to its local restore.
t_restic() {
	command -v restic >/dev/null || skip "no restic (Debian package restic)"
	command -v jq >/dev/null || skip "no jq (Debian package jq): the RESTIC recipe uses it"
	export RESTIC_PASSWORD=ubdkit-test RESTIC_CACHE_DIR="$T/cache"
	R=$T/repo
	restic -q -r "$R" init >/dev/null || fail "restic init"
	truncate -s 256M "$T/g.img"
	"$MKCOW" -q "$T/g.cow" "$T/g.img" || fail "uml_mkcow"
	randfile "$T/d" 33554432
	"$COWUTIL" write "$T/g.cow" 1048576 "$T/d" || fail "cowutil write"
	# One file: a whole point (a plain backup) exported, dumped, restored.
	expect_status 0 "$BK" -q -c --offline "$T/g.cow" "$T/p1"
	"$BK" export "$T/p1" | restic -q -r "$R" backup --stdin --stdin-filename guest-ubd0.ubdx \
		>/dev/null || fail "export | restic backup"
	restic -q -r "$R" dump latest guest-ubd0.ubdx | "$BK" -q restore - "$T/r1.cow" ||
		fail "restic dump | restore -"
	cmp "$T/r1.cow" "$T/g.cow" || fail "restic round trip differs"
	# A chain, each new point's own stream sent as uml_backup(1) RESTIC says.
	upload() {
		_p=$(ls "$T/chain" | tail -n 1)
		"$BK" -q export --own "$T/chain/$_p" | restic -q -r "$R" backup --stdin \
			--stdin-filename "g/ubd0/$_p.ubdx" --tag ubdkit \
			--tag "$(jq -r .kind "$T/chain/$_p/manifest.json")" >/dev/null ||
			fail "export --own | restic backup ($_p)"
	}
	expect_status 0 "$BK" -q -i --offline "$T/g.cow" "$T/chain"
	upload
	cp "$T/g.cow" "$T/c1.cow"
	for i in 2 3; do
		# 10 blocks of 64 KiB (whole chunks) at places spread over the device.
		changed=0
		for k in 0 1 2 3 4 5 6 7 8 9; do
			randfile "$T/c" 65536
			"$COWUTIL" write "$T/g.cow" $(( (k * 397 + i * 1013) % 4096 * 65536 )) "$T/c" ||
				fail "cowutil write"
			changed=$((changed + 65536))
		done
		expect_status 0 "$BK" -q -i -c --offline "$T/g.cow" "$T/chain"
		before=$(du -sb "$R" | cut -f1)
		upload
		growth=$(( $(du -sb "$R" | cut -f1) - before ))
		echo "restic: point $i (own stream) grew the repository by $growth bytes for" \
			"$changed changed ($(awk "BEGIN { printf \"%.2f\", $growth / $changed }")x)"
		# The changed chunks, restic's metadata of a snapshot (a few KiB).
		[ "$growth" -le $((changed * 5 / 4 + 32768)) ] ||
			fail "point $i: repository grew $growth bytes for $changed changed"
		cp "$T/g.cow" "$T/c$i.cow"
	done
	# Each point from restic: the streams from the newest full point at or
	# before it, in order, into restore -; byte-equal to its local restore.
	i=0
	for p in $(points "$T/chain"); do
		i=$((i + 1))
		restic -q -r "$R" snapshots --tag ubdkit --json |
			jq -r '.[] | [.paths[0], (if (.tags | index("full")) then "full" else "incremental" end)] | @tsv' |
			sort | awk -v p="/g/ubd0/$p.ubdx" '$1 <= p { if ($2 == "full") n = 0; l[n++] = $1 }
				END { for (i = 0; i < n; i++) print l[i] }' >"$T/chain.txt"
		[ "$(wc -l <"$T/chain.txt")" = $i ] || fail "point $i: chain list $(cat "$T/chain.txt")"
		for f in $(cat "$T/chain.txt"); do
			restic -q -r "$R" dump --path "$f" latest "$f" || fail "restic dump $f"
		done | "$BK" restore - "$T/rr$i.cow" >out.txt 2>err.txt || fail "restore - of point $i: $(cat err.txt)"
		[ $i = 1 ] || err_has "$i streams of one chain applied"
		expect_status 0 "$BK" restore "$T/chain/$p/$(cd "$T/chain/$p" && ls ubd0.ubdx*)" "$T/loc$i.cow"
		cmp "$T/rr$i.cow" "$T/loc$i.cow" || fail "point $i: from restic differs from its local restore"
		cmp "$T/rr$i.cow" "$T/c$i.cow" || fail "point $i: differs from the COW at that point"
	done
	# A chain given with a point left out: refused, both ids named.
	set -- $(points "$T/chain")
	id1=$(jq -r .point "$T/chain/$1/manifest.json")
	id2=$(jq -r .point "$T/chain/$2/manifest.json")
	{ restic -q -r "$R" dump --path "/g/ubd0/$1.ubdx" latest "/g/ubd0/$1.ubdx"
	  restic -q -r "$R" dump --path "/g/ubd0/$3.ubdx" latest "/g/ubd0/$3.ubdx"; } |
		"$BK" restore - "$T/bad.cow" >out.txt 2>err.txt && fail "a chain with a hole was restored"
	err_has "stream 2 (byte [0-9]*): applies over point $id2, but the previous stream made point $id1"
	[ ! -e "$T/bad.cow" ] || fail "a failed restore left its output"
	# The whole-device export of an incremental point: its chain applied.
	"$BK" -q export "$T/chain/$3" | "$BK" -q restore - "$T/w3.cow" || fail "export of point 3"
	cmp "$T/w3.cow" "$T/c3.cow" || fail "whole export of an incremental point differs"
}

t_known_answers() {
	"$B/tests/backup_kat" || fail "known-answer tests"
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

# A chain of a guest running our kernel: every incremental reads only
# the chunks the kernel says changed (plus a few of metadata), and each
# point holds what the guest had when it was stopped.
t_chain_tracking() {
	need_ours
	trap on_exit EXIT
	UML=$OURS
	# Inode tables made now: the guest would zero them meanwhile, writes
	# the maps name that change nothing.
	make_disk disk 64 -E lazy_itable_init=0,lazy_journal_init=0
	start_guest gt ubda="$T/disk.cow,$T/disk.img"
	chain_point gt 1 full
	for i in 2 3 4 5; do
		chain_point gt $i tracking "changed-block tracking since checkpoint"
		# Read: the changed chunks (each at most once per map: the one
		# before the copy, two rounds, the pause's) and a few metadata
		# chunks; far below the 64 MiB disk.
		n=$(chunks_stored)
		rd=$(read_mib)
		awk -v r="$rd" -v n="$n" 'BEGIN { exit !(r * 16 <= (n * 4 + 32)) }' ||
			fail "point $i read $rd MiB for $n changed chunks"
		[ "$(json_str out.txt method)" = tracked ] || fail "point $i: method $(json_str out.txt method)"
	done
	assert_running gt "after the chain"
	stop_guest gt
	trap - EXIT
	chain_restore_all
}

# SIGKILL between two backups: the next one compares (unclean), still
# holds every record written before the kill; the one after tracks again.
t_chain_tracking_killed() {
	need_ours
	trap on_exit EXIT
	UML=$OURS
	make_disk disk 64
	start_guest gk ubda="$T/disk.cow,$T/disk.img"
	chain_point gk 1 full
	killed=$(last_rec gk)
	kill_guests
	# Not the old log: start_guest would find its records there.
	mv "$T/log.gk" "$T/log.gk.killed"
	rm -rf "$T/pid.gk" "$T/uml/gk"
	start_guest gk ubda="$T/disk.cow,$T/disk.img"
	chain_point gk 2 comparison "tracking inconsistent: unclean shutdown"
	expect_status 0 "$BK" restore "$T/chain/$(points "$T/chain" | tail -n 1)/ubd0.ubdx" "$T/k.cow"
	c=$(merged_check "$T/k.cow" "$killed")
	echo "after the kill: $c records, $killed written before it"
	chain_point gk 3 tracking
	stop_guest gk
	trap - EXIT
	[ "$(points "$T/chain" | wc -l)" = 3 ] || fail "points: $(ls "$T/chain")"
	expect_status 0 "$BK" verify "$T/chain"
}

# The COW written by the stock kernel in between: that kernel has no
# tracking (comparison, said so), and ours then finds the record does not
# match the COW (cow-changed: comparison), then tracks again.  Offline,
# the record is the source while it is clean and names the parent.
t_chain_tracking_stock() {
	need_ours
	[ -x /usr/bin/linux.uml ] || skip "no stock /usr/bin/linux.uml"
	trap on_exit EXIT
	make_disk disk 64
	UML=$OURS
	start_guest gs ubda="$T/disk.cow,$T/disk.img"
	chain_point gs 1 full
	stop_guest gs
	# Offline: the clean record names point 1.
	expect_status 0 "$BK" -i -j --offline "$T/disk.cow" "$T/chain"
	[ "$(json_str out.txt changes)" = tracking ] || fail "offline: changes $(json_str out.txt changes_note)"
	UML=/usr/bin/linux.uml
	mv "$T/log.gs" "$T/log.gs.1"
	rm -f "$T/stop.gs" "$T/pid.gs"
	start_guest gs ubda="$T/disk.cow,$T/disk.img"
	before3=$(last_rec gs)
	expect_status 0 "$BK" -i -j -u "$T/uml" gs "$T/chain"
	[ "$(json_str out.txt changes_note)" = "the kernel has no changed-block tracking" ] ||
		fail "stock kernel: note $(json_str out.txt changes_note)"
	stop_guest gs
	UML=$OURS
	mv "$T/log.gs" "$T/log.gs.2"
	rm -f "$T/stop.gs" "$T/pid.gs"
	start_guest gs ubda="$T/disk.cow,$T/disk.img"
	chain_point gs 4 comparison "tracking inconsistent: cow-changed"
	chain_point gs 5 tracking
	stop_guest gs
	trap - EXIT
	# Offline after a change behind the record's back: cow-changed.
	printf 'x' | dd of="$T/disk.cow" bs=1 seek=$(($(size_of "$T/disk.cow") - 1)) conv=notrunc status=none
	touch -d '2001-01-01' "$T/disk.cow"
	expect_status 0 "$BK" -i -j --offline "$T/disk.cow" "$T/chain"
	[ "$(json_str out.txt changes)" = comparison ] || fail "offline after a change: $(json_str out.txt changes)"
	grep -q '"changes_note": "tracking inconsistent: cow-changed' out.txt || fail "offline note: $(json_str out.txt changes_note)"
	expect_status 0 "$BK" verify "$T/chain"
}

# A backup that fails after its checkpoint: the next sees a checkpoint
# that is not its parent and compares; the one after tracks.
t_chain_tracking_failed() {
	need_ours
	trap on_exit EXIT
	UML=$OURS
	make_disk disk 64
	start_guest gf ubda="$T/disk.cow,$T/disk.img"
	S=$(sock gf)
	chain_point gf 1 full
	p1=$(json_str out.txt point)
	live_stall "$T/chain" -i
	kill -KILL "$bk"
	wait "$bk" 2>/dev/null
	assert_running gf "after a killed backup"
	# The killed run left no point (a directory without a manifest is none).
	[ "$(ls "$T"/chain/*/manifest.json | wc -l)" = 1 ] || fail "points after a killed run: $(ls "$T/chain")"
	rmdir "$T/chain/$(points "$T/chain" | tail -n 1)" 2>/dev/null
	chain_point gf 2 comparison "tracking checkpoint [0-9a-f]*\(\.pre\)\{0,1\} is not the parent $p1"
	chain_point gf 3 tracking
	stop_guest gf
	trap - EXIT
	chain_restore_all
}

t_xstream_unit() {
	ASAN_OPTIONS=detect_leaks=1 "$B/tests/xs_test" || fail "extent stream tests"
}

run_tests "$@"
