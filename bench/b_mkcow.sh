# Mass cloning: 10,000 COW files on the multi-GiB master in one uml_mkcow
# call, against loops of uml-utilities' uml_mkcow and of qemu-img create
# with a qcow2 backing file (loops of PEER_N, reported per clone).
bench_mkcow() {
	_n=10000
	_peer_n=${BENCH_MKCOW_PEER_N:-1000}
	_d=$T/clones
	PREP="rm -rf $_d && mkdir -p $_d && sync"
	t_ours=$(median_time "$B/bin/uml_mkcow" -q --count $_n \
		--name "$_d/guest-%05d.cow" "$CACHE/master.img")
	_alloc_ours=$(du -sk "$_d" | cut -f1)
	cat >"$T/peer-loop.sh" <<EOS
i=0
while [ \$i -lt $_peer_n ]; do
	uml_mkcow "$_d/p\$i.cow" "$CACHE/master.img" >/dev/null || exit 1
	i=\$((i + 1))
done
EOS
	cat >"$T/qemu-loop.sh" <<EOS
i=0
while [ \$i -lt $_peer_n ]; do
	qemu-img create -q -f qcow2 -b "$CACHE/master.img" -F raw "$_d/q\$i.qcow2" >/dev/null || exit 1
	i=\$((i + 1))
done
EOS
	t_peer=$(median_time sh "$T/peer-loop.sh")
	_alloc_peer=$(du -sk "$_d" | cut -f1)
	t_qemu=$(median_time sh "$T/qemu-loop.sh")
	_alloc_qemu=$(du -sk "$_d" | cut -f1)
	unset PREP
	rm -rf "$_d"
	per() { awk -v t="$1" -v n="$2" 'BEGIN { printf "%.3f", t * 1000 / n }'; }
	kib() { awk -v k="$1" -v n="$2" 'BEGIN { printf "%.1f", k / n }'; }
	p_ours=$(per "$t_ours" $_n) p_peer=$(per "$t_peer" "$_peer_n") p_qemu=$(per "$t_qemu" "$_peer_n")
	emit "## Mass cloning (uml_mkcow)"
	emit ""
	emit "COW files on the 6 GiB master: ours makes $_n in one call; the peers"
	emit "are run in a shell loop of $_peer_n calls. Allocated = du per clone."
	emit ""
	emit "| command | clones | total (s) | per clone (ms) | vs ours | allocated per clone (KiB) |"
	emit "| --- | ---: | ---: | ---: | ---: | ---: |"
	emit "| \`uml_mkcow --count $_n --name 'guest-%05d.cow' master.img\` (ubdkit) | $_n | $t_ours | $p_ours | 1.00 | $(kib "$_alloc_ours" $_n) |"
	emit "| loop of \`uml_mkcow COW master.img\` (uml-utilities) | $_peer_n | $t_peer | $p_peer | $(ratio "$p_peer" "$p_ours") | $(kib "$_alloc_peer" "$_peer_n") |"
	emit "| loop of \`qemu-img create -f qcow2 -b master.img -F raw\` | $_peer_n | $t_qemu | $p_qemu | $(ratio "$p_qemu" "$p_ours") | $(kib "$_alloc_qemu" "$_peer_n") |"
	emit ""
	emit "Goal (issue 3): all $_n clones in under 1 s on 2 cores. Each of ours is"
	emit "durable (synced) before its name appears; the peers do not sync."
	emit ""
	emit "Reproduce: \`bench/run.sh build mkcow\`"
	emit ""
	bench_mkcow_diff
}

# From an image back to a COW: uml_mkcow --diff of a flattened image against
# its master, against the floor of reading both files once (cat of each), on
# a synthetic pair built in $T (not the cached workload, so that the pair's
# changes are known): a 1 GiB master with 768 MiB of random data in 8
# extents, and a copy with 1000 scattered 4 KiB writes, 16 MiB zeroed and
# 8 MiB written into a hole.  Checked: the merge is the image, and the COW
# holds exactly the sectors that differ (bench/diffruns.py).
bench_mkcow_diff() {
	_m=$T/diff-master.img _f=$T/diff-flat.img _c=$T/diff.cow
	rm -f "$_m" "$_f"
	truncate -s 1G "$_m"
	for _i in 0 1 2 3 4 5 6 7; do
		head -c 96M /dev/urandom | dd of="$_m" bs=1M seek=$((_i * 128)) conv=notrunc status=none
	done
	cp --sparse=always "$_m" "$_f"
	# 4 KiB block numbers inside the data extents (32768 blocks apart).
	awk 'BEGIN { srand(7); for (i = 0; i < 1000; i++) print int(rand() * 8) * 32768 + int(rand() * 24576) }' |
		xargs -n 50 sh -c 'for b; do
			dd if=/dev/urandom of="$0" bs=4096 count=1 seek=$b conv=notrunc status=none
		done' "$_f"
	dd if=/dev/zero of="$_f" bs=1M seek=300 count=16 conv=notrunc status=none
	head -c 8M /dev/urandom | dd of="$_f" bs=1M seek=100 conv=notrunc status=none
	sync
	PREP="rm -f $_c"
	t_diff=$(median_time "$B/bin/uml_mkcow" -q --diff "$_f" "$_c" "$_m")
	unset PREP
	t_floor=$(median_time sh -c "cat '$_f' >/dev/null && cat '$_m' >/dev/null")
	rm -f "$_c"
	"$B/bin/uml_mkcow" -q --json --diff "$_f" "$_c" "$_m" >"$T/diff.json"
	_written=$(sed -n 's/.*"sectors_written":\([0-9]*\).*/\1/p' "$T/diff.json")
	_read=$(sed -n 's/.*"bytes_read":\([0-9]*\).*/\1/p' "$T/diff.json")
	_exact=no
	python3 "$ROOT/bench/diffruns.py" "$_f" "$_m" >"$T/want.runs" &&
		"$B/tests/cowutil" runs "$_c" | cmp -s - "$T/want.runs" && _exact=yes
	_merged=no
	rm -f "$T/diff-merged.img"
	"$B/bin/uml_moo" -q "$_c" "$T/diff-merged.img" && cmp -s "$T/diff-merged.img" "$_f" && _merged=yes
	rm -f "$_m" "$_f" "$_c" "$T/diff-merged.img"
	emit "## From an image back to a COW (uml_mkcow --diff)"
	emit ""
	emit "A flattened image compared with its master (synthetic: 1 GiB apparent,"
	emit "768 MiB of data in 8 extents; 1000 scattered 4 KiB writes, 16 MiB zeroed,"
	emit "8 MiB written into a hole), warm page cache, against the floor of reading"
	emit "both files once."
	emit ""
	emit "| command | time (s) | vs floor |"
	emit "| --- | ---: | ---: |"
	emit "| \`uml_mkcow --diff flat.img new.cow master.img\` (fsyncs the COW) | $t_diff | $(ratio "$t_diff" "$t_floor") |"
	emit "| \`cat flat.img >/dev/null; cat master.img >/dev/null\` (floor) | $t_floor | 1.00 |"
	emit ""
	emit "The COW holds $_written sectors; $_read bytes read (holes skipped)."
	emit "COW sectors = the sectors that differ: $_exact; merged by uml_moo = the image: $_merged."
	emit ""
	emit "Goal (issue: UML disks in the NBD ecosystem, part 2): within 1.5x of the floor."
	emit ""
	emit "Reproduce: \`bench/run.sh build mkcow\`"
	emit ""
}
