#!/bin/sh
# nbdinfo --map --totals: data is what the bitmap counts (uml_imgstat
# --json), over a backing file that is all hole; with data in the backing
# file, that data shows too, and the COW's zeros are data (present).
. "$(dirname "$0")/functions.sh"

t_map_totals_match_bitmap() {
	need nbdkit nbdinfo
	truncate -s 16M master.img
	"$PEER_MKCOW" c.cow master.img >/dev/null || fail "uml_mkcow"
	randfile chunk 12288 && "$COWUTIL" write c.cow 4096 chunk || fail "cowutil write"
	head -c 8192 /dev/zero >zeros && "$COWUTIL" write c.cow $((5 * MiB)) zeros || fail "cowutil write"
	randfile chunk 512 && "$COWUTIL" write c.cow $((16 * MiB - 512)) chunk || fail "cowutil write"
	cow_bytes=$("$B/bin/uml_imgstat" --json c.cow | jq -r '.usage.cow_bytes')
	[ "$cow_bytes" = $((12288 + 8192 + 512)) ] || fail "uml_imgstat cow_bytes '$cow_bytes'"
	nbdkit -U - "$PLUGIN" c.cow --run 'nbdinfo --map --totals "$uri"' >totals.txt ||
		fail "nbdinfo --map --totals"
	data=$(awk '$NF == "data" { print $1 }' totals.txt)
	zero=$(awk '$NF == "hole,zero" { print $1 }' totals.txt)
	[ "$data" = "$cow_bytes" ] || fail "map data $data, bitmap $cow_bytes: $(cat totals.txt)"
	[ "$zero" = $((16 * MiB - cow_bytes)) ] || fail "map hole,zero $zero: $(cat totals.txt)"
	# Backing data at 8 MiB (1 MiB of it), not covered by the COW.
	randfile chunk $MiB && dd if=chunk of=master.img bs=1M seek=8 conv=notrunc status=none
	touch -d "@$(info_get c.cow mtime)" master.img
	nbdkit -U - "$PLUGIN" c.cow --run 'nbdinfo --map "$uri"' >map.txt || fail "nbdinfo --map"
	awk '{ print $1, $2, $NF }' map.txt >got.txt
	cat >want.txt <<EOF
0 4096 hole,zero
4096 12288 data
16384 5226496 hole,zero
5242880 8192 data
5251072 3137536 hole,zero
8388608 1048576 data
9437184 7339520 hole,zero
16776704 512 data
EOF
	diff want.txt got.txt >&2 || fail "nbdinfo --map differs"
}

run_test t_map_totals_match_bitmap
