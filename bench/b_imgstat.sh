# Describing images (uml_imgstat): the full stat, --map and --check of a
# 1 TiB sparse COW with scattered dirty sectors over a 1 TiB sparse ext4,
# the full stat of the same over a 1 TiB image holding nothing (the
# bitmap's cost alone, with nothing for blkid and ext4 to find), and
# --files on the realistic workload (master.img + guest.cow).  No peer tool
# answers these questions; for scale, the library's own open and count of
# the 1 TiB COW (cowutil info) is timed in the same run.

# Mark N scattered sectors of COW dirty, as a guest writing them would
# leave the file: data in the slot, then the bit (perl-base is always
# there).  The same sectors for the same N.
#   imgstat_dirty COW N
imgstat_dirty() {
	_bo=$("$B/tests/cowutil" info "$1" | sed -n 's/^bitmap_offset=//p')
	_do=$("$B/tests/cowutil" info "$1" | sed -n 's/^data_offset=//p')
	_sectors=$("$B/tests/cowutil" info "$1" | sed -n 's/^sectors=//p')
	perl -e '
		my ($f, $bo, $do, $sectors, $n) = @ARGV;
		open(my $h, "+<", $f) or die "$f: $!"; binmode $h;
		my $x = 12345;
		for (1 .. $n) {
			$x = ($x * 1103515245 + 12345) % 2147483648;
			my $s = $x % $sectors;
			seek($h, $do + $s * 512, 0); print $h ("d" x 512);
			seek($h, $bo + int($s / 8), 0); read($h, my $b, 1);
			$b = chr(ord($b) | (1 << ($s % 8)));
			seek($h, $bo + int($s / 8), 0); print $h $b;
		}
		close($h) or die;
	' "$1" "$_bo" "$_do" "$_sectors" "$2"
}

bench_imgstat() {
	_big=$T/big.img
	_cow=$T/big.cow
	_n=${BENCH_IMGSTAT_SECTORS:-10000}
	rm -f "$_big" "$_cow"
	truncate -s 1T "$_big"
	mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1,nodiscard "$_big" ||
		{ echo "bench: mkfs.ext4 of the 1 TiB image failed" >&2; return 1; }
	"$B/bin/uml_mkcow" "$_cow" "$_big" || return 1
	imgstat_dirty "$_cow" "$_n" || return 1
	_dirty=$("$B/bin/uml_imgstat" --json "$_cow" | sed -n 's/.*"cow_sectors":\([0-9]*\).*/\1/p')
	_runs=$("$B/bin/uml_imgstat" --json "$_cow" | sed -n 's/.*"runs":\([0-9]*\).*/\1/p')
	_alloc=$(( $(stat -c %b "$_cow") * 512 ))

	t_stat=$(median_time "$B/bin/uml_imgstat" "$_cow")
	rss_stat=$(peak_rss_kib "$B/bin/uml_imgstat" "$_cow")
	t_map=$(median_time "$B/bin/uml_imgstat" --map "$_cow")
	t_check=$(median_time "$B/bin/uml_imgstat" --check "$_cow")
	t_lib=$(median_time "$B/tests/cowutil" info "$_cow")
	rm -f "$_big" "$_cow"

	# The same COW over an image holding nothing.
	truncate -s 1T "$_big"
	"$B/bin/uml_mkcow" "$_cow" "$_big" || return 1
	imgstat_dirty "$_cow" "$_n" || return 1
	t_plain=$(median_time "$B/bin/uml_imgstat" "$_cow")
	rss_plain=$(peak_rss_kib "$B/bin/uml_imgstat" "$_cow")

	t_wstat=$(median_time "$B/bin/uml_imgstat" "$CACHE/guest.cow")
	t_files=$(median_time "$B/bin/uml_imgstat" --files "$CACHE/guest.cow")
	rss_files=$(peak_rss_kib "$B/bin/uml_imgstat" --files "$CACHE/guest.cow")
	_sum=$("$B/bin/uml_imgstat" --files "$CACHE/guest.cow" | sed -n 's/^\([0-9]* added, .*renamed\)$/\1/p')
	rm -f "$_big" "$_cow"

	emit "## Describing images (uml_imgstat)"
	emit ""
	emit "A 1 TiB sparse COW over a 1 TiB sparse ext4 image, with $_n scattered"
	emit "dirty sectors ($_dirty sectors in $_runs runs; the COW allocates"
	emit "$(echo "$_alloc" | numfmt --to=iec)), and the realistic workload's guest.cow."
	emit ""
	emit "| command | time (s) | peak RSS (KiB) |"
	emit "| --- | ---: | ---: |"
	emit "| \`uml_imgstat big.cow\` (full stat: header, backing check, usage, blkid + ext4 of the merged view) | $t_stat | $rss_stat |"
	emit "| \`uml_imgstat --map big.cow\` | $t_map | |"
	emit "| \`uml_imgstat --check big.cow\` | $t_check | |"
	emit "| \`cowutil info big.cow\` (the library's open and count of the COW alone; reference) | $t_lib | |"
	emit "| \`uml_imgstat big.cow\` over a 1 TiB image holding nothing (full stat: the bitmap's cost, nothing for blkid and ext4 to find) | $t_plain | $rss_plain |"
	emit "| \`uml_imgstat guest.cow\` (workload, full stat) | $t_wstat | |"
	emit "| \`uml_imgstat --files guest.cow\` (workload: $_sum) | $t_files | $rss_files |"
	emit ""
	emit "uml_imgstat reads the COW through the library, whose bitmap is"
	emit "loaded lazily and sparsely: the 1 TiB stat costs what the written"
	emit "sectors cost, in time and memory."
	emit ""
	emit "Goals (issue 5): full stat of the 1 TiB COW < 1 s; --files on the"
	emit "realistic workload < 2 s; full stat of the COW over an empty image"
	emit "< 0.05 s."
	emit ""
	emit "Reproduce: \`bench/run.sh build imgstat\`"
	emit ""
}
