# Merging: ubdkit's uml_moo against uml-utilities' uml_moo on the realistic
# workload, new image and in place, with the copy-only floor in the same
# run: cp --sparse=always of the master plus a copy of the COW's data,
# both synced (our merge fsyncs its output before renaming it).
bench_moo() {
	_out=$T/merged.img
	_bk=$T/inplace-backing.img
	_cw=$T/inplace.cow
	PREP="rm -f $_out; sync"
	t_peer=$(median_time uml_moo "$CACHE/guest.cow" "$_out")
	rss_peer=$(PREP= peak_rss_kib uml_moo "$CACHE/guest.cow" "$T/p.img"); rm -f "$T/p.img"
	t_ours=$(median_time "$B/bin/uml_moo" -q "$CACHE/guest.cow" "$_out")
	rm -f "$_out"
	rss_ours=$(peak_rss_kib "$B/bin/uml_moo" -q "$CACHE/guest.cow" "$_out")
	alloc_ours=$(( $(stat -c %b "$_out") * 512 ))
	alloc_master=$(( $(stat -c %b "$CACHE/master.img") * 512 ))
	cow_bytes=$(( $("$B/tests/cowutil" info "$CACHE/guest.cow" | sed -n 's/^cow_sectors=//p') * 512 ))
	t_cp=$(median_time sh -c "cp --sparse=always '$CACHE/master.img' '$_out' && sync '$_out'")
	PREP="rm -f $T/cowcopy; sync"
	t_cowcopy=$(median_time sh -c "cp --sparse=always '$CACHE/guest.cow' '$T/cowcopy' && sync '$T/cowcopy'")
	rm -f "$_out" "$T/cowcopy"
	floor=$(awk -v a="$t_cp" -v b="$t_cowcopy" 'BEGIN { printf "%.3f", a + b }')

	# In place: each run merges into a fresh copy of the master (the copy
	# is made in PREP, untimed), with its COW pointed at it.
	PREP="rm -f $_bk $_cw; cp --sparse=always '$CACHE/master.img' $_bk && touch -r '$CACHE/master.img' $_bk && cp --sparse=always '$CACHE/guest.cow' $_cw && sync"
	t_peer_d=$(median_time uml_moo -d -b "$_bk" "$_cw")
	t_peer_d_sync=$(median_time sh -c "uml_moo -d -b '$_bk' '$_cw' && sync '$_bk'")
	t_ours_d=$(median_time "$B/bin/uml_moo" -q -d -b "$_bk" "$_cw")
	sh -c "$PREP"
	rss_ours_d=$(peak_rss_kib "$B/bin/uml_moo" -q -d -b "$_bk" "$_cw")
	unset PREP
	rm -f "$_bk" "$_cw"

	emit "## Merge (uml_moo)"
	emit ""
	emit "master.img + guest.cow merged into a new image, and in place into a copy"
	emit "of the master. Our new image is fsynced before it is renamed into place."
	emit ""
	emit "| command | time (s) | speed-up vs uml-utilities | peak RSS (KiB) |"
	emit "| --- | ---: | ---: | ---: |"
	emit "| \`uml_moo guest.cow new.img\` (uml-utilities) | $t_peer | 1.00 | $rss_peer |"
	emit "| \`uml_moo guest.cow new.img\` (ubdkit) | $t_ours | $(ratio "$t_peer" "$t_ours") | $rss_ours |"
	emit "| \`uml_moo -d -b copy.img guest.cow\` (uml-utilities) | $t_peer_d | 1.00 | |"
	emit "| \`uml_moo -d -b copy.img guest.cow && sync copy.img\` (uml-utilities, made durable) | $t_peer_d_sync | $(ratio "$t_peer_d" "$t_peer_d_sync") | |"
	emit "| \`uml_moo -d -b copy.img guest.cow\` (ubdkit, fsyncs and keeps a resume record) | $t_ours_d | $(ratio "$t_peer_d" "$t_ours_d") | $rss_ours_d |"
	emit ""
	emit "Copy-only floor, same run: \`cp --sparse=always master.img\` + sync $t_cp s,"
	emit "plus copying the COW's data (\`cp --sparse=always guest.cow\` + sync) $t_cowcopy s"
	emit "= $floor s; ubdkit's new-image merge takes $(ratio "$t_ours" "$floor") times that."
	emit "Allocated: new image $(echo "$alloc_ours" | numfmt --to=iec), master"
	emit "$(echo "$alloc_master" | numfmt --to=iec) + COW data $(echo "$cow_bytes" | numfmt --to=iec)."
	emit ""
	emit "Goals (issue 4): new image >= 10x faster than uml-utilities and within"
	emit "1.3x of the copy-only floor; -d >= 5x faster than uml-utilities' -d."
	emit ""
	emit "Reproduce: \`bench/run.sh build moo\`"
	emit ""
}
