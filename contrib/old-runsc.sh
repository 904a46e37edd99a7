#!/bin/bash
# Prints the path of Debian's own runsc (from 2022, older than Boxer
# accepts), extracted once from its package into the cache and never put on
# PATH: tests/integration/test_deploy.py checks that Boxer refuses it at
# start-up.  The package comes through apt-get download, by name.
set -euo pipefail
CACHE=${BOXER_CACHE:-/var/cache/boxer}
dir="$CACHE/old-runsc"
bin="$dir/root/usr/bin/runsc"
if [ ! -x "$bin" ]; then
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/boxer-old-runsc.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	chmod 0755 "$tmp"            # apt's download user writes here
	(cd "$tmp" && apt-get download -q runsc >/dev/null 2>&1) ||
		{ echo "old-runsc: apt-get download runsc failed" >&2; exit 1; }
	rm -rf "$dir"
	mkdir -p "$dir"
	dpkg-deb -x "$tmp"/runsc_*.deb "$dir/root"
fi
echo "$bin"
