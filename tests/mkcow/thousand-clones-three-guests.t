#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_thousand_clones_three_guests() {
	mkdir tree && echo "master file" >tree/readme
	mkfs.ext4 -q -F -L m -d tree master.img 16M >/dev/null || fail mkfs
	"$PEER_MKCOW" peer.cow master.img
	mkdir clones
	"$MKCOW" --json --count 1000 --name 'clones/guest-%04d.cow' master.img >created.json ||
		fail "1000 clones"
	[ "$(ls clones | wc -l)" = 1000 ] || fail "not 1000 files"
	only_files clones $(seq -f 'guest-%04g.cow' 0 999)
	grep -o '"clones/guest-[0-9]*\.cow"' created.json | wc -l | grep -qx 1000 ||
		fail "--json does not list 1000 clones"
	grep -q '"count":1000' created.json || fail "--json count"
	"$COWUTIL" same peer.cow clones/*.cow >bad.txt ||
		fail "not the COW uml-utilities makes: $(head -n 3 bad.txt)"
	# Sparse: a header's blocks each, not the device.
	[ "$(du -sk clones | cut -f1)" -le $((1000 * 16 + 512)) ] ||
		fail "clones not sparse: $(du -sk clones)"
	# Three guests at once on the one backing, each writing its marker.
	for n in 7 500 999; do
		{
			guest_prologue
			echo "printf 'marker-of-guest-$n' | dd of=/dev/ubda bs=4096 seek=3000 conv=sync,notrunc 2>/dev/null"
			echo 'sync; echo GUEST-DONE; poweroff -f'
		} >init$n.sh
		c=$(printf 'clones/guest-%04d.cow' $n)
		uml_boot mc$n "$T/init$n.sh" g$n.log ubda="$T/$c,$T/master.img" &
	done
	wait
	for n in 7 500 999; do
		grep -q GUEST-DONE g$n.log || { cat g$n.log >&2; fail "guest $n"; }
	done
	for n in 7 500 999; do
		c=$(printf 'clones/guest-%04d.cow' $n)
		for m in 7 500 999; do
			hit=$("$COWUTIL" grep "$c" "marker-of-guest-$m")
			if [ $n = $m ]; then
				[ "$hit" = $((3000 * 4096)) ] || fail "guest $n's marker not in its COW"
			else
				[ -z "$hit" ] || fail "guest $m's marker found in $c"
			fi
		done
	done
	cmp -s peer.cow clones/guest-0008.cow || fail "an unbooted clone changed"
}

run_test t_thousand_clones_three_guests
