#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_map_on_read_master_untouched_writes_in_cow() {
	map_master 16
	rand_backing plain.img 48
	{
		map_body
		# Pages freed above (dropped caches) are reused: hostfs reads
		# into them with a host read(), which fails (EFAULT) on a page
		# still mapped read-only from the master, and so does the I/O
		# thread for a plain device.
		# (The guest's /tmp is its own tmpfs: $T through hostfs.)
		echo "mount -t hostfs -o $T none /mnt"
		echo 'echo "HOSTFS=$(md5sum </mnt/plain.img | cut -d" " -f1)"'
		echo 'echo "PLAIN=$(md5sum </dev/ubdb | cut -d" " -f1)"'
	} >body
	UML_MEM=96M ours map1 body log ubdam="$T/c.cow,$T/master.img" \
		ubdb="$T/plain.img" || true
	ended log
	grep -q MOUNT-FAILED log && fail "mount failed"
	[ "$(guest_val log MAP)" = 1 ] || fail "map_on_read not 1: $(grep MAP= log)"
	[ "$(guest_val log SUM0)" = "$(md5 m/data.bin)" ] || fail "mapped read differs"
	[ "$(guest_val log MAPPED)" -ge 4096 ] || fail "pages_mapped $(guest_val log MAPPED), want >= 4096 (16 MiB read)"
	[ "$(guest_val log BIN)" = 2 ] || fail "binary from the master: exit $(guest_val log BIN), want 2 (usage)"
	[ "$(guest_val log UNW)" -ge 1 ] || fail "pages_unmapped_on_write $(guest_val log UNW)"
	grep -qx COHERENT-OK log || fail "read-only mapping: $(grep COHERENT log)"
	grep -q MWRITE-FAILED log && fail "shared writable mapping failed"
	[ "$(guest_val log UNM)" -ge 1 ] || fail "pages_unmapped_on_map $(guest_val log UNM)"
	[ "$(guest_val log SUM1)" = "$(md5 expect.bin)" ] || fail "cached contents after writes"
	[ "$(guest_val log SUM2)" = "$(md5 expect.bin)" ] || fail "contents re-read after writes"
	[ "$(guest_val log FALLBACKS)" = 0 ] || fail "map_fallbacks $(guest_val log FALLBACKS)"
	[ "$(guest_val log HOSTFS)" = "$(md5 plain.img)" ] || fail "a freed page kept the master's mapping (hostfs read)"
	[ "$(guest_val log PLAIN)" = "$(md5 plain.img)" ] || fail "a reused page kept the master's mapping"
	cmp master.img master.orig || fail "the master changed"
	# A fresh boot, and the stock kernel, read the writes from the COW.
	echo 'mount -o ro /dev/ubda /mnt; echo "SUM=$(md5sum </mnt/data.bin | cut -d" " -f1)"' >body2
	ours map2 body2 log2 ubdam="$T/c.cow,$T/master.img" || true
	ended log2
	[ "$(guest_val log2 SUM)" = "$(md5 expect.bin)" ] || fail "fresh boot reads $(guest_val log2 SUM)"
	stock map3 body2 log3 ubda="$T/c.cow,$T/master.img" || true
	ended log3
	[ "$(guest_val log3 SUM)" = "$(md5 expect.bin)" ] || fail "stock kernel reads $(guest_val log3 SUM)"
	cmp master.img master.orig || fail "the master changed"
}

run_test t_map_on_read_master_untouched_writes_in_cow
