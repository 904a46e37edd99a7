#!/bin/sh
# Inside contrib/test-vm.sh's guest (run by boxer-vm-test.service from the
# work disk mounted at /mnt/work): the quickstart, then the smoke suite.
# Prints "BOXER-VM ..." lines and, last, "BOXER-VM-RESULT rc=N" on the
# console, which the host reads.  The service powers the guest off after.
set -u
work=/mnt/work
say() { echo "BOXER-VM $*"; }

rc=1
main() {
	say "cgroupfs: $(stat -fc %T /sys/fs/cgroup)"
	say "kernel: $(uname -r), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
	cache=$(cat "$work/cache-path")
	runsc=$(cat "$work/runsc-path")
	# The caches at the host's paths: runsc and the demo images' layouts,
	# so neither is built here (both would need the network).
	mkdir -p "$cache"
	mount --bind "$work/cache" "$cache" || return 1
	cd "$work/src" || return 1

	# The quickstart keeps a config it finds: ours adds no DNS servers (the
	# guest has no network but its own), and no warm pool: the smoke suite
	# checks a cold run's cgroup v2 files, and that no cgroup is left.
	mkdir -p /etc/boxer
	cat >/etc/boxer/config.json <<JSON
{
  "home": "/var/lib/boxer",
  "runsc_path": "$runsc",
  "listen_addr": ":8080",
  "dns_servers": [],
  "registries": {"localhost:5000": {"insecure": true}},
  "warm_pool": []
}
JSON
	# As a service would run: in a unit of its own with Delegate=yes (the
	# pool it starts stays in that unit's cgroup when the script ends).
	t0=$(date +%s)
	systemd-run --quiet --scope --unit=boxer-quickstart -p Delegate=yes \
		env BOXER_WORKERS=2 BOXER_POOL_START_TIMEOUT=600 contrib/quickstart.sh || {
		say "quickstart failed"
		tail -n 50 /run/boxer/boxer.log 2>/dev/null
		return 1
	}
	say "quickstart: $(($(date +%s) - t0))s"
	t0=$(date +%s)
	python3 contrib/vm/smoke.py || {
		tail -n 50 /run/boxer/boxer.log 2>/dev/null
		return 1
	}
	say "smoke: $(($(date +%s) - t0))s"
	contrib/pool.sh stop --prefix /run/boxer
	# Nothing of any run is left under /sys/fs/cgroup once the pool is gone.
	left=$(find /sys/fs/cgroup -name 'boxer-*' -path '*/runs/*' 2>/dev/null)
	if [ -n "$left" ]; then
		say "leftover cgroups: $left"
		return 1
	fi
	say "no run cgroups left under /sys/fs/cgroup"
	return 0
}

main 2>&1
rc=$?
sync
echo "BOXER-VM-RESULT rc=$rc"
exit 0
