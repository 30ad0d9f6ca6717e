# In-guest throughput on a COW device: this project's ubd driver
# (build/kernel/linux) against the stock driver built from the same source
# and config (build/kernel/linux-stock, `make kernel-stock`), in one run.
# Each boot gets a fresh COW on a sparse 1 GiB backing file and runs fio
# (Debian's, from the hostfs root) with O_DIRECT and libaio:
#   4 KiB random writes (128 MiB, every block a new one: the stock driver
#   writes bitmap words for each), 4 KiB random reads, then a 1 GiB
#   sequential write and a 1 GiB sequential read; then the same four for
#   8 s each on a fresh COW over a sparse 16 GiB backing file (ubdb).
#   No fsync at the end: the stock driver never carries out a flush.
# Numbers are medians over BENCH_REPEAT boots per kernel, boots alternating.
# KBENCH_TIMEOUT caps each boot (seconds; a stock guest once hung here).
# Before that, once: memory for huge sparse devices (_kbench_memory).
bench_kernel() {
	_kbench_memory || return 1
	_kbench_fio
}

# Memory a COW device costs, on fresh COWs over sparse 1 TiB and 8 TiB
# backing files (bitmaps of 256 MiB and 2 GiB): our kernel in a 64 MiB
# guest, 10,000 scattered 4 KiB writes on each device (fio, O_DIRECT, random
# offsets over the whole device); guest MemFree (page cache dropped) with
# the devices closed, opened, and after the writes, and the host memory the
# library holds for each bitmap (ubdk_cow_mem, /sys/block/ubdX/
# cow_bitmap_mem).  Then the stock linux.uml (Debian's) on the 1 TiB device
# at mem=64M, 200M and 384M: what it prints, and whether it opens.
_kbench_memory() {
	_ours=$B/kernel/linux
	[ -x "$_ours" ] || "$ROOT/kernel/build.sh" "$B" ours >&2
	command -v fio >/dev/null || { echo "bench: fio missing (apt-get install fio)" >&2; return 1; }
	truncate -s 1T "$T/km-1t.img"
	truncate -s 8T "$T/km-8t.img"
	rm -f "$T/km-a.cow" "$T/km-b.cow"
	{
		guest_prologue
		cat <<'EOS'
echo 1 >/proc/sys/vm/overcommit_memory  # fio maps big libraries it never touches
memfree() { sync; echo 3 >/proc/sys/vm/drop_caches; sed -n 's/^MemFree: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
echo "MEMFREE closed $(memfree)"
exec 3</dev/ubda 4</dev/ubdb
echo "MEMFREE open $(memfree)"
echo "BITMAP open $(cat /sys/block/ubda/cow_bitmap_mem) $(cat /sys/block/ubdb/cow_bitmap_mem)"
for d in ubda ubdb; do
	fio --name=$d --filename=/dev/$d --rw=randwrite --bs=4k --direct=1 \
		--ioengine=psync --norandommap --randseed=7 --io_size=40000k \
		>/tmp/$d.out 2>&1 || { echo "FIO-FAILED $d"; cat /tmp/$d.out; }
done
sync
echo "MEMFREE written $(memfree)"
echo "BITMAP written $(cat /sys/block/ubda/cow_bitmap_mem) $(cat /sys/block/ubdb/cow_bitmap_mem)"
echo MEM-END
poweroff -f
EOS
	} >"$T/km.init"
	UML=$_ours UML_MEM=64M UML_TIMEOUT=${KBENCH_TIMEOUT:-600} uml_boot kmem "$T/km.init" "$T/km.log" \
		ubda="$T/km-a.cow,$T/km-1t.img" ubdb="$T/km-b.cow,$T/km-8t.img" || true
	sed -i 's/\r$//' "$T/km.log"
	grep -q MEM-END "$T/km.log" && ! grep -q FIO-FAILED "$T/km.log" ||
		{ tail -n 30 "$T/km.log" >&2; echo "bench: memory guest failed" >&2; return 1; }
	_mf() { sed -n "s/^MEMFREE $1 //p" "$T/km.log"; }
	_bm() { sed -n "s/^BITMAP $1 //p" "$T/km.log" | cut -d' ' -f"$2"; }
	_runs_a=$("$B/tests/cowutil" runs "$T/km-a.cow" | wc -l)
	_runs_b=$("$B/tests/cowutil" runs "$T/km-b.cow" | wc -l)
	_du_a=$(du -k "$T/km-a.cow" | cut -f1)
	_du_b=$(du -k "$T/km-b.cow" | cut -f1)
	rm -f "$T/km-a.cow" "$T/km-b.cow"

	# The stock driver on the 1 TiB device.
	_stock=/usr/bin/linux.uml
	: >"$T/km.stock"
	{
		guest_prologue
		cat <<'EOS'
if dd if=/dev/ubda of=/dev/null bs=4096 count=1 status=none; then echo "STOCK-OPEN ok"; else echo "STOCK-OPEN failed"; fi
echo "MEMFREE stock $(sed -n 's/^MemFree: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
echo MEM-END
poweroff -f
EOS
	} >"$T/kms.init"
	for _m in 64M 200M 384M; do
		rm -f "$T/km-s.cow"
		UML=$_stock UML_MEM=$_m UML_TIMEOUT=${KBENCH_TIMEOUT:-600} uml_boot "kms$_m" "$T/kms.init" "$T/kms.log" \
			ubda="$T/km-s.cow,$T/km-1t.img" || true
		sed -i 's/\r$//' "$T/kms.log"
		cp "$T/kms.log" "$T/kms.$_m.log"
		_open=$(sed -n 's/^STOCK-OPEN //p' "$T/kms.log")
		grep -q MEM-END "$T/kms.log" || _open="guest did not finish"
		_free=$(sed -n 's/^MEMFREE stock //p' "$T/kms.log")
		# What the kernel (and dd) said about the device, once each.
		_said=$(grep -e 'vmalloc error' -e 'Failed to vmalloc' -e "Can't open" -e '^dd:' "$T/kms.log" |
			awk '!seen[$0]++' | sed -e "s|$T/||g" -e 's/|/\\|/g' | head -n 4 |
			sed 's/^/`/; s/$/`/' | tr '\n' ' ' | sed 's/ $//')
		printf '%s\t%s\t%s\t%s\n' "$_m" "${_open:-?}" "${_free:-?}" "${_said:-(nothing)}" >>"$T/km.stock"
	done
	rm -f "$T/km-s.cow" "$T/km-1t.img" "$T/km-8t.img"

	emit "## Huge sparse COW devices in a small guest (ubd driver)"
	emit ""
	emit "Fresh COWs over sparse backing files of 1 TiB (ubda; its bitmap is 256 MiB)"
	emit "and 8 TiB (ubdb; 2 GiB), our kernel booted with mem=64M; in the guest,"
	emit "10,000 4 KiB writes at random offsets over each whole device (fio, O_DIRECT,"
	emit "psync). Guest MemFree is read after dropping the page cache. Bitmap memory"
	emit "is what the library holds in host memory for the device (ubdk_cow_mem,"
	emit "shown in the guest as /sys/block/ubdX/cow_bitmap_mem); it is not guest memory."
	emit ""
	emit "| | guest MemFree (KiB) | bitmap memory, 1 TiB device (bytes) | bitmap memory, 8 TiB device (bytes) |"
	emit "| --- | ---: | ---: | ---: |"
	emit "| devices closed | $(_mf closed) | | |"
	emit "| devices opened | $(_mf open) | $(_bm open 1) | $(_bm open 2) |"
	emit "| after 10,000 writes on each | $(_mf written) | $(_bm written 1) | $(_bm written 2) |"
	emit ""
	emit "Runs of present sectors afterwards (cowutil runs): $_runs_a on the 1 TiB"
	emit "COW, $_runs_b on the 8 TiB one; allocated on the host: $_du_a KiB and"
	emit "$_du_b KiB."
	emit ""
	emit "The stock driver (Debian's linux.uml) reads the whole bitmap into guest"
	emit "memory (vmalloc) when the device opens; on the 1 TiB device:"
	emit ""
	emit "| mem= | first read of /dev/ubda | guest MemFree after (KiB) | what the kernel and dd printed |"
	emit "| --- | --- | ---: | --- |"
	while IFS="$(printf '\t')" read -r _m _o _f _s; do
		emit "| $_m | $_o | $_f | $_s |"
	done <"$T/km.stock"
	emit ""
	emit "Reproduce: \`make kernel && bench/run.sh build kernel\`"
	emit ""
}

# KBENCH_PREVIOUS=PATH adds a third kernel to the same run: ours built from
# an earlier commit (its own checkout's `make kernel`), so that a change of
# the driver is measured against the driver before it, on the same machine
# at the same time (ratios against stock move with the machine).
_kbench_fio() {
	_ours=$B/kernel/linux
	_stock=$B/kernel/linux-stock
	_previous=${KBENCH_PREVIOUS:-}
	_kernels="stock ours${_previous:+ previous}"
	if [ ! -x "$_ours" ] || [ ! -x "$_stock" ]; then
		"$ROOT/kernel/build.sh" "$B" ours >&2
		"$ROOT/kernel/build.sh" "$B" stock >&2
	fi
	command -v fio >/dev/null || { echo "bench: fio missing (apt-get install fio)" >&2; return 1; }
	_bk=$T/kbench-backing.img
	truncate -s 1G "$_bk"
	_bk16=$T/kbench-backing16.img
	truncate -s 16G "$_bk16"
	_fio="fio --thread --direct=1 --ioengine=libaio --output-format=json --group_reporting"
	{
		guest_prologue
		cat <<EOS
run() { # name read|write device fio-args...
	n=\$1 d=\$2 dev=\$3
	shift 3
	$_fio --name=\$n --filename=/dev/\$dev "\$@" >/tmp/\$n.json 2>/tmp/\$n.err || { echo "FIO-FAILED \$n"; cat /tmp/\$n.err; }
	echo "RESULT \$n \$(jq ".jobs[0].\$d.bw_bytes" /tmp/\$n.json)"
}
run randwrite write ubda --rw=randwrite --bs=4k --iodepth=32 --iodepth_batch_submit=16 --iodepth_batch_complete_min=8 --size=1G --io_size=128M
run randread read ubda --rw=randread --bs=4k --iodepth=32 --iodepth_batch_submit=16 --iodepth_batch_complete_min=8 --size=1G --io_size=128M
run seqwrite write ubda --rw=write --bs=1M --iodepth=4 --size=1G
run seqread read ubda --rw=read --bs=1M --iodepth=4 --size=1G
run randwrite8s write ubdb --rw=randwrite --bs=4k --iodepth=32 --iodepth_batch_submit=16 --iodepth_batch_complete_min=8 --size=16G --runtime=8 --time_based
run randread8s read ubdb --rw=randread --bs=4k --iodepth=32 --iodepth_batch_submit=16 --iodepth_batch_complete_min=8 --size=16G --runtime=8 --time_based
run seqwrite8s write ubdb --rw=write --bs=1M --iodepth=4 --size=16G --runtime=8 --time_based
run seqread8s read ubdb --rw=read --bs=1M --iodepth=4 --size=16G --offset=8G --runtime=8 --time_based
echo BENCH-END
poweroff -f
EOS
	} >"$T/kbench.init"
	: >"$T/kbench.results"
	_i=0
	while [ "$_i" -lt "$REPEAT" ]; do
		for _k in $_kernels; do
			rm -f "$T/kbench.cow" "$T/kbench16.cow"
			eval "_kern=\$_$_k"
			UML=$_kern UML_MEM=512M UML_TIMEOUT=${KBENCH_TIMEOUT:-1200} uml_boot "kb$_k$_i" "$T/kbench.init" "$T/kbench.log" \
				ubda="$T/kbench.cow,$_bk" ubdb="$T/kbench16.cow,$_bk16" || true
			sed -i 's/\r$//' "$T/kbench.log"
			grep -q BENCH-END "$T/kbench.log" && ! grep -q FIO-FAILED "$T/kbench.log" ||
				{ tail -n 30 "$T/kbench.log" >&2; echo "bench: $_k guest failed" >&2; return 1; }
			sed -n "s/^RESULT /$_k /p" "$T/kbench.log" >>"$T/kbench.results"
		done
		_i=$((_i + 1))
	done
	rm -f "$T/kbench.cow" "$T/kbench16.cow" "$_bk" "$_bk16"
	# Median MB/s of kernel $1, test $2.
	_med() {
		awk -v k="$1" -v t="$2" '$1 == k && $2 == t { print $3 / 1e6 }' "$T/kbench.results" |
			sort -n | awk '{ a[NR] = $1 } END { printf "%.1f\n", a[int((NR + 1) / 2)] }'
	}
	emit "## In-guest throughput on a COW device (ubd driver)"
	emit ""
	emit "fio in a UML guest on /dev/ubda = fresh COW + sparse 1 GiB backing,"
	emit "O_DIRECT, libaio; the stock 6.1 driver and ours built from the same"
	emit "linux-source-6.1 and config, booted alternately, median of $REPEAT boots each."
	emit ""
	if [ -n "$_previous" ]; then
		emit "A third kernel, booted in turn with the other two: ours built from"
		emit "\`$(cat "$_previous.commit" 2>/dev/null || echo "$_previous")\` (before the change measured)."
		emit ""
		emit "| workload | stock (MB/s) | ubdkit (MB/s) | ubdkit / stock | previous ubdkit (MB/s) | ubdkit / previous |"
		emit "| --- | ---: | ---: | ---: | ---: | ---: |"
	else
		emit "| workload | stock (MB/s) | ubdkit (MB/s) | ubdkit / stock |"
		emit "| --- | ---: | ---: | ---: |"
	fi
	for _t in randwrite randread seqwrite seqread randwrite8s randread8s seqwrite8s seqread8s; do
		_s=$(_med stock $_t)
		_o=$(_med ours $_t)
		case $_t in
		randwrite) _d="4 KiB random writes, iodepth 32 (batches of 16), 128 MiB of new blocks" ;;
		randread) _d="4 KiB random reads, iodepth 32 (batches of 16), 128 MiB" ;;
		seqwrite) _d="sequential write 1 GiB, 1 MiB blocks, iodepth 4" ;;
		seqread) _d="sequential read 1 GiB, 1 MiB blocks, iodepth 4" ;;
		randwrite8s) _d="steady: 4 KiB random writes for 8 s over a fresh 16 GiB COW (new blocks)" ;;
		randread8s) _d="steady: 4 KiB random reads for 8 s, 16 GiB device" ;;
		seqwrite8s) _d="steady: sequential 1 MiB writes for 8 s" ;;
		seqread8s) _d="steady: sequential 1 MiB reads for 8 s (unwritten half)" ;;
		esac
		if [ -n "$_previous" ]; then
			_p=$(_med previous $_t)
			emit "| $_d | $_s | $_o | $(ratio "$_o" "$_s") | $_p | $(ratio "$_o" "$_p") |"
		else
			emit "| $_d | $_s | $_o | $(ratio "$_o" "$_s") |"
		fi
	done
	emit ""
	emit "Goal (issue 7): at least the stock driver's throughput everywhere and"
	emit "1.5 times it on random writes."
	emit ""
	emit "No row ends with an fsync: the stock 6.1 driver never carries out a"
	emit "flush. Its I/O thread runs do_io() once per data segment of a request,"
	emit "and a flush has none, so the fdatasync() inside do_io() is never reached"
	emit "(seen with strace: 32,768 random writes then fio's end_fsync, 65,536"
	emit "pwrite64 calls and no fdatasync). Ours fdatasyncs the COW on every flush"
	emit "(360 ms for the 128 MiB of scattered new blocks on this machine), so rows"
	emit "with an fsync compared a durable flush with a no-op (the tables before"
	emit "0.3 ended the write rows with one)."
	emit ""
	emit "Short rows (128 MiB, 1 GiB) last a fraction of a second and swing by"
	emit "two times from boot to boot on this shared machine; the steady rows run"
	emit "8 s each on a second device, a fresh COW over a sparse 16 GiB backing file."
	emit ""
	emit "Reproduce: \`make kernel kernel-stock && bench/run.sh build kernel\`"
	emit ""
}
