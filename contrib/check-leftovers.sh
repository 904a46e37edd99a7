#!/bin/sh
# Fail if anything of a Boxer run is left on this machine: runsc sandbox
# processes, run cgroups, or test homes.  The integration suite checks each
# test's own home; this is the machine-wide check after the suite.
set -eu
found=0
say() { echo "leftover: $*" >&2; found=1; }

ps -eo pid=,args= | grep -E 'runsc-(sandbox|gofer)|runsc .*(boot|gofer)' | grep -v grep |
	while read -r line; do echo "leftover: process $line" >&2; done
if ps -eo args= | grep -E 'runsc-(sandbox|gofer)' | grep -qv grep; then found=1; fi
for d in /sys/fs/cgroup/*/boxer-*; do
	[ -e "$d" ] && say "cgroup $d"
done
# cgroup v2: below the cgroup of the service that made them (executor/cgroup.h).
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
	for d in $(find /sys/fs/cgroup -type d -path '*/runs/boxer-*' -prune 2>/dev/null); do
		say "cgroup $d"
	done
fi
for d in "${TMPDIR:-/tmp}"/boxer-it-*; do
	[ -e "$d" ] && say "test directory $d"
done
# Registries of the pull tests (tests/integration/registry_fixtures.py).
for d in "${TMPDIR:-/tmp}"/boxer-registry-*; do
	[ -e "$d" ] && say "test registry $d"
done
if ps -eo args= | grep -E '^[^ ]*docker-registry serve .*/boxer-registry-' | grep -qv grep; then
	say "test registry process (docker-registry serve .../boxer-registry-...)"
fi
# Sandbox networking (executor/network.h): host ends of run veths (aliased
# "boxer:<instance>:<run id>"), network namespaces bound under a Boxer home,
# and the firewall tables of Boxers that are not running (a running Boxer
# keeps its table, empty of runs, until it stops).
for a in /sys/class/net/*/ifalias; do
	case $(cat "$a" 2>/dev/null) in boxer:*) say "veth $(basename "$(dirname "$a")") ($(cat "$a"))" ;; esac
done
netns=$(awk '$9 == "nsfs" && $5 ~ /\/netns\/r_[0-9a-f]+$/ { print $5 }' /proc/self/mountinfo)
for m in $netns; do say "network namespace $m"; done
if command -v nft >/dev/null 2>&1; then
	# Instance ids of the homes of running boxer-executor processes (the
	# owners of the firewall tables).
	running=$(python3 - <<'EOF'
import json, os
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        if not argv[0].endswith(b"boxer-executor"):
            continue
        env = dict(e.split(b"=", 1) for e in open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
                   if b"=" in e)
        conf = argv[argv.index(b"--config") + 1] if b"--config" in argv else env.get(b"BOXER_CONFIG")
        home = os.path.join(env.get(b"HOME", b"/root").decode(), ".boxer")
        if conf:
            home = json.load(open(os.path.join(f"/proc/{pid}/cwd", conf.decode()))).get("home", home)
        print(open(os.path.join(os.path.expanduser(home), "instance-id")).read().strip())
    except (OSError, ValueError, KeyError, IndexError):
        pass
EOF
)
	for t in $(nft list tables inet 2>/dev/null | sed -n 's/^table inet boxer_\([0-9a-f]*\)$/\1/p'); do
		echo "$running" | grep -qx "$t" || say "firewall table inet boxer_$t of a Boxer that is not running"
	done
fi
if [ "$found" -ne 0 ]; then
	echo "check-leftovers: the suite left the above behind" >&2
	exit 1
fi
echo "check-leftovers: nothing left behind"
