# The realistic benchmark workload, built once and cached.  Source it.
#   workload_ensure     builds $CACHE/master.img and $CACHE/guest.cow if missing
# master.img: a 6 GiB sparse ext4 holding about 1 GB of real files (the
# host's /usr/share and /usr/include); guest.cow: a COW on it that a real
# linux.uml guest filled by adding, rewriting and deleting files.
# Needs B, T, CACHE and tests/lib/common.sh sourced.

WORKLOAD_VERSION=1
MASTER_SIZE=6G

workload_ensure() {
	mkdir -p "$CACHE"
	if [ -f "$CACHE/ok" ] && [ "$(cat "$CACHE/ok")" = "$WORKLOAD_VERSION" ] &&
		"$B/tests/cowutil" check "$CACHE/guest.cow" >/dev/null 2>&1; then
		return 0
	fi
	rm -f "$CACHE/ok" "$CACHE/master.img" "$CACHE/guest.cow"
	echo "bench: building the workload in $CACHE (once; a few minutes)" >&2
	_wl_stage=$CACHE/stage
	rm -rf "$_wl_stage"
	mkdir -p "$_wl_stage"
	# Real files, unreadable ones skipped: the content matters, not the exact set.
	tar -C /usr -cf - --ignore-failed-read share include 2>/dev/null |
		tar -C "$_wl_stage" -xf - 2>/dev/null || true
	mkfs.ext4 -q -F -b 4096 -L bench-master -d "$_wl_stage" "$CACHE/master.img" "$MASTER_SIZE" >/dev/null ||
		{ echo "bench: mkfs.ext4 failed" >&2; return 1; }
	rm -rf "$_wl_stage"
	"$B/bin/uml_mkcow" "$CACHE/guest.cow" "$CACHE/master.img" || return 1
	{
		guest_prologue
		cat <<'EOS'
mount /dev/ubda /mnt || { echo "GUEST-ERROR mount"; poweroff -f; }
mkdir -p /mnt/opt
cp -a /usr/lib/python3.11 /mnt/opt/python3.11
cp -a /usr/lib/python3 /mnt/opt/python3
rm -rf /mnt/share/doc /mnt/share/locale
find /mnt/include/linux -name '*.h' | head -n 2000 | while read -r f; do
	echo "/* touched by the benchmark guest */" >>"$f"
done
dd if=/dev/urandom of=/mnt/opt/blob bs=1M count=64 2>/dev/null
umount /mnt
sync
echo "GUEST-DONE"
poweroff -f
EOS
	} >"$T/fill.sh"
	UML_MEM=256M UML_TIMEOUT=1200 uml_boot bench-fill "$T/fill.sh" "$CACHE/fill.log" \
		ubda="$CACHE/guest.cow,$CACHE/master.img" || true
	grep -q GUEST-DONE "$CACHE/fill.log" ||
		{ echo "bench: the filling guest failed, see $CACHE/fill.log" >&2; return 1; }
	echo "$WORKLOAD_VERSION" >"$CACHE/ok"
}

# One line describing the workload, for BENCHMARKS.md.
workload_describe() {
	_wl_used=$(( $(stat -L -c %b "$CACHE/master.img") * 512 ))
	_wl_cow=$(( $("$B/tests/cowutil" info "$CACHE/guest.cow" | sed -n 's/^cow_sectors=//p') * 512 ))
	printf 'master.img: %s apparent, %s allocated (ext4 of /usr/share and /usr/include); guest.cow: %s of sectors written by a linux.uml guest\n' \
		"$(stat -L -c %s "$CACHE/master.img" | numfmt --to=iec)" \
		"$(echo "$_wl_used" | numfmt --to=iec)" "$(echo "$_wl_cow" | numfmt --to=iec)"
}
