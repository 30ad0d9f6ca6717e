#!/bin/sh
# Interoperability tests of the format library against the real peers:
# uml-utilities' uml_mkcow and uml_moo, and a booted linux.uml.
#   tests/interop/run.sh BUILD_DIR [TEST_NAME...]
set -u

SUITE=interop
. "$(dirname "$0")/../lib/runner.sh"

COWUTIL=$B/tests/cowutil
MKCOW=$B/bin/uml_mkcow
PEER_MKCOW=/usr/bin/uml_mkcow
PEER_MOO=/usr/bin/uml_moo

# --- uml_mkcow: our library writes the same bytes --------------------------

t_mkcow_bytes_equal_peer() {
	cd "$T"
	mkdir -p real/dir && ln -sfn real/dir link
	for size in 1 511 512 1000001 10485760 67108864; do
		rm -f real/dir/b.img peer.cow ours.cow
		truncate -s "$size" real/dir/b.img
		for name in real/dir/b.img ./real/dir/b.img link/b.img "$T/link/b.img"; do
			rm -f peer.cow ours.cow
			"$PEER_MKCOW" peer.cow "$name" || fail "peer uml_mkcow failed"
			"$MKCOW" ours.cow "$name" || fail "our uml_mkcow failed"
			cmp peer.cow ours.cow || fail "size $size, name $name: bytes differ"
			[ "$(size_of ours.cow)" = "$(size_of peer.cow)" ] || fail "apparent size"
		done
	done
	# Bare name in the cwd.
	(cd real/dir && rm -f ../p.cow ../o.cow &&
		"$PEER_MKCOW" ../p.cow b.img && "$MKCOW" ../o.cow b.img) &&
	cmp real/p.cow real/o.cow || fail "bare name: bytes differ"
	# The new COW is sparse: header and one block at the end.
	[ "$(blocks_of ours.cow)" -le 64 ] || fail "not sparse: $(blocks_of ours.cow) blocks"
}

t_parse_peer_header() {
	cd "$T"
	randfile back.img 3000000
	touch -d '2024-02-29 12:34:56' back.img
	"$PEER_MKCOW" peer.cow back.img
	[ "$(info_get peer.cow layout)" = v3 ] || fail layout
	[ "$(info_get peer.cow backing)" = "$T/back.img" ] || fail backing
	[ "$(info_get peer.cow size)" = 3000000 ] || fail size
	[ "$(info_get peer.cow mtime)" = "$(mtime_of back.img)" ] || fail mtime
	[ "$(info_get peer.cow sectorsize)" = 512 ] || fail sectorsize
	[ "$(info_get peer.cow alignment)" = 4096 ] || fail alignment
	[ "$(info_get peer.cow sectors)" = 5860 ] || fail sectors
	[ "$(info_get peer.cow bitmap_offset)" = 8192 ] || fail bitmap_offset
	[ "$(info_get peer.cow bitmap_len)" = 733 ] || fail bitmap_len
	[ "$(info_get peer.cow data_offset)" = 12288 ] || fail data_offset
	[ "$(size_of peer.cow)" = $((12288 + 3000000)) ] || fail "apparent size"
	"$COWUTIL" check peer.cow >/dev/null || fail "backing check"
}

# --- a real kernel ----------------------------------------------------------

# A small ext4 master holding known files.
make_master() {
	mkdir -p "$T/tree/etc" "$T/tree/data"
	echo "hello from the master" >"$T/tree/hello.txt"
	echo "version=1" >"$T/tree/etc/app.conf"
	head -c 300000 /dev/urandom >"$T/tree/data/blob.bin"
	mkfs.ext4 -q -F -b 4096 -L master -d "$T/tree" "$T/master.img" 32M >/dev/null ||
		fail "mkfs.ext4"
}

