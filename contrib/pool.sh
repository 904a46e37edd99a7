#!/bin/sh
# Start, stop and inspect a whole private stack without systemd: the
# executor (boxer-executor, root), the boxer-fcgi pool and nginx, all inside
# one private directory (the prefix). Used by the quickstart and the
# integration tests; production uses contrib/systemd/ instead.
#
#   contrib/pool.sh start  --prefix DIR [--config FILE] [--workers N]
#                          [--bin PATH] [--listen ADDR] [--share DIR]
#                          [--tls-cert FILE --tls-key FILE]
#   contrib/pool.sh stop   --prefix DIR
#   contrib/pool.sh status --prefix DIR
#
# start renders nginx's config into DIR (contrib/render-config.py), starts
# `boxer-executor --config FILE` (found next to BIN), waits until it is ready
# (it writes DIR/executor.ready once the home is laid out), then
# `spawn-fcgi -n -s DIR/boxer.sock -- BIN --workers N --config FILE`, each in
# a session of its own, starts nginx with DIR as its prefix, and waits until
# GET /health answers 200 (BOXER_POOL_START_TIMEOUT seconds, default 20).
# With --tls-cert and --tls-key nginx serves HTTPS (render-config.py).
# nginx serves /openapi.yaml and /swagger/ itself: from DIR of --share (an
# installed $(datadir)/boxer), else from this checkout, with Swagger UI's
# files from contrib/swagger-ui.sh (installed with npm on first use).
# It either leaves both running and healthy, or prints the end of the logs,
# stops whatever it started and fails. If the prefix already has a pool
# running, start stops it first: a start always runs the binary, config and
# worker count it was given, never a leftover.
#
# stop asks nginx to finish its requests (QUIT), the pool and the executor
# to finish their runs (TERM), waits as long as the longest run may take,
# then kills what is left. Stopping a stopped prefix does nothing. status exits 0 when both are
# running and healthy, 3 when nothing runs, 1 otherwise.
#
# Files in DIR: nginx.conf, boxer-site.conf, boxer.sock, boxer-fcgi.pid,
# boxer-executor.pid, nginx.pid, pool.env (what stop and status need),
# boxer.log (the pool's stderr), executor.log (the executor's),
# nginx-error.log, access.log, tmp/.
#
# The executor's master restarts its server process if that dies; if the
# master itself dies, status reports it and the next start replaces it.
#
# BIN defaults to $BOXER_FCGI, then ./boxer-fcgi of this checkout, then
# boxer-fcgi on PATH, then /usr/local/sbin/boxer-fcgi.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

log() { echo "pool: $*" >&2; }
die() {
	log "$@"
	exit 1
}
usage() {
	sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p;}' "$0" >&2
	exit 2
}

# --- processes -----------------------------------------------------------

# stat_field PID N: field N of /proc/PID/stat, counted from the state
# (field 3 of proc(5)), which follows the command name in parentheses.
stat_field() {
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f"$2"
}

# started PID: when PID started (clock ticks since boot), which no exec
# changes and no later process with a reused pid shares.
started() { [ -n "$1" ] && stat_field "$1" 20 || true; }

# alive PID STARTED: PID still is the process that start launched. A zombie
# is dead (where pid 1 does not reap, killed daemons stay zombies), and a
# stale pid file must not make us signal whoever reused the pid.
alive() {
	[ -n "$1" ] && [ -n "$2" ] && [ -r "/proc/$1/stat" ] || return 1
	state=$(stat_field "$1" 1) || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ] || return 1
	[ "$(started "$1")" = "$2" ]
}

read_pid() { [ -f "$1" ] && tr -dc 0-9 <"$1" || true; }

# kill_group PID: SIGKILL PID's whole process group when PID leads one (both
# daemons do: the pool runs under setsid, nginx calls setsid), so that no
# worker is left over.
kill_group() {
	pgid=$(stat_field "$1" 3) || pgid=
	# "kill -9 -PGID": the form dash's kill understands for a group.
	if [ "$pgid" = "$1" ]; then
		kill -9 "-$1" 2>/dev/null || true
	else
		kill -9 "$1" 2>/dev/null || true
	fi
}

now() { date +%s; }

# --- commands ------------------------------------------------------------

load_env() {
	url='' stop_grace=625 pool_started='' nginx_started='' executor_started=''
	# shellcheck disable=SC1091 # written by start below
	[ -f "$prefix/pool.env" ] && . "$prefix/pool.env"
	executor_pid=$(read_pid "$prefix/boxer-executor.pid")
	pool_pid=$(read_pid "$prefix/boxer-fcgi.pid")
	nginx_pid=$(read_pid "$prefix/nginx.pid")
}

