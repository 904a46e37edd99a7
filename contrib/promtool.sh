#!/bin/sh
# Print the path of promtool, Prometheus' checker, for the metrics tests
# (tests/integration/test_metrics.py): the one on PATH, else the one from
# Debian's prometheus package, unpacked once into
# ${BOXER_CACHE:-/var/cache/boxer}/promtool without installing the package
# (which would start a Prometheus server on this host). As root.
#
#   promtool=$(contrib/promtool.sh)
set -eu

if command -v promtool 2>/dev/null; then
	exit 0
fi
dir=${BOXER_CACHE:-/var/cache/boxer}/promtool
if [ -x "$dir/promtool" ]; then
	echo "$dir/promtool"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/boxer-promtool.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt downloads as its sandbox user, which must be able to write here.
chown _apt "$tmp" 2>/dev/null || true
download() { (cd "$tmp" && apt-get download -qq prometheus) >&2; }
if ! download; then
	# Indexes of a fresh machine may be missing or stale.
	apt-get update -qq >&2
	download || {
		echo "promtool: cannot download Debian's prometheus package" >&2
		exit 1
	}
fi
dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
mkdir -p "$dir"
install -m 0755 "$tmp/root/usr/bin/promtool" "$dir/promtool.new"
mv "$dir/promtool.new" "$dir/promtool"
echo "$dir/promtool"
