#!/bin/sh
# A program run from the master and the file it maps read-only are the
# host's pages of the master in the guest's process (kernel/patches/0004).
. "$(dirname "$0")/functions.sh"

t_map_on_read_program_text_from_the_master() {
	map_master 16
	{
		guest_prologue
		cat <<'EOS'
mount -o ro /dev/ubda /mnt || echo MOUNT-FAILED
s=/sys/block/ubda
cat /mnt/data.bin /mnt/maptool >/dev/null
u0=$(cat $s/pages_user_mapped)
/mnt/maptool hold /mnt/data.bin -
echo "USER=$(( $(cat $s/pages_user_mapped) - u0 ))"
echo GUEST-END
poweroff -f
EOS
	} >text.init
	chmod +x text.init
	UML=$OURS UML_MEM=96M uml_start text log root=/dev/root \
		rootfstype=hostfs hostfs=/ ro init="$T/text.init" \
		ubdam="$T/c.cow,$T/master.img"
	trap 'kill "$uml_started_pid" 2>/dev/null' EXIT
	wait_line log '^HOLD' 120 "$uml_started_pid" || { tail -n 20 log >&2; fail "no HOLD from the guest"; }
	grep -q MOUNT-FAILED log && fail "mount failed"
	pid=$(uml_pid text)
	set -- $(tr -d '\r' <log | sed -n 's/^HOLD data=\(0x[0-9a-f]*\) text=\(0x[0-9a-f]*\) sum=.*/\1 \2/p')
	[ $# = 2 ] || fail "HOLD line: $(grep HOLD log)"
	child_maps_file_at "$pid" "$1" "$T/master.img" ||
		fail "no host process of the guest maps the master at $1 (data)"
	child_maps_file_at "$pid" $(($1 + 8 * 1048576)) "$T/master.img" ||
		fail "no host process of the guest maps the master at $1 + 8 MiB"
	child_maps_file_at "$pid" "$2" "$T/master.img" ||
		fail "no host process of the guest maps the master at $2 (text)"
	uml_type text go || fail "cannot type to the guest"
	wait "$uml_started_pid"
	ended log
	want=$("$MAPTOOL" sum m/data.bin - | sed 's/^SUM //')
	tr -d '\r' <log | grep -qx "HOLD .* $want" || fail "HOLD: $(grep HOLD log), want $want"
	tr -d '\r' <log | grep -qx "HELD $want" || fail "HELD: $(grep HELD log), want $want"
	# Every page of the 16 MiB file, and the program's text.
	[ "$(guest_val log USER | tr -d '\r')" -ge 4097 ] ||
		fail "pages_user_mapped moved by $(guest_val log USER)"
	cmp master.img master.orig || fail "the master changed"
}

run_test t_map_on_read_program_text_from_the_master