do_stop() {
	load_env
	p_up=0 n_up=0 e_up=0
	alive "$pool_pid" "$pool_started" && p_up=1
	alive "$nginx_pid" "$nginx_started" && n_up=1
	alive "$executor_pid" "$executor_started" && e_up=1
	if [ $p_up = 1 ] || [ $n_up = 1 ] || [ $e_up = 1 ]; then
		# All at once: nginx keeps delivering the responses of the runs the
		# executor is finishing for the workers, and takes no new requests.
		[ $n_up = 0 ] || kill -QUIT "$nginx_pid" 2>/dev/null || true
		[ $p_up = 0 ] || kill -TERM "$pool_pid" 2>/dev/null || true
		[ $e_up = 0 ] || kill -TERM "$executor_pid" 2>/dev/null || true
		deadline=$(($(now) + stop_grace))
		while { alive "$pool_pid" "$pool_started" || alive "$nginx_pid" "$nginx_started" ||
			alive "$executor_pid" "$executor_started"; } &&
			[ "$(now)" -lt "$deadline" ]; do
			sleep 0.2
		done
		if alive "$executor_pid" "$executor_started"; then
			log "the executor (pid $executor_pid) still runs after ${stop_grace}s; killing it"
			kill_group "$executor_pid"
		fi
		if alive "$pool_pid" "$pool_started"; then
			log "the pool (pid $pool_pid) still runs after ${stop_grace}s; killing it"
			kill_group "$pool_pid"
		fi
		if alive "$nginx_pid" "$nginx_started"; then
			log "nginx (pid $nginx_pid) still runs after ${stop_grace}s; killing it"
			kill_group "$nginx_pid"
		fi
		log "stopped ($prefix)"
	fi
	rm -f "$prefix/boxer-fcgi.pid" "$prefix/nginx.pid" "$prefix/boxer-executor.pid" \
		"$prefix/boxer.sock" "$prefix/executor.ready"
}

# pool.env: what stop and status need to know about this start.
save_env() {
	printf 'url=%s\nstop_grace=%s\npool_started=%s\nnginx_started=%s\nexecutor_started=%s\n' \
		"$url" "$stop_grace" "$pool_started" "$nginx_started" "$executor_started" \
		>"$prefix/pool.env"
}

show_logs() {
	for f in executor.log boxer.log nginx-error.log; do
		[ -s "$prefix/$f" ] || continue
		echo "--- last lines of $prefix/$f" >&2
		tail -n 20 "$prefix/$f" >&2
	done
}

start_fail() {
	log "$@"
	show_logs
	do_stop
	exit 1
}

do_start() {
	for tool in nginx spawn-fcgi curl python3; do
		command -v "$tool" >/dev/null 2>&1 ||
			die "'$tool' not found (run contrib/install-deps.sh)"
	done
	if [ -z "$bin" ]; then
		for bin in "${BOXER_FCGI:-}" "$here/../boxer-fcgi" "$(command -v boxer-fcgi || true)" \
			/usr/local/sbin/boxer-fcgi; do
			[ -n "$bin" ] && [ -x "$bin" ] && break
		done
	fi
	[ -x "$bin" ] && [ -f "$bin" ] || die "no boxer-fcgi binary at '$bin' (build it or pass --bin)"
	bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
	executor_bin=${BOXER_EXECUTOR:-$(dirname "$bin")/boxer-executor}
	[ -x "$executor_bin" ] ||
		die "no boxer-executor next to '$bin' (build it, or set BOXER_EXECUTOR)"
	if [ -n "$config" ]; then
		[ -r "$config" ] || die "cannot read config '$config'"
		config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
	fi

	do_stop

	swagger_ui=$("$here/swagger-ui.sh") || die "cannot install Swagger UI (contrib/swagger-ui.sh)"
	values=$(python3 "$here/render-config.py" standalone ${config:+--config "$config"} \
		${listen:+--listen "$listen"} --socket "$prefix/boxer.sock" --prefix "$prefix" \
		${share:+--share-dir "$share"} --swagger-ui "$swagger_ui" \
		${tls_cert:+--tls-cert "$tls_cert" --tls-key "$tls_key"}) ||
		die "cannot render the nginx config"
	url=$(printf '%s\n' "$values" | sed -n 's/^url=//p')
	stop_grace=$(printf '%s\n' "$values" | sed -n 's/^stop_grace=//p')
	pool_started='' nginx_started='' executor_started=''

	# The executor first: workers answer runs and /health through it.
	setsid=
	command -v setsid >/dev/null 2>&1 && setsid=setsid
	rm -f "$prefix/executor.ready"
	$setsid "$executor_bin" ${config:+--config "$config"} --ready-file "$prefix/executor.ready" \
		</dev/null >>"$prefix/executor.log" 2>&1 &
	executor_pid=$!
	executor_started=$(started "$executor_pid")
	echo "$executor_pid" >"$prefix/boxer-executor.pid"
	save_env
	# The workers only once the executor has laid out the home (what is
	# theirs in it) and listens.
	deadline=$(($(now) + ${BOXER_POOL_START_TIMEOUT:-20}))
	until [ -f "$prefix/executor.ready" ]; do
		alive "$executor_pid" "$executor_started" ||
			start_fail "the executor exited during start-up"
		[ "$(now)" -lt "$deadline" ] || start_fail "the executor was not ready in time"
		sleep 0.1
	done

	# -n: spawn-fcgi binds the socket and execs BIN in place, so BIN keeps
	# our stderr (when spawn-fcgi forks, it points stderr at /dev/null) and
	# $! is the pool master's pid. setsid detaches it from our terminal and
	# makes it lead a process group that stop can kill as a whole.
	# The socket is for the web server's workers (www-data on Debian) and
	# root only; the prefix lets them pass through to it.
	if [ "$(id -u)" = 0 ] && id www-data >/dev/null 2>&1; then
		sockperm="-M 0660 -G www-data"
		chmod 0711 "$prefix"
	else
		sockperm="-M 0600"
	fi
	# shellcheck disable=SC2086 # the options split on purpose
	$setsid spawn-fcgi -n -s "$prefix/boxer.sock" $sockperm -- \
		"$bin" --workers "$workers" ${config:+--config "$config"} \
		</dev/null >>"$prefix/boxer.log" 2>&1 &
	pool_pid=$!
	pool_started=$(started "$pool_pid")
	echo "$pool_pid" >"$prefix/boxer-fcgi.pid"
	save_env

	deadline=$(($(now) + ${BOXER_POOL_START_TIMEOUT:-20}))
	until [ -S "$prefix/boxer.sock" ]; do
		alive "$pool_pid" "$pool_started" || start_fail "the pool exited during start-up"
		[ "$(now)" -lt "$deadline" ] || start_fail "no socket at $prefix/boxer.sock"
		sleep 0.1
	done

	# -e: even messages from before it reads nginx.conf go to the prefix's
	# error log; its stderr would only repeat them.
	nginx -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/nginx-error.log" \
		</dev/null >/dev/null 2>&1 ||
		start_fail "nginx did not start"
	nginx_pid=$(read_pid "$prefix/nginx.pid")
	nginx_started=$(started "$nginx_pid")
	save_env

	while :; do
		alive "$pool_pid" "$pool_started" || start_fail "the pool exited during start-up"
		alive "$executor_pid" "$executor_started" ||
			start_fail "the executor exited during start-up"
		# --insecure: our own nginx on this host; its certificate names
		# the public host name, not the loopback address asked here.
		code=$(curl -sS --insecure -o "$prefix/tmp/health" -w '%{http_code}' --max-time 2 \
			"$url/health" 2>/dev/null) || code=000
		[ "$code" = 200 ] && break
		if [ "$(now)" -ge "$deadline" ]; then
			log "GET $url/health answered $code: $(head -c 300 "$prefix/tmp/health" 2>/dev/null || true)"
			start_fail "not healthy after ${BOXER_POOL_START_TIMEOUT:-20}s"
		fi
		sleep 0.2
	done
	log "up at $url (executor pid $executor_pid, pool pid $pool_pid, nginx pid $nginx_pid, $workers workers, logs in $prefix)"
}

