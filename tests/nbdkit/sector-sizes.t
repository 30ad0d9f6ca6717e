#!/bin/sh
# Sector sizes: what uml_mkcow makes (512 to 65536) is served, the merged
# view whole through nbdcopy; what no UML kernel or uml_mkcow makes is
# refused at start, saying why and what to use: 1 (every byte a sector:
# served, a 64 MiB copy took 40 s), 131072 and 2^31 (no NBD block size
# fits: every connection died).
. "$(dirname "$0")/functions.sh"

t_sector_sizes() {
	need nbdkit nbdcopy
	randfile master.img $((4 * MiB))
	touch -d '2020-02-02 02:02:02' master.img
	randfile chunk 65536
	for ss in 1 131072 2147483648; do
		"$COWUTIL" create -s $ss c$ss.cow master.img || fail "cowutil create -s $ss"
		refused "c$ss.cow: sector size $ss is not served (512 to 65536 bytes, as uml_mkcow makes them and a UML kernel reads them); uml_moo can merge it" c$ss.cow
	done
	"$COWUTIL" create -s 65536 c.cow master.img || fail "cowutil create -s 65536"
	"$COWUTIL" write c.cow 131072 chunk || fail "cowutil write"
	"$COWUTIL" merged c.cow exp.img >/dev/null || fail "cowutil merged"
	nbdkit -U - "$PLUGIN" c.cow --run 'nbdcopy "$uri" got.img' >out.txt 2>err.txt ||
		fail "sector size 65536 not served: $(cat err.txt)"
	cmp got.img exp.img || fail "sector size 65536: the merged view differs"
}

run_test t_sector_sizes
