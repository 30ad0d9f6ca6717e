#!/bin/sh
. "$(dirname "$0")/functions.sh"

t_file_size_limit() {
	truncate -s 64M master.img
	# Each clone is 64M apparent: past a 1 MiB limit every one fails.
	(ulimit -f 2048 && exec "$MKCOW" a.cow master.img) >out.txt 2>err.txt
	[ $? = 1 ] || fail "exit status $?: $(cat err.txt)"
	grep -q 'a.cow.*File too large' err.txt || fail "$(cat err.txt)"
	only_files . master.img out.txt err.txt
}

run_test t_file_size_limit
