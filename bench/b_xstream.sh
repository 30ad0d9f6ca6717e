# Backups whose size and time follow the data, not the device: compressed
# ones are extent streams (uml_backup -c), uncompressed ones a sparse COW;
# both are checked with a chunk table written in the same pass (XXH3-128
# of each 64 KiB chunk that holds data, read by SEEK_DATA extents).  An empty COW over a sparse 64 GiB
# backing file, and a 1 TiB COW with 10,000 scattered dirty 512-byte
# sectors (cowutil scatter: random places, through the library).  Before
# 0.3 the whole COW was compressed, holes as zeros: 258 MiB and about a
# second for the empty 64 GiB one, about 4 GiB for 1 TiB.

bench_xstream() {
	_x=$T/xs
	mkdir -p "$_x"
	truncate -s 64G "$_x/b64.img"
	"$B/bin/uml_mkcow" -q "$_x/e64.cow" "$_x/b64.img"
	truncate -s 1T "$_x/b1t.img"
	"$B/bin/uml_mkcow" -q "$_x/s1t.cow" "$_x/b1t.img"
	"$B/tests/cowutil" scatter "$_x/s1t.cow" 10000 42
	emit "## Backups that follow the data: extent streams and chunk tables"
	emit ""
	emit "| COW | its data | format | stored | time | restore | verify |"
	emit "|-----|---------:|--------|-------:|-----:|--------:|-------:|"
	for _c in "e64.cow:empty, 64 GiB device" "s1t.cow:10,000 dirty 512-byte sectors, 1 TiB device"; do
		_f=${_c%%:*}
		_d=$(du -k "$_x/$_f" | cut -f1)
		for _fmt in lz4 gzip none; do
			if [ "$_fmt" = none ]; then
				_t=$(median_time "$B/bin/uml_backup" -q -f --offline "$_x/$_f" "$_x/bk")
				_s=$(du -B1 "$_x/bk/ubd0.cow" | cut -f1)
				_r="(a COW file)"
				_fn="cow (sparse; size allocated)"
			else
				_t=$(median_time "$B/bin/uml_backup" -q -f -c "$_fmt" --offline "$_x/$_f" "$_x/bk")
				_s=$(stat -c %s "$_x/bk"/ubd0.ubdx.*)
				_r="$(median_time "$B/bin/uml_backup" -q restore -f "$_x/bk"/ubd0.ubdx.* "$_x/r.cow") s"
				_fn="ubdx.$_fmt"
			fi
			_v=$(median_time "$B/bin/uml_backup" -q verify "$_x/bk")
			_s=$((_s + $(stat -c %s "$_x/bk/ubd0.chunks")))
			emit "| ${_c#*:} | $_d KiB allocated | $_fn | $_s bytes | $_t s | $_r | $_v s |"
			rm -rf "$_x/bk" "$_x/r.cow"
		done
	done
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
