#!/bin/sh
# The guest made a new filesystem on an empty disk: everything is added.
. "$(dirname "$0")/functions.sh"

t_files_new_filesystem() {
	truncate -s 16M empty.img
	"$MKCOW" c.cow empty.img
	mkdir -p tree/etc && echo x >tree/etc/x.conf && ln -s etc/x.conf tree/l
	cp empty.img work.img
	mkfs.ext4 -q -F -b 4096 -d tree work.img || fail mkfs
	cow_sync c.cow empty.img work.img
	expect_status 0 "$IS" --files c.cow
	changes out.txt >got.txt
	printf 'A /etc/\nA /etc/x.conf\nA /l\nA /lost+found/\n' >want.txt
	same_lines got.txt want.txt "new filesystem"
	grep -q 'the backing file holds no such filesystem' out.txt || fail "$(cat out.txt)"
}

run_test t_files_new_filesystem
