#!/bin/sh
# Print the path of a runsc Boxer can use: an adequate one already on PATH
# (built from August 2024 or later), else the pinned one, built from gVisor's
# Go-buildable module on first use.  --build skips the PATH lookup;
# --cached never builds (exit 1 when a build would be needed).
#
# Why build at all: Debian's runsc (bookworm and bookworm-backports) predates
# August 2024 and refuses --network=sandbox on current kernels because it
# mistakes every network namespace for the root one (see README, "runsc").
# The pin below was chosen by testing systrap, sandbox networking and
# --overlay2=root:memory on this kind of machine, not by date.
#
# The binary is cached outside the checkout, keyed by the pin, so reruns are
# instant; GOMODCACHE and GOCACHE sit beside it for the same reason.
set -eu

GVISOR_VERSION=${GVISOR_VERSION:-v0.0.0-20260905035102-160fafc42237}
CACHE=${BOXER_CACHE:-/var/cache/boxer}
out="$CACHE/runsc/$GVISOR_VERSION/runsc"
MIN_DATE=20240801

# The first 8-digit date in the version: "release-20240807.0" or a Go
# pseudo-version "v0.0.0-20260905035102-160fafc42237".
version_date() {
	"$1" --version 2>/dev/null | head -n 1 | grep -o '20[0-9]\{6\}' | head -n 1
}

if [ "${1:-}" != --build ] && existing=$(command -v runsc 2>/dev/null); then
	d=$(version_date "$existing")
	if [ -n "$d" ] && [ "$d" -ge "$MIN_DATE" ]; then
		echo "$existing"
		exit 0
	fi
	echo "build-runsc: ignoring $existing (version date '${d:-unknown}' is before $MIN_DATE)" >&2
fi

if [ -x "$out" ]; then
	echo "$out"
	exit 0
fi
[ "${1:-}" != --cached ] || exit 1

# Go from PATH, else where the Go tarball or Debian's golang-1.NN-go put it.
if ! command -v go >/dev/null 2>&1; then
	for g in /usr/local/go/bin/go /usr/lib/go-1.*/bin/go; do
		[ -x "$g" ] && PATH="$(dirname "$g"):$PATH" && break
	done
fi
command -v go >/dev/null 2>&1 || {
	echo "build-runsc: 'go' not found; install Go 1.22 or later (contrib/install-deps.sh)" >&2
	exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/boxer-runsc-build.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOFLAGS=-modcacherw
cd "$work"
go mod init boxer-runsc-build >/dev/null 2>&1
go get "gvisor.dev/gvisor/runsc@$GVISOR_VERSION" >&2
mkdir -p "$(dirname "$out")"
CGO_ENABLED=0 go build -trimpath \
	-ldflags "-X gvisor.dev/gvisor/runsc/version.version=$GVISOR_VERSION" \
	-o "$out.tmp" gvisor.dev/gvisor/runsc >&2
mv "$out.tmp" "$out"
echo "$out"
