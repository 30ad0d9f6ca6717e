# Step 7 of the demo (sourced by scripts/demo.sh, which defines B, T, ROOT,
# say, die, human, allocated and the helpers of tests/lib/common.sh): a live
# backup of a guest that keeps writing, and what the backup holds.

BACKUP=$B/bin/uml_backup
"$MKCOW" "$T/live.cow" "$T/master.img"
# The guest appends numbered records to a log, each one fsynced, until
# live.stop appears on the host.
cat >"$T/live.sh" <<EOS
#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc 2>/dev/null
mount /dev/ubda /mnt || { echo GUEST-ERROR mount; poweroff -f; }
n=0
while [ ! -e "$T/live.stop" ]; do
	n=\$((n + 1))
	echo "record \$n" | dd of=/mnt/var/log/records oflag=append conv=notrunc,fsync status=none
	echo "N \$n"
done
umount /mnt
echo GUEST-DONE
poweroff -f
EOS
rm -f "$T/live.stop"
UML_TIMEOUT=300 uml_boot demo-live "$T/live.sh" "$T/live.log" ubda="$T/live.cow,$T/master.img" &
live_pid=$!
live_n() { sed -n 's/^N \([0-9]*\).*/\1/p' "$T/live.log" 2>/dev/null | tail -n 1; }
i=0
until [ "$(live_n)" -ge 20 ] 2>/dev/null; do
	kill -0 $live_pid 2>/dev/null || { cat "$T/live.log" >&2; die "the live guest died"; }
	sleep 0.2
	i=$((i + 1))
	[ $i -lt 600 ] || { cat "$T/live.log" >&2; die "the live guest did not start writing"; }
done
before=$(live_n)
"$BACKUP" -q -j -c -u "$T/uml" demo-live "$T/backup" >"$T/backup.json" ||
	die "uml_backup failed"
after=$(live_n)
pause=$(jq -r .pause_ms "$T/backup.json")
method=$(jq -r .method "$T/backup.json")
i=0
until [ "$(live_n)" -gt "$after" ]; do
	sleep 0.2
	i=$((i + 1))
	[ $i -lt 100 ] || die "the guest did not go on after the backup"
done
touch "$T/live.stop"
wait $live_pid || true
grep -q GUEST-DONE "$T/live.log" || die "the live guest did not end cleanly"
say "7. backup   uml_backup -c demo-live backup/ while the guest appends fsynced records:" \
	"paused $pause ms ($method: pre-copied, synced, stopped, copied the blocks written" \
	"meanwhile, resumed); backup/ holds ubd0.ubdx.lz4, an extent stream of the COW's" \
	"data ($(human "$(size_of "$T/backup/ubd0.ubdx.lz4")")), ubd0.chunks, its chunk table" \
	"($(human "$(size_of "$T/backup/ubd0.chunks")")), and manifest.json"
"$BACKUP" -q verify "$T/backup" || die "the backup does not verify"
"$BACKUP" -q restore "$T/backup" "$T/restored.cow" || die "restore failed"
"$COWUTIL" merged "$T/restored.cow" "$T/restored.img" >/dev/null
# A crash-consistent image: its journal is replayed first, as a mount would.
e2fsck -fy "$T/restored.img" >"$T/fsck-backup.log" 2>&1 || true
e2fsck -fn "$T/restored.img" >>"$T/fsck-backup.log" 2>&1 ||
	{ cat "$T/fsck-backup.log" >&2; die "the backup does not pass fsck"; }
img_cat "$T/restored.img" /var/log/records >"$T/records.txt"
kept=$(wc -l <"$T/records.txt")
awk '$0 != "record " NR { exit 1 }' "$T/records.txt" || die "the backup's records have a gap"
say "            verified (uml_backup verify backup/); restored (uml_backup restore backup/ restored.cow: sparse, $(human "$(allocated "$T/restored.cow")") on disk)," \
	"merged and fsck-clean: records 1..$kept, no gap (the guest had written $before" \
	"when the backup began, $after when it returned, $(live_n) in all)"
