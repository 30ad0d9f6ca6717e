#!/bin/sh
# Requests that ignore the minimum block size, zero (with and without
# may-trim, fast) and trim, against a model of the merged view; the COW
# afterwards, read by uml_moo, equals the model.  Trim and zero make
# whole sectors present and zero, as the ubd driver does; the partial
# edges of a trim keep their data.
. "$(dirname "$0")/functions.sh"

t_unaligned_zero_trim() {
	need nbdkit
	"$NBDPY" -c 'import nbd' 2>/dev/null || skip "SKIP: python3-libnbd not installed"
	make_pair 8
	master_before=$(snap master.img)
	serve c.cow
	"$NBDPY" - "$URI" exp.img model.img <<'EOF' || fail "nbd client"
import nbd, sys
uri, exp, out = sys.argv[1:4]
m = bytearray(open(exp, "rb").read())
h = nbd.NBD()
h.set_strict_mode(h.get_strict_mode() & ~nbd.STRICT_ALIGN)
h.connect_uri(uri)
assert h.get_block_size(nbd.SIZE_MINIMUM) == 512
assert h.can_fast_zero() and h.can_multi_conn() and h.can_fua()

def write(off, data, flags=0):
    h.pwrite(data, off, flags)
    m[off:off + len(data)] = data

def zero(off, n, flags=0):
    h.zero(n, off, flags)
    m[off:off + n] = bytes(n)

def trim(off, n):
    h.trim(n, off)
    lo, hi = (off + 511) // 512 * 512, (off + n) // 512 * 512
    if off + n == len(m):
        hi = len(m)
    if hi > lo:
        m[lo:hi] = bytes(hi - lo)

write(100, b"A" * 200)                    # inside one sector
write(1000, b"B" * 3000)                  # both edges partial
write(8192 + 7, b"C" * 1, nbd.CMD_FLAG_FUA)
write(len(m) - 3, b"END")                 # the last sector's tail
zero(20000, 5000)                         # edges and whole sectors
zero(40960, 8192, nbd.CMD_FLAG_NO_HOLE)   # zeroed in place, not punched
zero(65536 + 100, 50, nbd.CMD_FLAG_FAST_ZERO)
zero(131072, 65536, nbd.CMD_FLAG_FAST_ZERO)
trim(300000, 10000)
trim(5 * 1048576 // 4 + 3000, 3000)       # over backing and COW data
for off, n in ((0, 70000), (len(m) - 70000, 70000), (290000, 30000)):
    got = h.pread(n, off)
    assert got == bytes(m[off:off + n]), "read at %d differs" % off
h.flush()
h.shutdown()
open(out, "wb").write(m)
EOF
	unserve
	moo_of c.cow got.img
	cmp got.img model.img || fail "the COW differs from the model"
	[ "$(snap master.img)" = "$master_before" ] || fail "the backing file changed"
	# The sectors zeroed and trimmed are present, over random backing data.
	runs=$("$COWUTIL" runs c.cow)
	for r in '^39 10$' '^80 16$' '^256 128$' '^586 19$'; do
		echo "$runs" | grep -q "$r" || fail "no COW run $r: $runs"
	done
}

run_test t_unaligned_zero_trim
