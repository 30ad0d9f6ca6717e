#!/bin/sh
# The README's backup examples, run as written against a running guest
# named web1 (its umid under ~/.uml, HOME pointed at the test): only the
# /backups directory, the guest's COW names and the example point id are
# put in their places.
. "$(dirname "$0")/functions.sh"

t_readme_backup_examples() {
	trap on_exit EXIT
	make_disk disk 32
	start_guest web1 ubda="$T/disk.cow,$T/disk.img"
	ln -s "$T/uml" "$T/.uml"
	mkdir "$T/backups"
	sed -n '/^## Backups/,/^## /p' "$ROOT/README.md" | sed -n 's/^    \(uml_backup .*\)/\1/p' |
		sed 's/ *#.*//' >"$T/examples"
	[ "$(grep -c . "$T/examples")" -ge 6 ] || fail "the README's examples were not found"
	while read -r cmd; do
		case $cmd in
		*"/backups/web1-chain/"[0-9]*)
			point=$(points "$T/backups/web1-chain" | tail -n 1)
			cmd=$(echo "$cmd" | sed "s|web1-chain/[0-9TZ.]*|web1-chain/$point|") ;;
		esac
		cmd=$(echo "$cmd" | sed -e "s|/backups|$T/backups|g" -e "s| web1.cow| $T/restored-\$n.cow|")
		n=$(( ${n:-0} + 1 ))
		echo "    $cmd"
		(cd "$T" && HOME=$T PATH="$B/bin:$PATH" n=$n eval "$cmd") >out.txt 2>err.txt ||
			fail "README example '$cmd' failed: $(cat err.txt)"
	done <"$T/examples"
	stop_guest web1
	trap - EXIT
	restored=$(ls "$T"/restored-*.cow | wc -l)
	[ "$restored" -ge 2 ] || fail "the examples restored $restored COW files"
	for r in "$T"/restored-*.cow; do
		"$COWUTIL" merged "$r" "$T/m.img" >/dev/null || fail "merged view of $r"
		e2fsck -fy "$T/m.img" >/dev/null 2>&1
		e2fsck -fn "$T/m.img" >/dev/null 2>&1 || fail "$r: not a clean file system"
	done
}

run_test t_readme_backup_examples
