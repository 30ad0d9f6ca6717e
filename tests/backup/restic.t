#!/bin/sh
# uml_backup export | restic backup --stdin, restic dump | uml_backup restore -:
# a whole point as one file comes back byte for byte; a chain (full + 2
# incrementals of an offline COW changed between points) sent as each
# point's own stream grows the repository by about the changed data, and
# each point restored from restic (its chain's streams piped in order, as
# uml_backup(1) RESTIC says) is byte-equal to its local restore.
. "$(dirname "$0")/functions.sh"

t_restic() {
	command -v restic >/dev/null || skip "no restic (Debian package restic)"
	command -v jq >/dev/null || skip "no jq (Debian package jq): the RESTIC recipe uses it"
	export RESTIC_PASSWORD=ubdkit-test RESTIC_CACHE_DIR="$T/cache"
	R=$T/repo
	restic -q -r "$R" init >/dev/null || fail "restic init"
	truncate -s 256M "$T/g.img"
	"$MKCOW" -q "$T/g.cow" "$T/g.img" || fail "uml_mkcow"
	randfile "$T/d" 33554432
	"$COWUTIL" write "$T/g.cow" 1048576 "$T/d" || fail "cowutil write"
	# One file: a whole point (a plain backup) exported, dumped, restored.
	expect_status 0 "$BK" -q -c --offline "$T/g.cow" "$T/p1"
	"$BK" export "$T/p1" | restic -q -r "$R" backup --stdin --stdin-filename guest-ubd0.ubdx \
		>/dev/null || fail "export | restic backup"
	restic -q -r "$R" dump latest guest-ubd0.ubdx | "$BK" -q restore - "$T/r1.cow" ||
		fail "restic dump | restore -"
	cmp "$T/r1.cow" "$T/g.cow" || fail "restic round trip differs"
	# A chain, each new point's own stream sent as uml_backup(1) RESTIC says.
	upload() {
		_p=$(ls "$T/chain" | tail -n 1)
		"$BK" -q export --own "$T/chain/$_p" | restic -q -r "$R" backup --stdin \
			--stdin-filename "g/ubd0/$_p.ubdx" --tag ubdkit \
			--tag "$(jq -r .kind "$T/chain/$_p/manifest.json")" >/dev/null ||
			fail "export --own | restic backup ($_p)"
	}
	expect_status 0 "$BK" -q -i --offline "$T/g.cow" "$T/chain"
	upload
	cp "$T/g.cow" "$T/c1.cow"
	for i in 2 3; do
		# 10 blocks of 64 KiB (whole chunks) at places spread over the device.
		changed=0
		for k in 0 1 2 3 4 5 6 7 8 9; do
			randfile "$T/c" 65536
			"$COWUTIL" write "$T/g.cow" $(( (k * 397 + i * 1013) % 4096 * 65536 )) "$T/c" ||
				fail "cowutil write"
			changed=$((changed + 65536))
		done
		expect_status 0 "$BK" -q -i -c --offline "$T/g.cow" "$T/chain"
		before=$(du -sb "$R" | cut -f1)
		upload
		growth=$(( $(du -sb "$R" | cut -f1) - before ))
		echo "restic: point $i (own stream) grew the repository by $growth bytes for" \
			"$changed changed ($(awk "BEGIN { printf \"%.2f\", $growth / $changed }")x)"
		# The changed chunks, restic's metadata of a snapshot (a few KiB).
		[ "$growth" -le $((changed * 5 / 4 + 32768)) ] ||
			fail "point $i: repository grew $growth bytes for $changed changed"
		cp "$T/g.cow" "$T/c$i.cow"
	done
	# Each point from restic: the streams from the newest full point at or
	# before it, in order, into restore -; byte-equal to its local restore.
	i=0
	for p in $(points "$T/chain"); do
		i=$((i + 1))
		restic -q -r "$R" snapshots --tag ubdkit --json |
			jq -r '.[] | [.paths[0], (if (.tags | index("full")) then "full" else "incremental" end)] | @tsv' |
			sort | awk -v p="/g/ubd0/$p.ubdx" '$1 <= p { if ($2 == "full") n = 0; l[n++] = $1 }
				END { for (i = 0; i < n; i++) print l[i] }' >"$T/chain.txt"
		[ "$(wc -l <"$T/chain.txt")" = $i ] || fail "point $i: chain list $(cat "$T/chain.txt")"
		for f in $(cat "$T/chain.txt"); do
			restic -q -r "$R" dump --path "$f" latest "$f" || fail "restic dump $f"
		done | "$BK" restore - "$T/rr$i.cow" >out.txt 2>err.txt || fail "restore - of point $i: $(cat err.txt)"
		[ $i = 1 ] || err_has "$i streams of one chain applied"
		expect_status 0 "$BK" restore "$T/chain/$p/$(cd "$T/chain/$p" && ls ubd0.ubdx*)" "$T/loc$i.cow"
		cmp "$T/rr$i.cow" "$T/loc$i.cow" || fail "point $i: from restic differs from its local restore"
		cmp "$T/rr$i.cow" "$T/c$i.cow" || fail "point $i: differs from the COW at that point"
	done
	# A chain given with a point left out: refused, both ids named.
	set -- $(points "$T/chain")
	id1=$(jq -r .point "$T/chain/$1/manifest.json")
	id2=$(jq -r .point "$T/chain/$2/manifest.json")
	{ restic -q -r "$R" dump --path "/g/ubd0/$1.ubdx" latest "/g/ubd0/$1.ubdx"
	  restic -q -r "$R" dump --path "/g/ubd0/$3.ubdx" latest "/g/ubd0/$3.ubdx"; } |
		"$BK" restore - "$T/bad.cow" >out.txt 2>err.txt && fail "a chain with a hole was restored"
	err_has "stream 2 (byte [0-9]*): applies over point $id2, but the previous stream made point $id1"
	[ ! -e "$T/bad.cow" ] || fail "a failed restore left its output"
	# The whole-device export of an incremental point: its chain applied.
	"$BK" -q export "$T/chain/$3" | "$BK" -q restore - "$T/w3.cow" || fail "export of point 3"
	cmp "$T/w3.cow" "$T/c3.cow" || fail "whole export of an incremental point differs"
}

run_test t_restic
