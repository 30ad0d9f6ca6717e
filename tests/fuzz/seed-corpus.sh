#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Write the header fuzzer's seed corpus into DIR:
#   tests/fuzz/seed-corpus.sh DIR
# Valid headers of every layout (v1 both byte orders, v2, v3 with 512- and
# 4096-byte sectors, the broken 64-bit v3) and a few near misses, built
# byte by byte from the documented layout with printf and dd, so that no
# COW tool needs to be installed.  Rerunning rewrites the same files with
# the same bytes and leaves anything else in DIR (libFuzzer's finds) alone.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
mkdir -p "$dir"

MAGIC=1330597709          # 0x4f4f4f4d, "OOOM" big-endian
BACKING=/var/lib/uml/backing.img

# put FILE OFFSET VALUE BYTES be|le: store an unsigned integer in place.
put() {
	_f=$1 _off=$2 _v=$3 _n=$4 _order=$5 _s='' _i=0
	while [ "$_i" -lt "$_n" ]; do
		if [ "$_order" = be ]; then
			_sh=$(( (_n - 1 - _i) * 8 ))
		else
			_sh=$(( _i * 8 ))
		fi
		_s="$_s\\$(printf '%03o' $(( (_v >> _sh) & 255 )))"
		_i=$(( _i + 1 ))
	done
	# shellcheck disable=SC2059
	printf "$_s" | dd of="$_f" bs=1 seek="$_off" conv=notrunc 2>/dev/null
}

# puts FILE OFFSET STRING: store a string (no NUL; the file is zeroed).
puts() {
	printf '%s' "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

# new FILE LEN: a file of LEN zero bytes.
new() {
	rm -f "$1"
	dd if=/dev/zero of="$1" bs="$2" count=1 2>/dev/null
}

# v1 NAME be|le MTIME SIZE SECTORSIZE (280 bytes, host-endian)
v1() {
	_t=$dir/.$1.tmp
	new "$_t" 280
	put "$_t" 0 $MAGIC 4 "$2"
	put "$_t" 4 1 4 "$2"
	puts "$_t" 8 "$BACKING"
	put "$_t" 264 "$3" 4 "$2"
	put "$_t" 268 "$4" 8 "$2"
	put "$_t" 276 "$5" 4 "$2"
	mv -f "$_t" "$dir/$1"
}

# v2 NAME MTIME SIZE SECTORSIZE (4120 bytes, big-endian)
v2() {
	_t=$dir/.$1.tmp
	new "$_t" 4120
	put "$_t" 0 $MAGIC 4 be
	put "$_t" 4 2 4 be
	puts "$_t" 8 "$BACKING"
	put "$_t" 4104 "$2" 4 be
	put "$_t" 4108 "$3" 8 be
	put "$_t" 4116 "$4" 4 be
	mv -f "$_t" "$dir/$1"
}

# v3 NAME MAGIC VERSION MTIME SIZE SECTORSIZE ALIGNMENT (4128 bytes)
v3() {
	_t=$dir/.$1.tmp
	new "$_t" 4128
	put "$_t" 0 "$2" 4 be
	put "$_t" 4 "$3" 4 be
	put "$_t" 8 "$4" 4 be
	put "$_t" 12 "$5" 8 be
	put "$_t" 20 "$6" 4 be
	put "$_t" 24 "$7" 4 be
	put "$_t" 28 0 4 be                 # cow_format: bitmap
	puts "$_t" 32 "$BACKING"
	mv -f "$_t" "$dir/$1"
}

# v3broken NAME MTIME SIZE SECTORSIZE ALIGNMENT: the unpacked 64-bit layout
# (8-byte mtime, so everything after it moves by 4; 4136 bytes).
v3broken() {
	_t=$dir/.$1.tmp
	new "$_t" 4136
	put "$_t" 0 $MAGIC 4 be
	put "$_t" 4 3 4 be
	put "$_t" 8 "$2" 4 be               # htonl(mtime) in a 64-bit time_t
	put "$_t" 16 "$3" 8 be
	put "$_t" 24 "$4" 4 be
	put "$_t" 28 "$5" 4 be
	put "$_t" 32 0 4 be                 # cow_format
	puts "$_t" 36 "$BACKING"
	mv -f "$_t" "$dir/$1"
}

MTIME=1700000000
# Sizes: 1 MiB (a whole number of bitmap bytes), and sizes whose sector
# count is not a multiple of 8 (the v1/v2 rounding bug) or of the sector.
v1 seed-v1-le le $MTIME 1048576 512
v1 seed-v1-be be $MTIME 1048576 512
v1 seed-v1-le-odd le $MTIME 1000000 512
v2 seed-v2 $MTIME 1000000 512
v2 seed-v2-4096 $MTIME 67108864 4096
v3 seed-v3-512 $MAGIC 3 $MTIME 10487296 512 4096
v3 seed-v3-4096 $MAGIC 3 $MTIME 1073745920 4096 4096
v3 seed-v3-align512 $MAGIC 3 $MTIME 3000 512 512
v3broken seed-v3-broken $MTIME 10487296 512 4096

# Near misses: one field wrong each.
v3 seed-bad-magic 1330597710 3 $MTIME 1048576 512 4096
v3 seed-version-4 $MAGIC 4 $MTIME 1048576 512 4096
v3 seed-sectorsize-0 $MAGIC 3 $MTIME 1048576 0 4096
v3 seed-alignment-0 $MAGIC 3 $MTIME 1048576 512 0
v3 seed-sectorsize-3000 $MAGIC 3 $MTIME 1048576 3000 4096
