#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Make the images of the --files fuzzer (tests/fuzz/fuzz_files.c) in
# IMAGES and its seed corpus in CORPUS:
#   tests/fuzz/seed-files.sh IMAGES CORPUS
# Two small ext4 pairs, N.before (the backing file) and N.after (the guest's
# view): 0 with 1 KiB blocks (and a journal), 1 with 4 KiB blocks.  The
# guest wrote files, renamed a directory and a file, made a hard link and a
# directory, deleted a file.  Seeds: each image as it is, with checksums
# ignored, and with one byte changed in each kind of metadata (superblock,
# group descriptors, bitmaps, inode table, directory blocks), in the
# backing file and through the COW.  UUID, hash seed and times are fixed:
# rerunning gives the same bytes.  Needs mke2fs, debugfs and dumpe2fs.
set -eu

[ $# -eq 2 ] || { echo "usage: $0 IMAGES CORPUS" >&2; exit 2; }
img=$1 corpus=$2
mkdir -p "$img" "$corpus"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/seed-files.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export E2FSPROGS_FAKE_TIME=1600000000

# byte VALUE: one raw byte.
byte() {
	# shellcheck disable=SC2059
	printf "\\$(printf '%03o' $(($1 & 255)))"
}

# seed FILE IMAGE_BYTE [KIND OFFSET VALUE]...: an input (KIND 0 backing, 1 COW).
seed() {
	_f=$1 _b=$2
	shift 2
	{
		byte "$_b"
		while [ $# -ge 3 ]; do
			byte "$1"; byte "$2"; byte $(($2 >> 8)); byte $(($2 >> 16)); byte "$3"
			shift 3
		done
	} >"$corpus/$_f"
}

# make_pair N BLOCKSIZE SIZE [mke2fs options]
make_pair() {
	_n=$1 _bs=$2 _size=$3
	shift 3
	_t=$tmp/tree$_n
	mkdir -p "$_t/etc" "$_t/data/sub" "$_t/docs" "$_t/empty"
	echo "hello" >"$_t/hello.txt"
	echo "version=1" >"$_t/etc/app.conf"
	echo "keep" >"$_t/etc/keep.conf"
	seq 1 3000 >"$_t/data/big.log"
	echo "move me" >"$_t/data/move.txt"
	echo "in sub" >"$_t/data/sub/s.txt"
	echo "doc" >"$_t/docs/a.txt"
	ln -s etc/app.conf "$_t/link"
	mke2fs -q -F -t ext4 -b "$_bs" -N 64 -U 6b1f5d3e-0a6e-4a8b-9d3c-2f5e7a9b1c0d \
		-E hash_seed=0b1f5d3e-0a6e-4a8b-9d3c-2f5e7a9b1c0d "$@" \
		-d "$_t" "$img/$_n.before" "$_size" >/dev/null 2>&1
	cp "$img/$_n.before" "$img/$_n.after"
	seq 1 500 >"$tmp/new.txt"
	debugfs -w -f - "$img/$_n.after" >/dev/null 2>&1 <<-EOF
		write $tmp/new.txt new.txt
		mkdir newdir
		write $tmp/new.txt newdir/inner.txt
		ln data docs/data-renamed
		unlink data
		ln docs/data-renamed/move.txt moved.txt
		unlink docs/data-renamed/move.txt
		ln etc/keep.conf etc/keep-hardlink.conf
		sif etc/keep.conf links_count 2
		rm hello.txt
		rm docs/a.txt
		write $tmp/new.txt docs/a.txt
	EOF
	cmp -s "$img/$_n.before" "$img/$_n.after" && { echo "$0: debugfs changed nothing" >&2; exit 1; }

	# Where the metadata is, for the seeds.
	_itab=$(dumpe2fs "$img/$_n.before" 2>/dev/null |
		sed -n 's/.*Inode table at \([0-9]*\)-.*/\1/p' | head -n 1)
	_bbm=$(dumpe2fs "$img/$_n.before" 2>/dev/null |
		sed -n 's/.*Block bitmap at \([0-9]*\).*/\1/p' | head -n 1)
	_root=$(debugfs -R "blocks /" "$img/$_n.before" 2>/dev/null | tr -d ' \n')
	_docs=$(debugfs -R "blocks /docs" "$img/$_n.before" 2>/dev/null | tr -d ' \n')
	_sb=1024 _gdt=$(( (_bs == 1024 ? 2 : 1) * _bs ))
	_it=$((_itab * _bs)) _isz=256

	seed "$_n-plain" "$_n"
	seed "$_n-nocsum" $((_n | 128))
	for _k in 0 1; do
		seed "$_n-$_k-first-data-block" "$_n" "$_k" $((_sb + 20)) 148
		seed "$_n-$_k-inodes-count" $((_n | 128)) "$_k" $((_sb + 1)) 7
		seed "$_n-$_k-log-block-size" $((_n | 128)) "$_k" $((_sb + 24)) 2
		seed "$_n-$_k-first-ino" $((_n | 128)) "$_k" $((_sb + 84)) 200
		seed "$_n-$_k-gdt-inode-table" $((_n | 128)) "$_k" $((_gdt + 8)) 99
		seed "$_n-$_k-gdt-block-bitmap" $((_n | 128)) "$_k" "$_gdt" 250
		seed "$_n-$_k-block-bitmap" "$_n" "$_k" $((_bbm * _bs)) 0
		# Root (inode 2) and the first files: mode, size, flags, i_block.
		seed "$_n-$_k-root-mode" $((_n | 128)) "$_k" $((_it + _isz + 1)) 128
		seed "$_n-$_k-root-extent" $((_n | 128)) "$_k" $((_it + _isz + 40)) 0
		seed "$_n-$_k-ino12-flags" $((_n | 128)) "$_k" $((_it + 11 * _isz + 34)) 0
		seed "$_n-$_k-ino12-block" $((_n | 128)) "$_k" $((_it + 11 * _isz + 60)) 255
		seed "$_n-$_k-ino13-acl" $((_n | 128)) "$_k" $((_it + 12 * _isz + 104)) 9
		seed "$_n-$_k-ino14-links" "$_n" "$_k" $((_it + 13 * _isz + 26)) 0
		# Directory entries: an inode number, a rec_len, a name length.
		seed "$_n-$_k-root-dirent-ino" $((_n | 128)) "$_k" $((_root * _bs + 27)) 255
		seed "$_n-$_k-root-dirent-reclen" $((_n | 128)) "$_k" $((_root * _bs + 28)) 3
		seed "$_n-$_k-docs-dirent-ino" $((_n | 128)) "$_k" $((_docs * _bs + 24)) 200
		seed "$_n-$_k-docs-dirent-namelen" $((_n | 128)) "$_k" $((_docs * _bs + 30)) 250
	done
	# Several at once, both sides.
	seed "$_n-mixed" $((_n | 128)) 0 $((_it + _isz + 40)) 0 1 $((_root * _bs + 27)) 200 \
		1 $((_gdt + 12)) 1 0 $((_docs * _bs + 28)) 0
}

make_pair 0 1024 2M
make_pair 1 4096 4M -O ^has_journal
