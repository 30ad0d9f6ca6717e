#!/bin/sh
# The backing file replaced (renamed over) while a guest holds the device
# open: the guest keeps reading the file it opened, never a mix; the next
# open (a boot here; as in the stock driver, any first open of the device)
# refuses the new file, whose mtime the header does not record.
. "$(dirname "$0")/functions.sh"

t_backing_replaced_while_open() {
	rand_backing back.img 4
	rand_backing other.img 4
	dd if=back.img of=blk5 bs=4096 skip=5 count=1 status=none
	"$COWUTIL" create c.cow back.img || fail create
	mkdir sig
	# As in t_host_locks: the host's /tmp (where $T is) seen through a
	# hostfs listing, read afresh each time.
	cat >body <<EOS
umount /tmp
exec 3</dev/ubda
rd() { dd if=/dev/ubda bs=4096 skip=\$1 count=1 iflag=direct status=none 2>/dev/null | md5sum | cut -d' ' -f1; }
echo "BEFORE=\$(rd 5)"
echo WAITING
i=0
until ls $T/sig | grep -q replaced || [ \$i -ge 300 ]; do sleep 0.1; i=\$((i + 1)); done
echo "AFTER=\$(rd 5) \$i"
EOS
	ours repl body log ubda="$T/c.cow,$T/back.img" &
	bpid=$!
	i=0
	until grep -q WAITING log 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 300 ] || { kill $bpid; fail "guest not waiting"; }
		sleep 0.1
	done
	touch -d '2002-02-02' other.img
	mv other.img back.img
	touch sig/replaced
	wait $bpid
	ended log
	grep -qx "BEFORE=$(md5 blk5)" log || fail "before: $(grep BEFORE= log)"
	grep -q "^AFTER=$(md5 blk5) " log || fail "after the replacement the guest read another file: $(grep AFTER= log)"
	echo 'dd if=/dev/ubda of=/dev/null bs=4096 count=1 status=none 2>/dev/null && echo OPEN-OK || echo OPEN-FAILED' >body2
	ours repl2 body2 log2 ubda="$T/c.cow,$T/back.img" || true
	ended log2
	grep -qx OPEN-FAILED log2 || fail "the replaced backing file was accepted"
	grep -q mtime log2 || fail "no mtime message: $(grep -i ubd log2 | tail -n 3)"
}

run_test t_backing_replaced_while_open