t_kernel_created_header() {
	cd "$T"
	make_master
	guest_prologue >init.sh
	echo 'poweroff -f' >>init.sh
	uml_boot kc "$T/init.sh" kc.log ubda="$T/kernel.cow,$T/master.img" ||
		{ cat kc.log >&2; fail "boot"; }
	[ -f kernel.cow ] || fail "kernel did not create the COW"
	[ "$(info_get kernel.cow layout)" = v3 ] || fail layout
	[ "$(info_get kernel.cow backing)" = "$T/master.img" ] || fail backing
	[ "$(info_get kernel.cow size)" = "$(size_of master.img)" ] || fail size
	[ "$(info_get kernel.cow mtime)" = "$(mtime_of master.img)" ] || fail mtime
	[ "$(info_get kernel.cow sectorsize)" = 512 ] || fail sectorsize
	[ "$(info_get kernel.cow alignment)" = 4096 ] || fail alignment
	# Our header bytes equal the kernel's for the same backing.
	"$MKCOW" ours.cow master.img
	# The kernel leaves its buffer's old bytes after the path's NUL.
	path="$T/master.img"
	cmp -n $((32 + ${#path} + 1)) kernel.cow ours.cow ||
		fail "header bytes differ from the kernel's"
	[ "$(size_of kernel.cow)" = "$(size_of ours.cow)" ] || fail "apparent size"
}

t_library_cow_boots() {
	cd "$T"
	make_master
	"$MKCOW" guest.cow master.img
	{
		guest_prologue
		cat <<'EOS'
mount /dev/ubda /mnt || echo "GUEST-ERROR mount"
echo "GUEST-READ $(cat /mnt/hello.txt)"
echo "GUEST-SUM $(md5sum </mnt/data/blob.bin | cut -c1-32)"
echo "written by the guest" >/mnt/new.txt
echo "version=2" >/mnt/etc/app.conf
rm /mnt/data/blob.bin
umount /mnt
sync
poweroff -f
EOS
	} >init.sh
	uml_boot lb "$T/init.sh" lb.log ubda="$T/guest.cow,$T/master.img" ||
		{ cat lb.log >&2; fail boot; }
	grep -q "GUEST-ERROR" lb.log && { cat lb.log >&2; fail "guest error"; }
	grep -q "GUEST-READ hello from the master" lb.log ||
		{ cat lb.log >&2; fail "guest did not read the backing through the COW"; }
	grep -q "GUEST-SUM $(md5sum <tree/data/blob.bin | cut -c1-32)" lb.log ||
		fail "guest read wrong blob"
	[ "$(info_get guest.cow cow_sectors)" -gt 0 ] || fail "guest wrote nothing"
	"$PEER_MOO" guest.cow moo.img || fail "uml_moo"
	"$COWUTIL" merged guest.cow ours.img || fail "merged view"
	cmp moo.img ours.img || fail "merged view differs from uml_moo"
	e2fsck -fn ours.img >fsck.log 2>&1 || { cat fsck.log >&2; fail "fsck"; }
	[ "$(debugfs -R 'cat /new.txt' ours.img 2>/dev/null)" = "written by the guest" ] ||
		fail "new file missing from merged view"
	[ "$(debugfs -R 'cat /etc/app.conf' ours.img 2>/dev/null)" = "version=2" ] ||
		fail "changed file wrong in merged view"
	# The master is untouched.
	[ "$(debugfs -R 'cat /etc/app.conf' master.img 2>/dev/null)" = "version=1" ] ||
		fail "master changed"
}


t_old_layouts_read() {
	cd "$T"
	randfile back.img $((256 * 512))
	for lay in v1 v2 v3b; do
		build_old $lay $lay.cow "$T/back.img" 256 512 4096 "0 3 10 11 12 63 64 200 255"
		want=$lay
		[ $lay = v3b ] && want=v3-broken
		[ "$(info_get $lay.cow layout)" = "$want" ] || fail "$lay: layout"
		[ "$(info_get $lay.cow cow_sectors)" = 9 ] || fail "$lay: count"
		"$COWUTIL" merged $lay.cow ours.img || fail "$lay: merged"
		cmp ours.img $lay.cow.expect || fail "$lay: merged view wrong"
		"$PEER_MOO" $lay.cow moo.img || fail "$lay: uml_moo"
		cmp moo.img $lay.cow.expect || fail "$lay: uml_moo disagrees"
		[ "$("$COWUTIL" runs $lay.cow | tr '\n' ' ')" = \
			"0 1 3 1 10 3 63 2 200 1 255 1 " ] || fail "$lay: runs"
	done
	# v1/v2 rounding bug: 9 sectors need 2 bitmap bytes but the header
	# accounts for 1; the bit of sector 8 sits in the slack before the data.
	randfile small.img $((9 * 512))
	build_old v2 r.cow "$T/small.img" 9 512 0 "1 8"
	[ "$(info_get r.cow bitmap_len)" = 1 ] || fail "rounding: bitmap_len"
	[ "$(info_get r.cow data_offset)" = 4608 ] || fail "rounding: data_offset"
	"$COWUTIL" merged r.cow ours.img && cmp ours.img r.cow.expect ||
		fail "rounding: sector 8 not read from the slack bit"
}

# The kernel reads the old layouts the same way we do.  The guest reads the
# device one 4 KiB block per request: linux.uml 6.1 returns wrong data for
# larger (multi-segment) requests and for 512-byte O_DIRECT reads when a
# page mixes COW and backing sectors, as these hand-built files do (see
# docs/format.md, "Kernel quirks").
t_old_layouts_kernel() {
	cd "$T"
	randfile back.img $((1024 * 512))
	{
		guest_prologue
		cat <<'EOS'
i=0
while [ $i -lt 128 ]; do
	echo "B4K $i $(dd if=/dev/ubda bs=4096 skip=$i count=1 2>/dev/null | md5sum | cut -c1-32)"
	i=$((i + 1))
done
poweroff -f
EOS
	} >init.sh
	for lay in v1 v2 v3b; do
		build_old $lay $lay.cow "$T/back.img" 1024 512 4096 "0 7 8 9 100 1000 1023"
		uml_boot ol "$T/init.sh" $lay.log ubdar="$T/$lay.cow" ||
			{ cat $lay.log >&2; fail "$lay: boot"; }
		"$COWUTIL" merged $lay.cow ours.img && cmp ours.img $lay.cow.expect ||
			fail "$lay: library disagrees with the layout"
		i=0
		while [ $i -lt 128 ]; do
			want=$(dd if=ours.img bs=4096 skip=$i count=1 2>/dev/null | md5sum | cut -c1-32)
			grep -q "B4K $i $want" $lay.log ||
				fail "$lay: the kernel reads block $i differently"
			i=$((i + 1))
		done
	done
}

t_library_v1_v2_boot() {
	cd "$T"
	randfile back.img $((4096 * 512))
	{
		guest_prologue
		cat <<'EOS'
printf 'guest-wrote-this-sector' | dd of=/dev/ubda bs=4096 seek=100 conv=sync,notrunc 2>/dev/null
sync
echo "GUEST-SUM $(md5sum </dev/ubda | cut -c1-32)"
poweroff -f
EOS
	} >init.sh
	for v in 1 2 3; do
		rm -f v$v.cow
		"$MKCOW" --format-version $v v$v.cow back.img || fail "create v$v"
		[ "$(info_get v$v.cow version)" = $v ] || fail "version $v"
		uml_boot lv "$T/init.sh" v$v.log ubda="$T/v$v.cow" ||
			{ cat v$v.log >&2; fail "v$v: boot"; }
		sum=$(sed -n 's/.*GUEST-SUM \([0-9a-f]*\).*/\1/p' v$v.log | head -n1)
		[ -n "$sum" ] || { cat v$v.log >&2; fail "v$v: no checksum"; }
		"$COWUTIL" merged v$v.cow ours.img || fail "v$v: merged"
		[ "$(md5sum <ours.img | cut -c1-32)" = "$sum" ] ||
			fail "v$v: library's merged view differs from what the guest saw"
		[ "$("$COWUTIL" grep v$v.cow guest-wrote-this-sector)" = 409600 ] ||
			fail "v$v: guest write not found"
		"$PEER_MOO" v$v.cow moo.img && cmp moo.img ours.img ||
			fail "v$v: uml_moo disagrees"
	done
}

t_backing_check_and_rebase() {
	cd "$T"
	make_master
	"$MKCOW" guest.cow master.img
	{
		guest_prologue
		echo 'echo "GUEST-UP"'
		echo 'poweroff -f'
	} >init.sh
	touch -d '2030-01-01' master.img
	out=$("$COWUTIL" check guest.cow 2>&1) && fail "check passed after touch"
	echo "$out" | grep -q 'mtime-mismatch' || fail "no mtime mismatch: $out"
	echo "$out" | grep -q "mtime_delta=$(( $(mtime_of master.img) - $(info_get guest.cow mtime) ))" ||
		fail "wrong delta: $out"
	uml_boot bc1 "$T/init.sh" bc1.log ubda="$T/guest.cow,$T/master.img"
	grep -qi 'mtime mismatch' bc1.log || fail "kernel accepted a touched backing?"
	# Rebase onto a moved copy: the kernel accepts it again.
	mkdir -p moved && cp --preserve=timestamps master.img moved/m.img
	touch -d '2031-05-05' moved/m.img
	"$COWUTIL" rebase guest.cow moved/m.img || fail rebase
	[ "$(info_get guest.cow backing)" = "$T/moved/m.img" ] || fail "path not rewritten"
	[ "$(info_get guest.cow mtime)" = "$(mtime_of moved/m.img)" ] || fail "mtime not rewritten"
	uml_boot bc2 "$T/init.sh" bc2.log ubda="$T/guest.cow"
	grep -qi 'mismatch' bc2.log && { cat bc2.log >&2; fail "kernel refused the rebased COW"; }
	grep -q GUEST-UP bc2.log || fail "guest did not come up"
	# Different size: refused, file unchanged.
	truncate -s 1M small.img
	md5a=$(md5sum <guest.cow)
	"$COWUTIL" rebase guest.cow small.img 2>err.txt && fail "rebase onto other size"
	grep -q size-mismatch err.txt || fail "no size mismatch"
	[ "$(md5sum <guest.cow)" = "$md5a" ] || fail "COW modified by refused rebase"
}

t_locks_like_the_kernel() {
	cd "$T"
	make_master
	"$MKCOW" guest.cow master.img
	{
		guest_prologue
		# The kernel holds the host locks only while the device is open.
		echo 'mount /dev/ubda /mnt && echo "GUEST-READY"'
		echo 'sleep 6'
		echo 'umount /mnt'
		echo 'poweroff -f'
	} >init.sh
	uml_boot lk "$T/init.sh" lk.log ubda="$T/guest.cow,$T/master.img" &
	pid=$!
	i=0
	until grep -q GUEST-READY lk.log 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 300 ] || { kill $pid; fail "guest not ready"; }
		sleep 0.1
	done
	printf 'x%.0s' $(seq 512) >sector
	"$COWUTIL" write guest.cow 0 sector 2>err.txt && { wait $pid; fail "wrote while the guest runs"; }
	grep -q locked err.txt || { wait $pid; fail "no lock error: $(cat err.txt)"; }
	wait $pid
	"$COWUTIL" write guest.cow 0 sector || fail "write after the guest stopped"
	# The guest's own writes may share sector 0's bitmap word: compare data.
	"$COWUTIL" merged guest.cow merged.img || fail merged
	head -c 512 merged.img | cmp - sector || fail "sector 0 not written"
	"$COWUTIL" runs guest.cow | grep -q '^0 ' || fail "bit 0 not set"
}

# The backing check of an open COW uses the descriptor it holds: checking a
# block device by path would reopen and close it, and closing any
# descriptor of a file drops the process's fcntl locks on it.
t_backing_check_keeps_lock_on_loop_device() {
	[ "$(id -u)" = 0 ] || skip "not root: needs a loop device"
	command -v losetup >/dev/null && command -v python3 >/dev/null ||
		skip "needs losetup and python3"
	truncate -s 8M master.img
	dev=$(losetup -f --show master.img 2>/dev/null) || skip "no loop device"
	trap 'losetup -d "$dev"' EXIT
	"$MKCOW" c.cow "$dev" || fail "mkcow over $dev"
	for how in fd by-path; do
		mkfifo in.$how
		if [ $how = fd ]; then
			"$COWUTIL" hold c.cow <in.$how >held.$how 2>err.txt &
		else
			"$COWUTIL" hold --by-path c.cow <in.$how >held.$how 2>err.txt &
		fi
		pid=$!
		exec 3>in.$how
		i=0
		until grep -q held held.$how; do
			i=$((i + 1))
			[ $i -lt 100 ] || fail "cowutil hold: $(cat err.txt)"
			sleep 0.05
		done
		if lock_refused "$dev" w; then got=kept; else got=dropped; fi
		exec 3>&-
		wait $pid || fail "cowutil hold: $(cat err.txt)"
		case $how in
		fd) [ $got = kept ] || fail "the held-descriptor check dropped the lock" ;;
		# The hazard the library avoids, shown to be real (so that the
		# check above can fail).
		by-path) [ $got = dropped ] || fail "a check by path kept the lock: the test proves nothing" ;;
		esac
	done
}

run_tests "$@"
