#!/bin/bash
# From a fresh Debian machine to a running Boxer on :8080, as root.
# Idempotent: every step skips what is already done, and a running pool is
# restarted with the freshly installed binary.
#
#   installs missing Debian packages, builds runsc (cached) and Boxer,
#   installs Boxer under /usr/local, starts a local image registry on
#   127.0.0.1:5000 (contrib/registry.sh), builds the demo images and pushes
#   them there (Boxer pulls them on first use, like from any registry),
#   starts nginx + the spawn-fcgi pool, and runs hello world.
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG=${BOXER_CONFIG:-/etc/boxer/config.json}
PREFIX=${BOXER_RUN_DIR:-/run/boxer}
# Workers only wait on the executor: enough for the default
# max_concurrent_runs + max_queued_runs (2 + 8 per core) and a few more
# for quick requests, so that overload meets the executor's fast 503.
WORKERS=${BOXER_WORKERS:-$((10 * $(nproc) + 4))}
PYTHON_IMAGE=localhost:5000/boxer/python:3.11
BUSYBOX_IMAGE=localhost:5000/boxer/busybox:latest
REGISTRY_DIR=${BOXER_REGISTRY_DIR:-/var/lib/boxer-registry}

step() { printf '\n== %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (runsc needs it)" >&2; exit 1; }

step "dependencies"
contrib/install-deps.sh
runsc=$(contrib/build-runsc.sh)
echo "runsc: $runsc"

# The workers' own user: only boxer-executor runs as root.
contrib/ensure-user.sh boxer

step "build and install"
if [ ! -f Makefile ] || [ configure.ac -nt Makefile ] || [ Makefile.am -nt Makefile ]; then
	./autogen.sh
	./configure --quiet --prefix=/usr/local --sysconfdir=/etc
fi
make -j"$(nproc)"
make install >/dev/null

step "config"
if [ ! -f "$CONFIG" ]; then
	mkdir -p "$(dirname "$CONFIG")"
	cat >"$CONFIG" <<JSON
{
  "home": "/var/lib/boxer",
  "runsc_path": "$runsc",
  "listen_addr": ":8080",
  "worker_user": "boxer",
  "registries": {"localhost:5000": {"insecure": true}},
  "warm_pool": [{"image": "$PYTHON_IMAGE", "network": "none", "size": 2}]
}
JSON
	echo "wrote $CONFIG"
else
	echo "keeping $CONFIG"
fi
# The local registry speaks plain HTTP, which Boxer uses only where told.
if [ "$(jq '.registries["localhost:5000"].insecure' "$CONFIG")" != true ]; then
	jq '.registries["localhost:5000"].insecure = true' "$CONFIG" >"$CONFIG.tmp"
	# It may hold registry passwords: keep its mode.
	chmod --reference="$CONFIG" "$CONFIG.tmp"
	mv "$CONFIG.tmp" "$CONFIG"
	echo "listed localhost:5000 as a plain-HTTP registry in $CONFIG"
fi

# Workers run as boxer, not root, whatever an older quickstart wrote.
if [ "$(jq -r '.worker_user // empty' "$CONFIG")" = "" ]; then
	jq '.worker_user = "boxer"' "$CONFIG" >"$CONFIG.tmp"
	chmod --reference="$CONFIG" "$CONFIG.tmp"
	mv "$CONFIG.tmp" "$CONFIG"
	echo "set worker_user to boxer in $CONFIG"
fi

# Two sandboxes of the demo image kept booted: its runs skip gVisor's boot.
if [ "$(jq -r 'has("warm_pool")' "$CONFIG")" = false ]; then
	jq --arg image "$PYTHON_IMAGE" '.warm_pool = [{"image": $image, "network": "none", "size": 2}]' \
		"$CONFIG" >"$CONFIG.tmp"
	chmod --reference="$CONFIG" "$CONFIG.tmp"
	mv "$CONFIG.tmp" "$CONFIG"
	echo "warmed $PYTHON_IMAGE (warm_pool, 2 sandboxes) in $CONFIG"
fi

step "local registry on 127.0.0.1:5000"
# Debian starts its docker-registry service on :5000 of every interface
# where systemd runs; ours listens on loopback only.
if command -v systemctl >/dev/null 2>&1 &&
	systemctl is-active --quiet docker-registry 2>/dev/null; then
	echo "stopping and disabling the docker-registry system service (it listens on every interface)"
	systemctl disable --now docker-registry
fi
contrib/registry.sh start --dir "$REGISTRY_DIR" --addr 127.0.0.1:5000

step "demo images, pushed to the local registry"
contrib/images/build-images.sh | while read -r name layout; do
	case $name in
	python) ref=$PYTHON_IMAGE ;;
	busybox) ref=$BUSYBOX_IMAGE ;;
	python-pytest) ref=localhost:5000/boxer/python-pytest:3.11 ;; # examples/upload_and_run
	*) continue ;;
	esac
	# Blobs the registry has are not sent again.
	skopeo copy -q --dest-tls-verify=false "oci:$layout" "docker://$ref"
	echo "pushed $ref"
done

step "nginx + pool on :8080"
contrib/pool.sh start --config "$CONFIG" --prefix "$PREFIX" --workers "$WORKERS" \
	--bin /usr/local/sbin/boxer-fcgi --share /usr/local/share/boxer

step "hello world"
curl -fsS -X POST http://127.0.0.1:8080/run -H 'Content-Type: application/json' \
	-d "{\"image\": \"$PYTHON_IMAGE\", \"cmd\": [\"python3\", \"-c\", \"print('hello world')\"]}"
echo
echo "Boxer is running on :8080 (stop it with: contrib/pool.sh stop --prefix $PREFIX)"
echo "Images: localhost:5000 (stop it with: contrib/registry.sh stop --dir $REGISTRY_DIR)"
echo "API: http://localhost:8080/openapi.yaml, Swagger UI: http://localhost:8080/swagger"
