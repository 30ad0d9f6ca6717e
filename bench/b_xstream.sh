# Backups whose size and time follow the data, not the device: compressed
# ones are extent streams (uml_backup -c), uncompressed ones a sparse COW;
# both are checked with a chunk table written in the same pass (XXH3-128
# of each 64 KiB chunk that holds data, read by SEEK_DATA extents).  An empty COW over a sparse 64 GiB
# backing file, and a 1 TiB COW with 10,000 scattered dirty 512-byte
# sectors (cowutil scatter: random places, through the library).  Before
# 0.3 the whole COW was compressed, holes as zeros: 258 MiB and about a
# second for the empty 64 GiB one, about 4 GiB for 1 TiB.

_xs_cases="e64.cow:empty, 64 GiB device
s1t.cow:10,000 dirty 512-byte sectors, 1 TiB device"

_xs_setup() {
	_x=$T/xs
	mkdir -p "$_x"
	truncate -s 64G "$_x/b64.img"
	"$B/bin/uml_mkcow" -q "$_x/e64.cow" "$_x/b64.img"
	truncate -s 1T "$_x/b1t.img"
	"$B/bin/uml_mkcow" -q "$_x/s1t.cow" "$_x/b1t.img"
	"$B/tests/cowutil" scatter "$_x/s1t.cow" 10000 42
}

# One backup, restore and verify of $_f in format $_fmt (none: a COW) by
# the build BB, into a directory of its side.
_xs_backup() {
	if [ "$_fmt" = none ]; then
		"$BB/bin/uml_backup" -q -f --offline "$_x/$_f" "$_x/bk.$(side)"
	else
		"$BB/bin/uml_backup" -q -f -c "$_fmt" --offline "$_x/$_f" "$_x/bk.$(side)"
	fi
}
_xs_restore() { "$BB/bin/uml_backup" -q restore -f "$_x/bk.$(side)"/ubd0.ubdx.* "$_x/r.$(side).cow"; }
_xs_verify() { "$BB/bin/uml_backup" -q verify "$_x/bk.$(side)"; }
# Bytes stored by the last backup of a side, its chunk table included.
_xs_stored() {
	if [ "$_fmt" = none ]; then
		_s=$(du -B1 "$_x/bk.$1/ubd0.cow" | cut -f1)
	else
		_s=$(stat -c %s "$_x/bk.$1"/ubd0.ubdx.*)
	fi
	echo $((_s + $(stat -c %s "$_x/bk.$1/ubd0.chunks")))
}
_xs_fmt_name() { if [ "$_fmt" = none ]; then echo "cow (sparse; size allocated)"; else echo "ubdx.$_fmt"; fi; }

bench_xstream() {
	_xs_setup
	emit "## Backups that follow the data: extent streams and chunk tables"
	emit ""
	emit "| COW | its data | format | stored | time | restore | verify |"
	emit "|-----|---------:|--------|-------:|-----:|--------:|-------:|"
	while IFS= read -r _c <&3; do
		_f=${_c%%:*}
		_d=$(du -k "$_x/$_f" | cut -f1)
		for _fmt in lz4 gzip none; do
			_t=$(median_time _xs_backup)
			_s=$(_xs_stored after)
			_r="(a COW file)"
			[ "$_fmt" = none ] || _r="$(median_time _xs_restore) s"
			_v=$(median_time _xs_verify)
			emit "| ${_c#*:} | $_d KiB allocated | $(_xs_fmt_name) | $_s bytes | $_t s | $_r | $_v s |"
			rm -rf "$_x/bk.after" "$_x/r.after.cow"
		done
	done 3<<EOS
$_xs_cases
EOS
	emit ""
	emit "Stored includes the chunk table (24 bytes per 64 KiB chunk holding data)."
	emit "A backup is one pass over the COW's data extents: each chunk holding"
	emit "data is read (its holes not: a dirty sector costs a 4 KiB read) and"
	emit "hashed once for the table and the stream. Restore writes the records"
	emit "and reads back the chunks holding data to check the table; verify"
	emit "reads the stream (or the COW's data) once. Before, the manifest's"
	emit "SHA-256 of every MiB holding data made the 1 TiB case take 25 s to"
	emit "back up and 11 s to restore."
	emit ""
	emit "Reproduce: \`bench/run.sh build xstream\`"
	emit ""
	rm -rf "$_x"
}

# One row of the before/after table: ACTION by both builds, timed.
#   _xs_vs ACTION FUNCTION FLOOR
_xs_vs() {
	set -- "$1" "$3" $(BUILDS="$BEFORE $B" median_time "$2")
	read -r _cb _ca <"$T/cpu.medians"
	echo "$1: $_what|$3|$4|$2|$_cb|$_ca" >>"$T/xs.rows"
}

# Before/after mode: the same backups, restores and verifies by both builds
# in turn.  Floors: a durable copy of the COW's allocated data
# (cp --sparse=always and sync, for the backup and the restore: both
# fsync) and reading the backup's data extents once (for verify).
bench_xstream_vs() {
	_xs_setup
	: >"$T/xs.rows"
	while IFS= read -r _c <&3; do
		_f=${_c%%:*}
		_fl_cp=$(PREP="rm -f $_x/floor.cow" median_time sh -c "cp --sparse=always '$_x/$_f' '$_x/floor.cow' && sync '$_x/floor.cow'")
		rm -f "$_x/floor.cow"
		for _fmt in lz4 gzip none; do
			_what="${_c#*:}, $(_xs_fmt_name)"
			_xs_vs backup _xs_backup "$_fl_cp"
			echo "stored (bytes): $_what|$(_xs_stored before)|$(_xs_stored after)|" >>"$T/xs.rows"
			if [ "$_fmt" != none ]; then
				_xs_vs restore _xs_restore "$_fl_cp"
			fi
			_fl_rd=$(median_time read_extents "$_x/bk.after"/*)
			_xs_vs verify _xs_verify "$_fl_rd"
			rm -rf "$_x"/bk.* "$_x"/r.*.cow
		done
	done 3<<EOS
$_xs_cases
EOS
	emit "## Extent streams and chunk tables, before and after"
	emit ""
	emit "The figures of \"Backups that follow the data\" (uml_backup --offline of"
	emit "an empty COW on a 64 GiB device and of 10,000 dirty 512-byte sectors on"
	emit "a 1 TiB one; restore and verify of each backup) by two builds in one"
	emit "run, alternating: before is $(vs_label "$BEFORE"), after $(vs_label "$B")."
	emit "Floors: \`cp --sparse=always\` of the COW and \`sync\` of the copy (backup,"
	emit "restore: both fsync what they write) and reading the backup's data"
	emit "extents once (verify; a python script, its start included). CPU:"
	emit "user + system time of each run."
	emit ""
	vs_head s
	while IFS='|' read -r _w _b _a _fl _cb _ca; do
		vs_row "$_w" "$_b" "$_a" "$_fl" "$_cb" "$_ca"
	done <"$T/xs.rows"
	emit ""
	emit "Reproduce: \`git worktree add --detach /tmp/before OLD && make -C /tmp/before -j2\`,"
	emit "then \`BENCH_BEFORE=/tmp/before/build bench/run.sh build xstream\` (OLD: the before commit)."
	emit ""
	rm -rf "$_x"
}
