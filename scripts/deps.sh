#!/bin/sh
# Make sure the Debian packages a target needs are installed.
#   scripts/deps.sh build|test|demo|bench|fuzz
# As root, missing packages are installed (apt-get update first); otherwise
# the exact apt-get line is printed and the script fails.
set -eu

build="build-essential pkg-config zlib1g-dev liblz4-dev libxxhash-dev nettle-dev libjansson-dev libblkid-dev libext2fs-dev nbdkit-plugin-dev"
peers="user-mode-linux uml-utilities qemu-utils e2fsprogs"
case "${1:-build}" in
build) want="$build" ;;
test) want="$build check clang libclang-rt-dev dosfstools fdisk xfsprogs $peers nbdkit libnbd-bin fuse3 python3-libnbd restic jq strace" ;;
demo) want="$build $peers jq" ;;
bench) want="$build $peers hyperfine fio jq strace nbdkit libnbd-bin restic mmdebstrap" ;;
fuzz) want="$build clang libclang-rt-dev" ;;
*) echo "deps.sh: unknown target '$1'" >&2; exit 2 ;;
esac

missing=
for p in $want; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ]; then
	echo "deps.sh: installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >&2
	exit 0
fi
echo "deps.sh: missing Debian packages; install them with:" >&2
echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
exit 1
