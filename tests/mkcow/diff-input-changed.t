#!/bin/sh
# An input written during the diff (the diff stops itself after its first
# run, a test hook, while a writer that takes no lock writes 4 KiB): the
# run fails, exit 1, and no COW is left.  Also when the writer sets the
# mtime back (ctime still changes), and when the file is replaced.
. "$(dirname "$0")/functions.sh"

t_diff_input_changed() {
	randfile master.img 8M
	touch -d '2021-01-01 00:00:00.123456789' master.img
	cp master.img image.img
	for mib in 1 3 5 7; do
		printf 'changed' | dd of=image.img bs=1 seek=$((mib * 1048576)) conv=notrunc status=none
	done
	for how in backing image backing-mtime-kept image-replaced; do
		cp --preserve=timestamps master.img m0.img
		cp --preserve=timestamps image.img i0.img
		UBDK_MKCOW_STOP_AFTER=1 "$MKCOW" --diff image.img a.cow master.img >out.txt 2>err.txt &
		pid=$!
		wait_stopped $pid
		case $how in
		backing)
			randfile block 4096
			dd if=block of=master.img bs=4096 seek=100 conv=notrunc status=none ;;
		image)
			randfile block 4096
			dd if=block of=image.img bs=4096 seek=1000 conv=notrunc status=none ;;
		backing-mtime-kept)
			randfile block 4096
			dd if=block of=master.img bs=4096 seek=100 conv=notrunc status=none
			touch -d '2021-01-01 00:00:00.123456789' master.img ;;
		image-replaced)
			cp i0.img new.img && mv new.img image.img ;;
		esac
		kill -CONT $pid
		wait $pid
		st=$?
		[ $st = 1 ] || fail "$how: exit $st: $(cat err.txt)"
		[ "$(wc -l <err.txt)" = 1 ] || fail "$how: not one line: $(cat err.txt)"
		case $how in
		backing*) want="backing file $T/master.img: changed during the diff" ;;
		image*) want="image image.img: changed during the diff" ;;
		esac
		grep -qF "uml_mkcow: $want" err.txt || fail "$how: $(cat err.txt)"
		only_files . master.img image.img m0.img i0.img out.txt err.txt \
			$([ -e block ] && echo block)
		mv m0.img master.img && mv i0.img image.img
	done
	# Unchanged, the same hook runs to a COW that holds the image.
	UBDK_MKCOW_STOP_AFTER=1 "$MKCOW" --diff image.img a.cow master.img 2>err.txt &
	pid=$!
	wait_stopped $pid
	kill -CONT $pid
	wait $pid || fail "unchanged: $(cat err.txt)"
	check_diff image.img a.cow master.img
}

run_test t_diff_input_changed
