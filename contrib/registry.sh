#!/bin/sh
# A local image registry for Boxer to pull from: Debian's docker-registry
# (the reference Distribution implementation) run with a config of its own,
# on a loopback address only, not as the system service.
#
#   contrib/registry.sh start  [--dir DIR] [--addr HOST:PORT]
#   contrib/registry.sh stop   [--dir DIR]
#   contrib/registry.sh status [--dir DIR]
#
# DIR (default /var/lib/boxer-registry) holds config.yml, the image
# storage (storage/), registry.pid and registry.log. ADDR defaults to
# 127.0.0.1:5000 (for stop and status: the one start used). start is idempotent: a registry already running from DIR
# and answering is left alone; anything else answering on ADDR is an error.
# Push to it with skopeo over plain HTTP, e.g.
#
#   skopeo copy --dest-tls-verify=false oci:LAYOUT docker://localhost:5000/boxer/app:1
#
# and list "localhost:5000" (as references name it) in Boxer's config with
# "insecure": true so Boxer pulls from it over plain HTTP.
set -eu

DIR=/var/lib/boxer-registry
ADDR=

log() { echo "registry: $*" >&2; }
die() {
	log "$@"
	exit 1
}
usage() {
	sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p;}' "$0" >&2
	exit 2
}

[ $# -ge 1 ] || usage
cmd=$1
shift
while [ $# -gt 0 ]; do
	case $1 in
	--dir) DIR=${2:?}; shift 2 ;;
	--addr) ADDR=${2:?}; shift 2 ;;
	*) usage ;;
	esac
done

# stop and status find the address in the config start wrote.
[ -n "$ADDR" ] || ADDR=$(sed -n 's/^  addr: //p' "$DIR/config.yml" 2>/dev/null || true)
[ -n "$ADDR" ] || ADDR=127.0.0.1:5000
case $ADDR in
127.* | localhost:* | \[::1\]:*) ;;
*) die "--addr must be a loopback address: this registry has no authentication" ;;
esac

pidfile=$DIR/registry.pid

# The pid of the registry running from DIR, or nothing.
running() {
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	# Only if that pid still is a docker-registry serving our config.
	if [ -r "/proc/$pid/cmdline" ] &&
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "serve $DIR/config.yml"; then
		echo "$pid"
	fi
}

answers() {
	curl -fsS -o /dev/null --max-time 2 "http://$ADDR/v2/" 2>/dev/null
}

start() {
	command -v docker-registry >/dev/null 2>&1 ||
		die "docker-registry is not installed (contrib/install-deps.sh installs it)"
	pid=$(running)
	if [ -n "$pid" ] && answers; then
		log "already running from $DIR on $ADDR (pid $pid)"
		return 0
	fi
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	answers && die "something else answers on $ADDR; stop it (the docker-registry system" \
		"service listens on :5000: systemctl disable --now docker-registry) or pick --addr"
	mkdir -p "$DIR/storage"
	cat >"$DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $DIR/storage
  delete:
    enabled: true
http:
  addr: $ADDR
EOF
	mark=$(wc -l <"$DIR/registry.log" 2>/dev/null || echo 0)
	setsid docker-registry serve "$DIR/config.yml" >>"$DIR/registry.log" 2>&1 </dev/null &
	child=$!
	echo "$child" >"$pidfile"
	# Watch the child itself, not its /proc cmdline: until it has exec'd
	# docker-registry its cmdline is still this script's, and taking that
	# for "not running" failed a start that was merely slow.
	i=0
	while ! answers; do
		i=$((i + 1))
		if ! kill -0 "$child" 2>/dev/null; then
			rc=0
			wait "$child" || rc=$?
			tail -n "+$((mark + 1))" "$DIR/registry.log" | tail -n 20 >&2 || true
			rm -f "$pidfile"
			die "docker-registry exited with status $rc before answering on $ADDR (its log is above)"
		fi
		if [ $i -gt 300 ]; then
			tail -n "+$((mark + 1))" "$DIR/registry.log" | tail -n 20 >&2 || true
			kill "$child" 2>/dev/null || true
			rm -f "$pidfile"
			die "docker-registry did not answer on $ADDR within 30 s (its log is above)"
		fi
		sleep 0.1
	done
	log "up on $ADDR (pid $(cat "$pidfile"), storage and log in $DIR)"
}

stop() {
	pid=$(running)
	if [ -z "$pid" ]; then
		rm -f "$pidfile"
		return 0
	fi
	kill "$pid"
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		i=$((i + 1))
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$pidfile"
	log "stopped ($DIR)"
}

case $cmd in
start) start ;;
stop) stop ;;
status)
	pid=$(running)
	[ -n "$pid" ] || exit 3
	answers || exit 1
	echo "running from $DIR on $ADDR (pid $pid)"
	;;
*) usage ;;
esac
