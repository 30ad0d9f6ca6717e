# The library's merged view, read end to end and written out sparse
# (tests/cowutil merged), against uml-utilities' uml_moo writing the same
# image and cp --sparse=always of the master alone.  A baseline for the
# merge tool: how fast the library itself reads the pair.
bench_mergedview() {
	_out=$T/merged.img
	PREP="rm -f $_out"
	t_moo=$(median_time uml_moo "$CACHE/guest.cow" "$_out")
	t_lib=$(median_time "$B/tests/cowutil" merged "$CACHE/guest.cow" "$_out")
	t_cp=$(median_time cp --sparse=always "$CACHE/master.img" "$_out")
	rss_lib=$(PREP= peak_rss_kib "$B/tests/cowutil" merged "$CACHE/guest.cow" "$_out")
	rm -f "$_out"
	rss_moo=$(peak_rss_kib uml_moo "$CACHE/guest.cow" "$_out")
	rm -f "$_out"
	unset PREP
	emit "## Merged view read (baseline)"
	emit ""
	emit "Whole merged image of master.img + guest.cow written to a new sparse file."
	emit ""
	emit "| command | time (s) | vs uml_moo | peak RSS (KiB) |"
	emit "| --- | ---: | ---: | ---: |"
	emit "| \`uml_moo guest.cow out.img\` (uml-utilities) | $t_moo | 1.00 | $rss_moo |"
	emit "| \`cowutil merged guest.cow out.img\` (libubdk, reads every sector) | $t_lib | $(ratio "$t_lib" "$t_moo") | $rss_lib |"
	emit "| \`cp --sparse=always master.img out.img\` (master only) | $t_cp | $(ratio "$t_cp" "$t_moo") | |"
	emit ""
	emit "Reproduce: \`bench/run.sh build mergedview\`"
	emit ""
}
