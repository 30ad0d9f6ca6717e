#!/bin/sh
# Free page reporting (ubd/page_report.c): a guest fills its page cache from
# a 160 MiB device and drops its caches, then a program takes 64 MiB and
# exits; each time the guest's physmem file on the host (the unlinked tmpfs
# file UML maps) shrinks by most of what the guest freed, and the pages it
# gets back afterwards hold the right bytes.
. "$(dirname "$0")/functions.sh"

t_freed_memory_goes_back_to_host() {
	rand_backing disk.img 160
	want=$(sha256sum <disk.img | cut -c1-64)
	{
		guest_prologue
		cat <<'EOS'
memfree() { sed -n 's/^MemFree: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
dmesg | grep -q 'Free page reporting enabled' && echo REPORTING
# Held open: the last close of a block device drops its page cache.
exec 3</dev/ubda
echo "SUM1 $(sha256sum </dev/ubda | cut -c1-64)"
echo FILLED
read -r cmd
f0=$(memfree)
sync; echo 3 >/proc/sys/vm/drop_caches
echo "DROPPED $(( $(memfree) - f0 ))"
read -r cmd
# A program that touches 64 MiB and waits for a line before it exits.
perl -e '$x = "a" x (64 << 20); $| = 1; print "ALLOCATED\n"; <STDIN>'
echo EXITED
read -r cmd
# Reused pages: the page cache again, and a tmpfs copy (tmpfs holds half
# the guest's memory at most).
echo "SUM2 $(sha256sum </dev/ubda | cut -c1-64)"
dd if=/dev/ubda of=/tmp/copy bs=1M count=100 status=none || echo "GUEST-ERROR dd"
echo "SUM3 $(sha256sum </tmp/copy | cut -c1-64)"
echo GUEST-END
poweroff -f
EOS
	} >pr.init
	chmod +x pr.init
	UML=$OURS UML_MEM=256M uml_start pr log root=/dev/root rootfstype=hostfs \
		hostfs=/ ro init="$T/pr.init" ubda="$T/disk.img"
	trap 'kill "$uml_started_pid" 2>/dev/null' EXIT
	next() { # next COMMAND-TO-TYPE LINE-TO-WAIT-FOR
		uml_type pr "$1" || fail "cannot type to the guest"
		wait_line log "$2" 120 "$uml_started_pid" || { tail -n 20 log >&2; fail "no $2 from the guest"; }
	}
	# physmem goes from $1 KiB to at most $1 - 80% of $2 KiB; reporting
	# starts 2 s after the first free and goes in rounds.
	gives_back() {
		_end=$(( $(date +%s) + 30 ))
		while now=$(uml_physmem_kib "$pid") && [ $(( ($1 - now) * 10 )) -lt $(($2 * 8)) ]; do
			[ "$(date +%s)" -lt "$_end" ] ||
				fail "$3: physmem $1 KiB -> $now KiB after 30 s; the guest freed $2 KiB"
			sleep 0.2
		done
		echo "$3: physmem $1 KiB -> $now KiB; the guest freed $2 KiB"
	}
	wait_line log '^FILLED' 120 "$uml_started_pid" || { tail -n 20 log >&2; fail "the guest did not read its device"; }
	grep -q '^REPORTING' log || fail "no 'Free page reporting enabled' in the guest's dmesg"
	pid=$(uml_pid pr)
	full=$(uml_physmem_kib "$pid") || fail "no physmem file among the fds of $pid"
	[ "$full" -ge $((160 * 1024)) ] || fail "physmem holds only $full KiB after reading 160 MiB"

	next drop '^DROPPED'
	freed=$(tr -d '\r' <log | sed -n 's/^DROPPED //p')
	[ "$freed" -ge $((128 * 1024)) ] || fail "the guest freed only $freed KiB"
	gives_back "$full" "$freed" "dropped caches"

	before=$now
	next alloc '^ALLOCATED'
	held=$(uml_physmem_kib "$pid")
	[ $((held - before)) -ge $((64 * 1024)) ] ||
		fail "physmem $before -> $held KiB for a program's 64 MiB"
	next exit '^EXITED'
	gives_back "$held" $((held - before)) "exited program"

	next go '^GUEST-END'
	wait "$uml_started_pid"
	! grep -q GUEST-ERROR log || fail "$(grep GUEST-ERROR log)"
	want3=$(head -c $((100 * 1048576)) disk.img | sha256sum | cut -c1-64)
	for n in 1 2 3; do
		[ $n = 3 ] && want=$want3
		tr -d '\r' <log | grep -qx "SUM$n $want" || fail "SUM$n: $(tr -d '\r' <log | grep "^SUM$n") != $want"
	done
}

run_test t_freed_memory_goes_back_to_host
