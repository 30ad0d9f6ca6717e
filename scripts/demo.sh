#!/bin/sh
# The ubdkit demo, end to end with a real UML guest:
#   1. build a small ext4 master image from an embedded directory tree;
#   2. give a guest its own COW file on that master (uml_mkcow);
#   3. boot linux.uml on the pair and let the guest change a few files;
#   4. show, from the host, what the guest changed and that the master
#      is untouched.
#   scripts/demo.sh BUILD_DIR
set -eu

B=$(cd "${1:?usage: demo.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$B/demo
rm -rf "$T"
mkdir -p "$T"
export B T
. "$ROOT/tests/lib/common.sh"

MKCOW=$B/bin/uml_mkcow
COWUTIL=$B/tests/cowutil

say() { printf '%s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
human() {
	awk -v b="$1" 'BEGIN { split("B KiB MiB GiB TiB", u, " "); i = 1;
		while (b >= 1024 && i < 5) { b /= 1024; i++ }
		printf (i == 1 ? "%d %s" : "%.1f %s"), b, u[i] }'
}
# Bytes a file really occupies on disk.
allocated() { echo $(( $(blocks_of "$1") * 512 )); }
# Contents of a file inside an ext4 image, read with debugfs.
img_cat() { debugfs -R "cat $2" "$1" 2>/dev/null; }
img_has() {
	if debugfs -R "stat $2" "$1" 2>&1 | grep -q 'File not found'; then
		echo "gone"
	else
		echo "present"
	fi
}

# --- 1. the master ------------------------------------------------------------

tree=$T/tree
mkdir -p "$tree/etc" "$tree/home/op" "$tree/var/log" "$tree/srv/www"
echo "webhost" >"$tree/etc/hostname"
echo "Welcome to the master image." >"$tree/etc/motd"
printf 'listen=80\nworkers=4\n' >"$tree/etc/app.conf"
printf '<h1>It works</h1>\n' >"$tree/srv/www/index.html"
echo "- rotate logs" >"$tree/home/op/todo.txt"
seq 1 200000 | sed 's/^/log line /' >"$tree/var/log/old.log"

mkfs.ext4 -q -F -b 4096 -L master -d "$tree" "$T/master.img" 64M >/dev/null ||
	die "mkfs.ext4 failed"
nfiles=$(find "$tree" -type f | wc -l)
master_sum=$(md5sum <"$T/master.img")
say "1. master   master.img: $(human "$(size_of "$T/master.img")") ext4," \
	"$nfiles files from an embedded tree (mkfs.ext4 -d)"

# --- 2. the guest's COW -------------------------------------------------------

"$MKCOW" "$T/guest.cow" "$T/master.img"
say "2. clone    guest.cow -> master.img: COW v$(info_get "$T/guest.cow" version)," \
	"$(human "$(allocated "$T/guest.cow")") on disk for a" \
	"$(human "$(size_of "$T/guest.cow")") file (uml_mkcow)"

mkdir -p "$T/clones"
t0=$(date +%s%N)
"$MKCOW" -q --count 500 --name "$T/clones/guest-%03d.cow" "$T/master.img"
t1=$(date +%s%N)
say "           + 500 more clones in one call (uml_mkcow --count 500 --name" \
	"'clones/guest-%03d.cow'): $(( (t1 - t0) / 1000000 )) ms," \
	"$(human $(( $(du -sk "$T/clones" | cut -f1) * 1024 ))) on disk for all 500"

# --- 3. a real guest ---------------------------------------------------------

{
	guest_prologue
	cat <<'EOS'
mount /dev/ubda /mnt || { echo "GUEST-ERROR mount"; poweroff -f; }
echo "GUEST-READ $(cat /mnt/etc/motd)"
echo "Welcome to guest 1, cloned from the master." >/mnt/etc/motd
sed -i 's/workers=4/workers=16/' /mnt/etc/app.conf
echo "- back up before upgrading" >>/mnt/home/op/todo.txt
mkdir /mnt/srv/data && seq 1 50000 >/mnt/srv/data/numbers.txt
rm /mnt/var/log/old.log
umount /mnt
sync
echo "GUEST-DONE"
poweroff -f
EOS
} >"$T/init.sh"

t0=$(date +%s.%N)
uml_boot demo "$T/init.sh" "$T/guest.log" ubda="$T/guest.cow,$T/master.img" ||
	{ cat "$T/guest.log" >&2; die "linux.uml failed (log above)"; }
t1=$(date +%s.%N)
grep -q GUEST-DONE "$T/guest.log" || { cat "$T/guest.log" >&2; die "the guest did not finish"; }
read_motd=$(sed -n 's/.*GUEST-READ //p' "$T/guest.log" | tr -d '\r')
say "3. boot     linux.uml ubda=guest.cow,master.img ($(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s):" \
	"the guest read \"$read_motd\" from the master, edited etc/motd and" \
	"etc/app.conf, appended to home/op/todo.txt, added srv/data/numbers.txt," \
	"deleted var/log/old.log"

# --- 4. what changed, seen from the host --------------------------------------

cow_sectors=$(info_get "$T/guest.cow" cow_sectors)
sectors=$(info_get "$T/guest.cow" sectors)
runs=$("$COWUTIL" runs "$T/guest.cow" | wc -l)
say "4. changes  $cow_sectors of $sectors sectors ($(human $((cow_sectors * 512))))" \
	"now live in guest.cow, in $runs runs; guest.cow holds" \
	"$(human "$(allocated "$T/guest.cow")") on disk"
[ "$(md5sum <"$T/master.img")" = "$master_sum" ] || die "the master changed!"
say "            master.img is byte-for-byte unchanged"

"$COWUTIL" merged "$T/guest.cow" "$T/merged.img" >/dev/null
e2fsck -fn "$T/merged.img" >"$T/fsck.log" 2>&1 ||
	{ cat "$T/fsck.log" >&2; die "the merged view does not pass fsck"; }
say "5. merged   the library's merged view of the pair is a clean ext4 (e2fsck -fn):"
say "              etc/motd:     \"$(img_cat "$T/merged.img" /etc/motd)\""
say "              etc/app.conf: $(img_cat "$T/merged.img" /etc/app.conf | tr '\n' ' ')"
say "              srv/data/numbers.txt: $(img_cat "$T/merged.img" /srv/data/numbers.txt | wc -l) lines;" \
	"var/log/old.log: $(img_has "$T/merged.img" /var/log/old.log)"
say "            while the master still says \"$(img_cat "$T/master.img" /etc/motd)\""
"$B/bin/uml_imgstat" --files "$T/guest.cow" >"$T/files.txt" || die "uml_imgstat --files failed"
say "   files    uml_imgstat --files guest.cow, read from the pair without merging:"
sed -n 's/^  \([ADMR] \)/              \1/p' "$T/files.txt"

# --- 6. a new master from the guest's changes ------------------------------

"$B/bin/uml_moo" -q "$T/guest.cow" "$T/master2.img"
"$MKCOW" "$T/fresh.cow" "$T/master2.img"
{
	guest_prologue
	cat <<'EOS'
mount -o ro /dev/ubda /mnt || { echo "GUEST-ERROR mount"; poweroff -f; }
echo "GUEST-MOTD $(cat /mnt/etc/motd)"
echo "GUEST-NUMBERS $(wc -l </mnt/srv/data/numbers.txt)"
umount /mnt
poweroff -f
EOS
} >"$T/init2.sh"
uml_boot demo2 "$T/init2.sh" "$T/guest2.log" ubda="$T/fresh.cow,$T/master2.img" ||
	{ cat "$T/guest2.log" >&2; die "the second guest failed"; }
motd2=$(sed -n 's/.*GUEST-MOTD //p' "$T/guest2.log" | tr -d '\r')
[ "$motd2" = "Welcome to guest 1, cloned from the master." ] ||
	{ cat "$T/guest2.log" >&2; die "the new master lacks the guest's changes"; }
say "6. merge    uml_moo guest.cow master2.img: a new master," \
	"$(human "$(allocated "$T/master2.img")") on disk for" \
	"$(human "$(size_of "$T/master2.img")"); a fresh guest on a new COW over it" \
	"reads \"$motd2\" and" \
	"$(sed -n 's/.*GUEST-NUMBERS //p' "$T/guest2.log" | tr -d '\r') lines of srv/data/numbers.txt"
# --- 7. a live backup ------------------------------------------------------

. "$ROOT/tests/backup/demo-step.sh"

say "demo: done; files are in $T"
