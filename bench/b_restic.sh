# restic: repository growth for later points of a ~1 GiB COW changed ~1%
# between points (random 64 KiB writes through the library, cowutil
# write), against the bytes changed; each point sent twice to its own
# repository: as the point's own stream (uml_backup export --own of a
# chain point, uml_backup -i: an incremental's changed chunks) and as the
# whole device (uml_backup export: a full stream each time).

bench_restic() {
	command -v restic >/dev/null || { emit "## restic: skipped (no restic)"; return 0; }
	_r=$T/restic
	mkdir -p "$_r"
	export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$_r/cache"
	restic -q -r "$_r/own" init >/dev/null
	restic -q -r "$_r/whole" init >/dev/null
	truncate -s 2G "$_r/b.img"
	"$B/bin/uml_mkcow" -q "$_r/g.cow" "$_r/b.img"
	# ~1 GiB of data: incompressible, so restic's own compression cannot hide growth.
	head -c 1073741824 /dev/urandom >"$_r/d"
	"$B/tests/cowutil" write "$_r/g.cow" 0 "$_r/d"
	rm -f "$_r/d"
	emit "## restic: repository growth per point"
	emit ""
	emit "| point | changed | own stream | growth (own) | own / changed | whole stream | growth (whole) | whole / changed |"
	emit "|------:|--------:|-----------:|-------------:|--------------:|-------------:|---------------:|----------------:|"
	_changed=0
	for _p in 1 2 3; do
		if [ "$_p" -gt 1 ]; then
			# 1% of 1 GiB: 164 writes of 64 KiB at random places.
			_changed=0
			_i=0
			while [ "$_i" -lt 164 ]; do
				head -c 65536 /dev/urandom >"$_r/c"
				_off=$(( ($(od -An -N4 -tu4 /dev/urandom) % 16384) * 65536 ))
				"$B/tests/cowutil" write "$_r/g.cow" "$_off" "$_r/c"
				_changed=$((_changed + 65536))
				_i=$((_i + 1))
			done
		fi
		"$B/bin/uml_backup" -q -i -c --offline "$_r/g.cow" "$_r/chain"
		_pt=$(ls "$_r/chain" | tail -n 1)
		_kind=$(sed -n 's/^  "kind": "\(.*\)",$/\1/p' "$_r/chain/$_pt/manifest.json")
		_before=$(du -sb "$_r/own" | cut -f1)
		"$B/bin/uml_backup" -q export --own "$_r/chain/$_pt" |
			restic -q -r "$_r/own" backup --stdin --stdin-filename "g/ubd0/$_pt.ubdx" \
				--tag ubdkit --tag "$_kind" >/dev/null
		_own=$(( $(du -sb "$_r/own" | cut -f1) - _before ))
		_before=$(du -sb "$_r/whole" | cut -f1)
		"$B/bin/uml_backup" -q export "$_r/chain/$_pt" |
			restic -q -r "$_r/whole" backup --stdin --stdin-filename g-ubd0.ubdx >/dev/null
		_whole=$(( $(du -sb "$_r/whole" | cut -f1) - _before ))
		_so=$("$B/bin/uml_backup" -q export --own "$_r/chain/$_pt" | wc -c)
		_sw=$("$B/bin/uml_backup" -q export "$_r/chain/$_pt" | wc -c)
		if [ "$_changed" -gt 0 ]; then
			emit "| $_p | $_changed | $_so | $_own | $(ratio "$_own" "$_changed") | $_sw | $_whole | $(ratio "$_whole" "$_changed") |"
		else
			emit "| $_p (full) | - | $_so | $_own | - | $_sw | $_whole | - |"
		fi
	done
	emit ""
	emit "An incremental point's own stream holds its changed 64 KiB chunks only,"
	emit "so restic stores about the changed data (plus a few KiB of snapshot"
	emit "metadata). The whole device's stream changes only where the data did,"
	emit "but restic cuts its chunks by content (512 KiB to 8 MiB, 1 MiB on"
	emit "average): each scattered 64 KiB change costs the whole chunk around it."
	emit "Restoring a point from the own streams pipes its chain's streams in"
	emit "order into uml_backup restore - (uml_backup(1), Restic)."
	emit ""
	emit "Reproduce: \`bench/run.sh build restic\`"
	emit ""
	rm -rf "$_r"
}
