#!/bin/sh
# The kernel reads the old layouts the same way we do.  The guest reads the
# device one 4 KiB block per request: linux.uml 6.1 returns wrong data for
# larger (multi-segment) requests and for 512-byte O_DIRECT reads when a
# page mixes COW and backing sectors, as these hand-built files do (see
# docs/format.md, "Kernel quirks").
. "$(dirname "$0")/functions.sh"

t_old_layouts_kernel() {
	cd "$T"
	randfile back.img $((1024 * 512))
	{
		guest_prologue
		cat <<'EOS'
i=0
while [ $i -lt 128 ]; do
	echo "B4K $i $(dd if=/dev/ubda bs=4096 skip=$i count=1 2>/dev/null | md5sum | cut -c1-32)"
	i=$((i + 1))
done
poweroff -f
EOS
	} >init.sh
	for lay in v1 v2 v3b; do
		build_old $lay $lay.cow "$T/back.img" 1024 512 4096 "0 7 8 9 100 1000 1023"
		uml_boot ol "$T/init.sh" $lay.log ubdar="$T/$lay.cow" ||
			{ cat $lay.log >&2; fail "$lay: boot"; }
		"$COWUTIL" merged $lay.cow ours.img && cmp ours.img $lay.cow.expect ||
			fail "$lay: library disagrees with the layout"
		i=0
		while [ $i -lt 128 ]; do
			want=$(dd if=ours.img bs=4096 skip=$i count=1 2>/dev/null | md5sum | cut -c1-32)
			grep -q "B4K $i $want" $lay.log ||
				fail "$lay: the kernel reads block $i differently"
			i=$((i + 1))
		done
	done
}

run_test t_old_layouts_kernel
