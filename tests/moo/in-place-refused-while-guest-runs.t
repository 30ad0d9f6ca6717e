#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_in_place_refused_while_guest_runs() {
	make_master
	# A second COW on the same backing, not in use: merging it in place
	# would change the disk under the running guest.
	"$PEER_MKCOW" other.cow master.img >/dev/null || fail "uml_mkcow"
	randfile chunk 8192 && "$COWUTIL" write other.cow $((40 * MiB)) chunk || fail "cowutil write"
	{
		guest_prologue
		cat <<'EOS'
mount /dev/ubda /mnt && echo "GUEST-READY"
echo "guest was here" >/mnt/lock.txt
sleep 8
umount /mnt
sync
poweroff -f
EOS
	} >init.sh
	uml_boot lk$$ "$T/init.sh" lk.log ubda="$T/guest.cow,$T/master.img" &
	pid=$!
	i=0
	until grep -q GUEST-READY lk.log 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 300 ] || { kill $pid; fail "guest not ready"; }
		sleep 0.1
	done
	before=$(snap master.img other.cow)
	res=
	for args in "-d guest.cow" "-d other.cow" "-q -d -b $T/master.img other.cow" \
		"other.cow -d"; do
		# shellcheck disable=SC2086
		timeout -k 5 60 "$MOO" $args >out.txt 2>err.txt
		res="$res|$args|$?|$(cat err.txt)"
	done
	running=no
	kill -0 $pid 2>/dev/null && running=yes
	after=$(snap master.img other.cow)
	wait $pid
	echo "$res" | tr '|' '\n'
	[ "$running" = yes ] || fail "guest ended before the checks: test too slow"
	grep -q GUEST-READY lk.log || { cat lk.log >&2; fail "guest"; }
	echo "$res" | tr '|' '\n' | sed 1d | while read -r args && read -r st && read -r msg; do
		[ "$st" = 6 ] || fail "'uml_moo $args' while the guest runs exited $st, expected 6: $msg"
		case $msg in
		"uml_moo: "*": "*) ;;
		*) fail "'$args': error line: $msg" ;;
		esac
		case "$args/$msg" in
		*other.cow/*master.img*) ;;
		*other.cow/*) fail "'$args': the message does not name the backing: $msg" ;;
		esac
	done || exit 1
	[ "$after" = "$before" ] || fail "an input changed while locked"
	only_files . master.img guest.cow other.cow init.sh lk.log uml out.txt err.txt chunk
	# Once the guest is gone the same commands work.
	cp -p master.img m2.img
	expect_status 0 "$MOO" -q -d -b m2.img other.cow
	"$COWUTIL" merged guest.cow exp.img || fail merged
	expect_status 0 "$MOO" -d guest.cow
	cmp master.img exp.img || fail "in-place result after the guest wrong"
	[ "$(debugfs -R 'cat /lock.txt' master.img 2>/dev/null)" = "guest was here" ] ||
		fail "guest's file not merged"
}

run_test t_in_place_refused_while_guest_runs
