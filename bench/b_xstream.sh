# Compressed backups as extent streams (uml_backup -c): size and time
# follow the data, not the device.  An empty COW over a sparse 64 GiB
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
	emit "## Compressed backups: extent streams (uml_backup -c)"
	emit ""
	emit "| COW | its data | format | stored | time | restore |"
	emit "|-----|---------:|--------|-------:|-----:|--------:|"
	for _c in "e64.cow:empty, 64 GiB device" "s1t.cow:10,000 dirty 512-byte sectors, 1 TiB device"; do
		_f=${_c%%:*}
		_d=$(du -k "$_x/$_f" | cut -f1)
		for _fmt in lz4 gzip; do
			_t=$(median_time "$B/bin/uml_backup" -q -f -c "$_fmt" --offline "$_x/$_f" "$_x/bk")
			_s=$(stat -c %s "$_x/bk"/ubd0.ubdx.*)
			_r=$(median_time "$B/bin/uml_backup" -q restore -f "$_x/bk"/ubd0.ubdx.* "$_x/r.cow")
			emit "| ${_c#*:} | $_d KiB allocated | ubdx.$_fmt | $_s bytes | $_t s | $_r s |"
			rm -rf "$_x/bk" "$_x/r.cow"
		done
	done
	emit ""
	emit "Time is one read pass over the COW's allocated data plus the manifest's"
	emit "checksums, whose definition (1 MiB units, holes included) costs a"
	emit "table look-up per hole unit and a full SHA-256 of every unit holding"
	emit "data: with 10,000 sectors scattered over 1 TiB that is ~10,000 MiB"
	emit "hashed for ~5 MiB of data, which is most of the time."
	emit ""
	rm -rf "$_x"
}
