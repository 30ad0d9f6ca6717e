#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_readonly() {
	need nbdkit qemu-io nbdinfo
	make_pair 8
	before=$(snap master.img c.cow)
	for ro in "readonly=true" "-r"; do
		if [ "$ro" = -r ]; then
			set -- -r "$PLUGIN" c.cow
		else
			set -- "$PLUGIN" c.cow readonly=true
		fi
		nbdkit -U - "$@" --run 'nbdinfo "$uri"; qemu-io -f raw -c "write -P 1 0 4k" "$uri"' \
			>out.txt 2>&1
		grep -q 'read_only: true\|is_read_only: true' out.txt || fail "$ro: not read-only: $(cat out.txt)"
		grep -qi 'permission\|read-only\|not permitted' out.txt || fail "$ro: write not refused: $(cat out.txt)"
	done
	[ "$(snap master.img c.cow)" = "$before" ] || fail "the pair changed"
	# readonly=true takes the kernel's read lock: two readers at once, no
	# writer.
	serve c.cow readonly=true
	nbdkit -U - "$PLUGIN" c.cow readonly=true --run 'nbdcopy "$uri" out.img' 2>err.txt ||
		{ unserve; fail "a second reader refused: $(cat err.txt)"; }
	randfile chunk 512
	"$COWUTIL" write c.cow 0 chunk 2>err.txt && { unserve; fail "written while served"; }
	unserve
	grep -q locked err.txt || fail "no lock error: $(cat err.txt)"
	cmp out.img exp.img || fail "read-only copy differs"
	[ "$(snap master.img c.cow)" = "$before" ] || fail "the pair changed"
}

run_test t_readonly
