#!/bin/sh
# Create the unprivileged user the boxer-fcgi workers run as (config
# worker_user, "boxer" by default): a system user with no home, no shell
# and no password. Idempotent; run as root.
set -eu
user=${1:-boxer}
if id -u "$user" >/dev/null 2>&1; then
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "ensure-user: run as root to create the user '$user'" >&2; exit 1; }
useradd --system --user-group --no-create-home --home-dir /nonexistent \
	--shell /usr/sbin/nologin --comment "Boxer workers" "$user"
echo "ensure-user: created system user '$user'" >&2
