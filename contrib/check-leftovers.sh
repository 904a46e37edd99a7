#!/bin/sh
# Fail if anything of a Boxer run is left on this machine: runsc sandbox
# processes, run cgroups, or test homes.  The integration suite checks each
# test's own home; this is the machine-wide check after the suite.  The idle
# warm sandboxes of a Boxer that is running (quickstart's) are its own.
#
#   check-leftovers.sh --list > before    what is on the machine now
#   check-leftovers.sh --since before     fail on what was not there then
#
# --since lets contrib/test.sh judge the suite by what it left: a run that was
# killed before it could clean up (a machine restarted mid-suite) leaves
# things no later suite made.  Those are named, and do not fail it.
set -eu
mode=check
since=/dev/null
case "${1:-}" in
--list) mode=list ;;
--since) since=$2 ;;
"") ;;
*) echo "usage: check-leftovers.sh [--list | --since FILE]" >&2; exit 2 ;;
esac
scan=$(mktemp "${TMPDIR:-/tmp}/check-leftovers.XXXXXX")
trap 'rm -f "$scan"' EXIT
say() { echo "$*" >>"$scan"; }

# The Boxers running now (quickstart's, say): "instance-id home" per line.
# Their warm sandboxes are theirs, not the suite's leftovers.
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
        home = os.path.realpath(os.path.expanduser(home))
        print(open(os.path.join(home, "instance-id")).read().strip(), home)
    except (OSError, ValueError, KeyError, IndexError):
        pass
EOF
)
running=$(echo "$running" | sort -u)

# Whether run id is a sandbox of a running Boxer's warm pool (or batch):
# its bundle holds boxer-init's log, in the home of that Boxer.
pool_sandbox() { # home id
	[ -f "$1/runs/active/$2/init.log" ]
}

ps -eo pid=,args= | grep -E 'runsc-(sandbox|gofer)|runsc .*(boot|gofer)' | grep -v grep |
	while read -r pid args; do
		root=$(echo "$args" | sed -n 's/.*--root=\([^ ]*\)\/runsc .*/\1/p')
		id=$(echo "$args" | sed -n 's/.*\/runs\/active\/\(r_[0-9a-f]*\).*/\1/p')
		if [ -n "$root" ] && [ -n "$id" ] && echo "$running" | grep -q " $root\$" &&
			pool_sandbox "$root" "$id"; then
			continue
		fi
		say "process $pid $args"
	done

# A cgroup boxer-<instance>-<run id> of a running Boxer's pool sandbox.
pool_cgroup() { # name
	name=${1#boxer-}
	echo "$running" | while read -r instance home; do
		case $name in "$instance"-r_*) pool_sandbox "$home" "${name#"$instance"-}" && echo yes ;; esac
	done | grep -q yes
}
for d in /sys/fs/cgroup/*/boxer-*; do
	[ -e "$d" ] && ! pool_cgroup "$(basename "$d")" && say "cgroup $d"
done
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
	for d in $(find /sys/fs/cgroup -type d -path '*/runs/boxer-*' -prune 2>/dev/null); do
		pool_cgroup "$(basename "$d")" || say "cgroup $d"
	done
fi
for d in "${TMPDIR:-/tmp}"/boxer-it-*; do
	[ -e "$d" ] && say "test directory $d"
done
for d in "${TMPDIR:-/tmp}"/boxer-registry-*; do
	[ -e "$d" ] && say "test registry $d"
done
# What tests and tools make with mkdtemp/mkstemp (the unit tests' check_*,
# an earlier scan of this script's that was killed) and pytest's own base.
for d in "${TMPDIR:-/tmp}"/tmp* "${TMPDIR:-/tmp}"/pytest-of-* "${TMPDIR:-/tmp}"/boxer-* \
	"${TMPDIR:-/tmp}"/check_* "${TMPDIR:-/tmp}"/check-leftovers.*; do
	case $d in */boxer-it-* | */boxer-registry-* | "$scan") continue ;; esac
	[ -e "$d" ] && say "temporary file $d"
done
if ps -eo args= | grep -E '^[^ ]*docker-registry serve .*/boxer-registry-' | grep -qv grep; then
	say "test registry process (docker-registry serve .../boxer-registry-...)"
fi
for a in /sys/class/net/*/ifalias; do
	case $(cat "$a" 2>/dev/null) in boxer:*) say "veth $(basename "$(dirname "$a")") ($(cat "$a"))" ;; esac
done
netns=$(awk '$9 == "nsfs" && $5 ~ /\/netns\/r_[0-9a-f]+$/ { print $5 }' /proc/self/mountinfo)
for m in $netns; do say "network namespace $m"; done
if command -v nft >/dev/null 2>&1; then
	for t in $(nft list tables inet 2>/dev/null | sed -n 's/^table inet boxer_\([0-9a-f]*\)$/\1/p'); do
		echo "$running" | grep -q "^$t " || say "firewall table inet boxer_$t of a Boxer that is not running"
	done
fi
if [ "$mode" = list ]; then
	cat "$scan"
	exit 0
fi
found=0
while IFS= read -r item; do
	if grep -qxF -- "$item" "$since"; then
		echo "check-leftovers: already there before the suite began: $item" >&2
	else
		echo "leftover: $item" >&2
		found=1
	fi
done <"$scan"
if [ "$found" -ne 0 ]; then
	echo "check-leftovers: the suite left the above behind" >&2
	exit 1
fi
echo "check-leftovers: nothing left behind"
