#!/bin/sh
# backing= replaces the header's path, with the kernel's size and mtime
# checks; a failed check is one line and touches nothing.
. "$(dirname "$0")/functions.sh"

t_backing_override_and_checks() {
	need nbdkit nbdcopy
	make_pair 8
	mkdir moved
	mv master.img moved/m.img
	before=$(snap moved/m.img c.cow)
	refused "cannot open backing file $T/master.img" c.cow
	nbdkit -U - "$PLUGIN" c.cow backing=moved/m.img --run 'nbdcopy "$uri" out.img' ||
		fail "with backing="
	cmp out.img exp.img || fail "merged view with backing= differs"
	[ "$(snap moved/m.img c.cow)" = "$before" ] || fail "the pair changed"
	cp -p moved/m.img other.img
	touch -d '2022-01-01' other.img
	before=$(snap other.img c.cow)
	refused "mtime" c.cow backing=other.img
	touch -d '2020-02-02 02:02:02' other.img
	truncate -s +512 other.img
	touch -d '2020-02-02 02:02:02' other.img
	refused "bytes but the header says" c.cow backing=other.img
	refused "cannot open backing file $T/missing.img" c.cow backing=missing.img
	truncate -s -512 other.img
	touch -d '2022-01-01' other.img
	[ "$(snap other.img c.cow)" = "$before" ] || fail "the pair changed"
}

run_test t_backing_override_and_checks
