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
}
