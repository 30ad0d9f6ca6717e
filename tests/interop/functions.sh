# The interop suite: what its tests (tests/interop/*.t) share; each test sources
# this file, tests/lib/tap.sh runs it.
#
# Interoperability tests of the format library against the real peers:
# uml-utilities' uml_mkcow and uml_moo, and a booted linux.uml.
#   prove -j2 --directives --comments tests/interop/   (make check-interop)
#   prove -v tests/interop/NAME.t                    (one test; B=BUILD_DIR)
set -u

SUITE=interop
. "$(dirname "$0")/../lib/tap.sh"

COWUTIL=$B/tests/cowutil
MKCOW=$B/bin/uml_mkcow
PEER_MKCOW=/usr/bin/uml_mkcow
PEER_MOO=/usr/bin/uml_moo


# --- a real kernel ----------------------------------------------------------

# A small ext4 master holding known files.
make_master() {
	mkdir -p "$T/tree/etc" "$T/tree/data"
	echo "hello from the master" >"$T/tree/hello.txt"
	echo "version=1" >"$T/tree/etc/app.conf"
	head -c 300000 /dev/urandom >"$T/tree/data/blob.bin"
	mkfs.ext4 -q -F -b 4096 -L master -d "$T/tree" "$T/master.img" 32M >/dev/null ||
		fail "mkfs.ext4"
}
