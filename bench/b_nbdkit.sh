# nbdkit-ubd-plugin against nbdkit's own file plugin serving the merged
# image (what the plugin must come close to: goal >= 90% of its speed),
# and converting the pair to qcow2 through the plugin against merging
# with uml_moo first.  Clients use extents, as they do by default.
bench_nbdkit() {
	_plugin=$B/lib/nbdkit-ubd-plugin.so
	_flat=$T/flat.img
	_q=$T/out.qcow2
	"$B/bin/uml_moo" "$CACHE/guest.cow" "$_flat" >/dev/null
	t_file=$(median_time nbdkit -U - file "$_flat" --run 'nbdcopy "$uri" null:')
	t_ubd=$(median_time nbdkit -U - "$_plugin" "$CACHE/guest.cow" readonly=true \
		--run 'nbdcopy "$uri" null:')
	t_file4=$(median_time nbdkit -U - file "$_flat" --run 'nbdcopy -C 4 "$uri" null:')
	t_ubd4=$(median_time nbdkit -U - "$_plugin" "$CACHE/guest.cow" readonly=true \
		--run 'nbdcopy -C 4 "$uri" null:')
	PREP="rm -f $_q"
	t_conv=$(median_time nbdkit -U - "$_plugin" "$CACHE/guest.cow" readonly=true \
		--run "qemu-img convert -O qcow2 \"\$uri\" $_q")
	qemu-img compare -q "$_q" "$_flat" || { echo "bench: qcow2 differs from the merge" >&2; return 1; }
	PREP="rm -f $_q $_flat"
	t_moo=$(median_time sh -c "'$B/bin/uml_moo' '$CACHE/guest.cow' '$_flat' && qemu-img convert -f raw -O qcow2 '$_flat' '$_q'")
	unset PREP
	rm -f "$_q" "$_flat"
	emit "## nbdkit-ubd-plugin"
	emit ""
	emit "The merged view of master.img + guest.cow over NBD (Unix socket, \`nbdkit -U -\`)."
	emit "Throughput: \`nbdcopy\` to \`null:\`, against nbdkit's \`file\` plugin serving"
	emit "the merged image (made by uml_moo); speed = file's time / plugin's time"
	emit "(goal: at least 0.90)."
	emit ""
	emit "| command | time (s) | speed vs file |"
	emit "| --- | ---: | ---: |"
	emit "| \`nbdkit file flat.img --run 'nbdcopy \"\$uri\" null:'\` | $t_file | 1.00 |"
	emit "| \`nbdkit ubd guest.cow readonly=true --run 'nbdcopy \"\$uri\" null:'\` | $t_ubd | $(ratio "$t_file" "$t_ubd") |"
	emit "| \`nbdkit file flat.img --run 'nbdcopy -C 4 \"\$uri\" null:'\` | $t_file4 | 1.00 |"
	emit "| \`nbdkit ubd guest.cow readonly=true --run 'nbdcopy -C 4 \"\$uri\" null:'\` | $t_ubd4 | $(ratio "$t_file4" "$t_ubd4") |"
	emit ""
	emit "Conversion to qcow2 (the outputs compared equal with \`qemu-img compare\`):"
	emit ""
	emit "| command | time (s) | vs uml_moo + qemu-img |"
	emit "| --- | ---: | ---: |"
	emit "| \`uml_moo guest.cow flat.img && qemu-img convert -O qcow2 flat.img out.qcow2\` | $t_moo | 1.00 |"
	emit "| \`nbdkit -U - ubd guest.cow readonly=true --run 'qemu-img convert -O qcow2 \"\$uri\" out.qcow2'\` | $t_conv | $(ratio "$t_conv" "$t_moo") |"
	emit ""
	emit "Reproduce: \`bench/run.sh build nbdkit\`"
	emit ""
}
