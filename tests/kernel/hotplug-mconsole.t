#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_hotplug_mconsole() {
	mkdir sig
	rand_backing back.img 4
	cat >body <<EOS
umount /tmp
echo GUEST-UP
i=0
while [ ! -e /sys/block/ubdb ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i + 1)); done
echo "HOT=\$(cat /sys/block/ubdb/size)"
yes HOTPLUG | head -c 4096 | dd of=/dev/ubdb bs=4096 seek=5 conv=notrunc,fsync status=none
exec 3</dev/ubdb
echo HOLDING
until ls $T/sig | grep -q release; do sleep 0.1; done
exec 3<&-
echo RELEASED
while [ -e /sys/block/ubdb ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i + 1)); done
[ -e /sys/block/ubdb ] && echo STILL-THERE || echo GONE
EOS
	ours hp body log &
	pid=$!
	i=0
	until grep -q GUEST-UP log 2>/dev/null; do sleep 0.2; i=$((i + 1)); [ $i -lt 150 ] || break; done
	mcon hp "config ubdb=$T/hot.cow,$T/back.img" >cfg.out 2>&1 || { cat cfg.out; fail "config failed"; }
	i=0
	until grep -q HOLDING log; do sleep 0.2; i=$((i + 1)); [ $i -lt 150 ] || break; done
	mcon hp "config ubdb" >get.out 2>&1
	mcon hp "remove ubdb" >busy.out 2>&1 && busy=0 || busy=1
	touch sig/release
	i=0
	until grep -q RELEASED log; do sleep 0.2; i=$((i + 1)); [ $i -lt 150 ] || break; done
	sleep 0.5
	mcon hp "remove ubdb" >rm.out 2>&1 || { cat rm.out; fail "remove failed"; }
	mcon hp "config ubdb" >get2.out 2>&1
	wait $pid
	ended log
	grep -q "OK $T/hot.cow,$T/back.img" get.out || fail "config ubdb: $(cat get.out)"
	[ $busy = 1 ] || fail "removed an open device: $(cat busy.out)"
	grep -q GONE log || fail "device still there after remove"
	grep -qx "HOT=8192" log || fail "hot-plugged size"
	cp back.img expect.img
	yes HOTPLUG | head -c 4096 | dd of=expect.img bs=4096 seek=5 conv=notrunc status=none
	"$COWUTIL" merged hot.cow m.img && cmp m.img expect.img || fail "hot-plugged write"
}

run_test t_hotplug_mconsole
