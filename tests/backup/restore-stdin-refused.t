#!/bin/sh
# restore - (streams on stdin): a stray byte after a whole stream is
# named as that, at its byte, not as a cut header; streams that build a
# 0-byte file, a file that is not a COW, or a COW whose data offset is not
# where their chunk grid starts (no backup writes them) are refused, and
# nothing is left.
. "$(dirname "$0")/functions.sh"

t_restore_stdin_refused() {
	XS=$B/tests/xs_test
	small_cow x
	randfile "$T/d" 65536
	"$COWUTIL" write "$T/x.cow" 8192 "$T/d" || fail "cowutil write"
	expect_status 0 "$BK" -q -i --offline "$T/x.cow" "$T/chain"
	s="$T/chain/$(points "$T/chain")/ubd0.ubdx"
	n=$(size_of "$s")
	{ cat "$s"; printf 'X'; } >"$T/stray.ubdx"
	expect_status 1 "$BK" restore - "$T/r.cow" <"$T/stray.ubdx"
	err_has "^uml_backup: stdin: stream byte $n: 1 stray byte after the end of stream 1 (not a stream: no magic)$"
	{ cat "$s"; head -c 100 /dev/zero; } >"$T/stray.ubdx"
	expect_status 1 "$BK" restore - "$T/r.cow" <"$T/stray.ubdx"
	err_has "stream byte $n: stray bytes after the end of stream 1 (not a stream: no magic)"
	{ cat "$s"; head -c 20 "$s"; } >"$T/cut.ubdx"
	expect_status 1 "$BK" restore - "$T/r.cow" <"$T/cut.ubdx"
	err_has "stream byte $n: 20 bytes after the end of stream 1: a next stream cut inside its header"
	"$XS" --stream 0 </dev/null >"$T/empty.ubdx" || fail "xs_test --stream"
	expect_status 1 "$BK" restore - "$T/r.cow" <"$T/empty.ubdx"
	err_has "stdin: stream 1 (byte 0): builds a file of 0 bytes, not a COW file"
	"$XS" --stream 0 <"$T/d" >"$T/notcow.ubdx" || fail "xs_test --stream"
	expect_status 1 "$BK" restore - "$T/r.cow" <"$T/notcow.ubdx"
	err_has "stdin: the stream builds a file that is not a COW file (the restored file: bad magic"
	"$XS" --stream 4096 <"$T/x.cow" >"$T/grid.ubdx" || fail "xs_test --stream"
	expect_status 1 "$BK" restore - "$T/r.cow" <"$T/grid.ubdx"
	err_has "builds a COW file whose data starts at byte $(info_get "$T/x.cow" data_offset), but its chunk grid at 4096"
	[ ! -e "$T/r.cow" ] || fail "a refused restore left its output"
	expect_status 0 "$BK" restore - "$T/r.cow" <"$s"
	cmp "$T/r.cow" "$T/x.cow" || fail "the stream alone does not restore the COW"
}

run_test t_restore_stdin_refused
