#!/bin/sh
# The installed API is exactly what libubdk.so exports, and every exported
# function has a man page synopsis (cow/ubdk_cow.3, cow/ubdk_cbt.3).
#   tests/api/exports.sh BUILD_DIR
set -eu
B=${1:?usage: exports.sh BUILD_DIR}
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$B/lib/libubdk.so" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort >"$tmp/exported"
# Declarations in the installed headers: a type, then ubdk_name( at a line start.
sed -n 's/^[a-z].*[ *]\(ubdk_[a-z0-9_]*\)(.*/\1/p' cow/ubdk_cow.h cow/ubdk_cbt.h | sort -u >"$tmp/declared"
sed -n 's/^\.BI\{0,1\} "\{0,1\}[^"(]*[ *]\(ubdk_[a-z0-9_]*\)(.*/\1/p' cow/ubdk_cow.3 cow/ubdk_cbt.3 | sort -u >"$tmp/documented"

fail=0
if ! cmp -s "$tmp/exported" "$tmp/declared"; then
	echo "exports.sh: exported (<) and declared in the installed headers (>) differ:" >&2
	diff "$tmp/exported" "$tmp/declared" | grep '^[<>]' >&2
	fail=1
fi
missing=$(comm -23 "$tmp/exported" "$tmp/documented")
if [ -n "$missing" ]; then
	echo "exports.sh: exported but in no man page synopsis:" $missing >&2
	fail=1
fi
[ "$fail" = 0 ] || exit 1
echo "api: $(wc -l <"$tmp/exported") exported functions, all declared in the installed headers and documented"