do_status() {
	load_env
	st=0 up=0
	if alive "$pool_pid" "$pool_started"; then
		echo "pool: running (pid $pool_pid)"
		up=$((up + 1))
	else
		echo "pool: stopped"
	fi
	if alive "$nginx_pid" "$nginx_started"; then
		echo "nginx: running (pid $nginx_pid)"
		up=$((up + 1))
	else
		echo "nginx: stopped"
	fi
	if alive "$executor_pid" "$executor_started"; then
		echo "executor: running (pid $executor_pid)"
		up=$((up + 1))
	else
		echo "executor: stopped"
	fi
	[ "$up" = 0 ] && return 3
	[ "$up" = 3 ] || st=1
	code=$(curl -sS --insecure --max-time 5 -o "$prefix/tmp/health" -w '%{http_code}' "$url/health" 2>/dev/null) ||
		code=000
	echo "health: HTTP $code $(head -c 300 "$prefix/tmp/health" 2>/dev/null || true)"
	[ "$code" = 200 ] || st=1
	return $st
}

# --- arguments -----------------------------------------------------------

[ $# -ge 1 ] || usage
cmd=$1
shift
prefix='' config='' workers=4 bin='' listen='' share='' tls_cert='' tls_key=''
while [ $# -gt 0 ]; do
	[ $# -ge 2 ] || usage
	case $1 in
	--prefix) prefix=$2 ;;
	--config) config=$2 ;;
	--workers) workers=$2 ;;
	--bin) bin=$2 ;;
	--listen) listen=$2 ;;
	--share) share=$2 ;;
	--tls-cert) tls_cert=$2 ;;
	--tls-key) tls_key=$2 ;;
	*) usage ;;
	esac
	shift 2
done
[ -n "$prefix" ] || usage
case $workers in '' | *[!0-9]*) die "--workers wants a number, got '$workers'" ;; esac

case $cmd in
start | restart)
	mkdir -p "$prefix"
	prefix=$(cd "$prefix" && pwd)
	do_start
	;;
stop)
	[ -d "$prefix" ] || exit 0
	prefix=$(cd "$prefix" && pwd)
	do_stop
	;;
status)
	[ -d "$prefix" ] || {
		echo "pool: stopped"
		echo "nginx: stopped"
		echo "executor: stopped"
		exit 3
	}
	prefix=$(cd "$prefix" && pwd)
	set +e
	do_status
	exit $?
	;;
*) usage ;;
esac
