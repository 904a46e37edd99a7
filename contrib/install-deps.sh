#!/bin/sh
# Install the Debian 12 packages Boxer needs to build, test and run.
#
#   contrib/install-deps.sh           # install what is missing (as root)
#   contrib/install-deps.sh --check   # only list what is missing; exit 1 if any
#   contrib/install-deps.sh --list    # print every package a fresh Debian 12
#                                     # needs, one a line (contrib/test-vm.sh
#                                     # puts them into its guest image)
#
# Idempotent and quiet: when everything is present it prints nothing and
# does not touch the network. Packages come from the host's configured apt
# sources; `apt-get update` runs only when something must be installed.
#
# Go is the exception, and is needed only when runsc must be built (no
# usable runsc on PATH or in contrib/build-runsc.sh's cache): runsc must be built with Go 1.22 or later
# (contrib/build-runsc.sh) and Debian 12's golang-go is 1.19, so golang-go
# is never installed. A `go` on
# PATH that is new enough is used as it is; otherwise the newest
# golang-1.NN-go (NN >= 22) apt offers is installed (e.g. from
# bookworm-backports, when the host has it configured); otherwise we stop
# and say what is needed.
#
# Not installed on purpose: runsc (built, see above), and Debian's apache2
# service package (apache2-bin, the server and its modules without a system
# service, is enough for tests/integration/test_apache.py).
set -eu

# build: compiler, autotools, the libraries the C code links against,
#        musl-tools for a smaller boxer-init (configure.ac)
# run:   nginx + spawn-fcgi in front of the pool; iproute2, nftables and
#        dnsmasq-base for sandbox networking; skopeo for registry tests;
#        docker-registry for the quickstart's local registry and the pull
#        tests (python3-cryptography signs their registry tokens)
# test:  Check for unit tests, pytest + requests for integration tests,
#        mmdebstrap + busybox-static for contrib/images/build-images.sh,
#        python3-venv for the SDK's venv (contrib/python-env.sh)
# fuzz:  clang + libclang-rt-14-dev (libFuzzer) for contrib/fuzz.sh
# apache: apache2-bin for the Apache site's test (contrib/apache/boxer.conf)
# api:   chromium for the Swagger UI test and npm for contrib/swagger-ui.sh
#        (tests/openapi)
PACKAGES='
build-essential autoconf automake libtool pkg-config musl-tools
libfcgi-dev libjson-c-dev libarchive-dev libcurl4-openssl-dev
libnl-3-dev libnl-route-3-dev libcgroup-dev libssl-dev libnftables-dev
check
nginx spawn-fcgi
iproute2 nftables dnsmasq-base
mmdebstrap busybox-static skopeo
docker-registry python3-cryptography
python3 python3-pytest python3-requests python3-venv
jq curl
apache2-bin
clang libclang-rt-14-dev
chromium
'
GO_MIN_MINOR=22

check_only=0
case ${1:-} in
--check) check_only=1 ;;
--list)
	echo $PACKAGES npm | tr ' ' '\n'
	exit 0
	;;
"") ;;
*)
	sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p;}' "$0" >&2
	exit 2
	;;
esac

installed() {
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# Prints the minor version of the Go at $1 if it is 1.x, else nothing.
go_minor() {
	"$1" env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9][0-9]*\).*/\1/p'
}

# Debian's npm conflicts with a Node.js that brings its own (NodeSource's):
# only wanted when no npm is there.
command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES npm"

missing=
for p in $PACKAGES; do
	installed "$p" || missing="$missing $p"
done

# Go: PATH first, then the usual places a newer Go lives off PATH.
go_ok=0 go_hint=
if "$(dirname "$0")/build-runsc.sh" --cached >/dev/null 2>&1; then
	go_ok=1
elif command -v go >/dev/null 2>&1; then
	m=$(go_minor "$(command -v go)")
	[ -n "$m" ] && [ "$m" -ge "$GO_MIN_MINOR" ] && go_ok=1
fi
if [ "$go_ok" = 0 ]; then
	for g in /usr/local/go/bin/go /usr/lib/go-1.*/bin/go; do
		[ -x "$g" ] || continue
		m=$(go_minor "$g")
		if [ -n "$m" ] && [ "$m" -ge "$GO_MIN_MINOR" ]; then
			go_ok=1 go_hint="the go on PATH is missing or older than 1.$GO_MIN_MINOR; Go 1.$m is at $g: put $(dirname "$g") first on PATH"
		fi
	done
fi
go_pkg=
if [ "$go_ok" = 0 ]; then
	# The newest golang-1.NN-go that apt can install, NN >= 22. Indexes may
	# be stale here; that is fine, it is looked up again after the update.
	go_pkg=$(apt-cache search --names-only '^golang-1\.[0-9]+-go$' 2>/dev/null |
		sed -n 's/^golang-1\.\([0-9][0-9]*\)-go .*/\1/p' |
		awk -v min="$GO_MIN_MINOR" '$1 >= min' | sort -n | tail -n 1)
	[ -z "$go_pkg" ] || go_pkg="golang-1.$go_pkg-go"
fi

go_fail() {
	echo "install-deps: Go 1.$GO_MIN_MINOR or later is needed to build runsc" \
		"(contrib/build-runsc.sh), and none was found: Debian 12's golang-go is 1.19." \
		"Configure bookworm-backports in apt and rerun (it offers golang-1.NN-go)," \
		"or unpack an official Go release and put its bin directory on PATH." >&2
	exit 1
}

if [ -z "$missing" ] && [ "$go_ok" = 1 ]; then
	[ -z "$go_hint" ] || echo "install-deps: $go_hint" >&2
	exit 0
fi

if [ "$check_only" = 1 ]; then
	[ -z "$missing" ] || echo "install-deps: missing:$missing"
	[ "$go_ok" = 1 ] || echo "install-deps: missing: Go >= 1.$GO_MIN_MINOR${go_pkg:+ (apt offers $go_pkg)}"
	exit 1
fi

[ "$(id -u)" = 0 ] || {
	echo "install-deps: must run as root to install:$missing" >&2
	exit 1
}

export DEBIAN_FRONTEND=noninteractive
if [ -n "$missing$go_pkg" ]; then
	echo "install-deps: installing:$missing${go_pkg:+ $go_pkg}" >&2
else
	echo "install-deps: no Go >= 1.$GO_MIN_MINOR; updating apt's indexes to look for one" >&2
fi
apt-get update -qq >&2
if [ "$go_ok" = 0 ] && [ -z "$go_pkg" ]; then
	go_pkg=$(apt-cache search --names-only '^golang-1\.[0-9]+-go$' |
		sed -n 's/^golang-1\.\([0-9][0-9]*\)-go .*/\1/p' |
		awk -v min="$GO_MIN_MINOR" '$1 >= min' | sort -n | tail -n 1)
	[ -z "$go_pkg" ] || go_pkg="golang-1.$go_pkg-go"
fi
# A package that only backports has is its own candidate, so no -t needed.
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing $go_pkg >&2

if [ "$go_ok" = 0 ]; then
	[ -n "$go_pkg" ] || go_fail
	gobin=/usr/lib/go-${go_pkg#golang-}
	gobin=${gobin%-go}/bin
	echo "install-deps: installed $go_pkg; put $gobin first on PATH before contrib/build-runsc.sh" >&2
fi
