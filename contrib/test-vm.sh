#!/bin/sh
# Boxer on a stock cgroup v2 host: boot a Debian 12 guest under qemu, run
# contrib/quickstart.sh and a small smoke suite (contrib/vm/smoke.py) in it,
# and exit non-zero on any failure.  As root.
#
#   contrib/test-vm.sh
#
# The guest is Debian 12 with systemd, booted with Debian's cloud kernel
# (linux-image-cloud-amd64): the unified cgroup v2 hierarchy and nothing
# else, as on every current distribution.  Its root filesystem is made with
# mmdebstrap from the host's apt sources and holds every package
# contrib/install-deps.sh wants, so the quickstart installs nothing: the
# guest has no network card at all (only loopback and the namespaces Boxer
# and the smoke suite make inside it).  The image is cached under
# $BOXER_CACHE/vm/<hash of its inputs>, so a rerun boots at once.
#
# Each boot gets a second disk, made afresh from this checkout (tracked
# files and untracked ones not ignored, as they are now), the cached runsc
# (contrib/build-runsc.sh), the demo images' OCI layouts
# (contrib/images/build-images.sh) and Swagger UI's files
# (contrib/swagger-ui.sh), which the guest finds at the same cache paths.
# Both disks are opened with snapshot=on: nothing the guest writes reaches
# them.  The guest reports on its serial console, which is printed
# here (all of it when the test fails).
#
# Environment:
#   BOXER_VM_ACCEL    tcg (default) or kvm.  Nested KVM hangs on some
#                     hosts (ours), so it is never chosen by itself; TCG
#                     boots the cloud kernel in seconds, gVisor is slow
#                     under it, and the smoke suite is small for that.
#   BOXER_VM_TIMEOUT  seconds before the guest is killed (default 3000)
#   BOXER_VM_MEM      guest memory in MiB (default 3072)
#   BOXER_CACHE       default /var/cache/boxer
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)

CACHE=${BOXER_CACHE:-/var/cache/boxer}
VMCACHE=$CACHE/vm
ACCEL=${BOXER_VM_ACCEL:-tcg}
TIMEOUT=${BOXER_VM_TIMEOUT:-3000}
MEM=${BOXER_VM_MEM:-3072}
SUITE=bookworm
# What the guest needs beyond install-deps.sh's list: an init, a kernel
# with an initramfs that finds the virtio disk, and the tools the guest
# scripts use.
GUEST_PACKAGES='systemd systemd-sysv udev kmod mount initramfs-tools linux-image-cloud-amd64 procps'

log() { echo "test-vm: $*" >&2; }
die() {
	log "$@"
	exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap, mkfs and the guest's runsc need it)"
case $ACCEL in
tcg) accel="-accel tcg,thread=multi" ;;
kvm) accel="-accel kvm" ;;
*) die "BOXER_VM_ACCEL must be tcg or kvm, not '$ACCEL'" ;;
esac

# --- host tools ------------------------------------------------------------

missing=
for p in qemu-system-x86 mmdebstrap e2fsprogs; do
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	log "installing:$missing"
	apt-get update -qq >&2
	# shellcheck disable=SC2086 # the list is split on purpose
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
fi

# One test at a time (two guests under TCG would starve each other on a
# small machine); what a killed one left (its build or work disk) goes.
mkdir -p "$VMCACHE"
exec 9>"$VMCACHE/.lock"
flock 9
rm -rf "$VMCACHE"/.build.* "$VMCACHE"/.run.*

# What the guest will find in its caches, made (or found) here: each would
# need the network there.
runsc=$(contrib/build-runsc.sh)
layouts=$(contrib/images/build-images.sh)
swagger_ui=$(contrib/swagger-ui.sh)

# --- the guest image -------------------------------------------------------

# The host's apt sources, as apt itself reports them (whatever the format
# of its files): mmdebstrap would otherwise use Debian's public default.
sources() {
	# shellcheck disable=SC2016 # $(...) are apt's fields, not the shell's
	apt-get indextargets --format '$(TARGET_OF) $(REPO_URI) $(RELEASE) $(COMPONENT)' \
		'Identifier: Packages' |
		awk -v s="$SUITE" '$1 == "deb" && ($3 == s || $3 == s "-updates" || $3 == s "-security") {
			k = $2 " " $3
			if (!(k in comps)) order[n++] = k
			if (index(" " comps[k] " ", " " $4 " ") == 0) comps[k] = comps[k] " " $4
		}
		END { for (i = 0; i < n; i++) print "deb " order[i] comps[order[i]] }'
}

packages=$(
	contrib/install-deps.sh --list
	echo "$GUEST_PACKAGES" | tr ' ' '\n'
)
packages=$(echo "$packages" | sort -u | tr '\n' ',' | sed 's/,$//')
src=$(sources)
[ -n "$src" ] || die "apt reports no '$SUITE' sources on this host (run apt-get update?)"
# Everything the image is made of; the apt sources only say where from.
key=$(
	{
		echo "suite $SUITE"
		echo "packages $packages"
		echo "mmdebstrap $(dpkg-query -W -f='${Version}' mmdebstrap)"
		cat contrib/vm/boxer-vm-test.service
		sed -n '/^# --- the guest image/,/^# --- end of the guest image/p' "$0"
	} | sha256sum | cut -c1-16
)
image=$VMCACHE/$key

build_image() {
	mkdir -p "$VMCACHE"
	work=$(mktemp -d "$VMCACHE/.build.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	echo "$src" >"$work/sources.list"
	log "building the guest image $key (mmdebstrap; minutes)"
	# No recommends, as install-deps.sh installs.  nginx and the Debian
	# registry service are started by the quickstart's own scripts, not at
	# boot; the serial console carries the test's output, not a login.
	# shellcheck disable=SC2016 # "$1" belongs to the hooks
	if ! mmdebstrap --mode=root --variant=apt --format=directory \
		--aptopt='APT::Install-Recommends "false"' \
		--include="$packages" \
		--customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/apt/apt.conf.d/99mmdebstrap"' \
		--customize-hook='echo boxer-vm >"$1/etc/hostname"' \
		--customize-hook='copy-in contrib/vm/boxer-vm-test.service /etc/systemd/system' \
		--customize-hook='chroot "$1" systemctl enable boxer-vm-test.service' \
		--customize-hook='chroot "$1" systemctl disable nginx.service docker-registry.service' \
		--customize-hook='chroot "$1" systemctl mask serial-getty@ttyS0.service getty@tty1.service' \
		--customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*_Packages' \
		"$SUITE" "$work/root" "$work/sources.list" >"$work/mmdebstrap.log" 2>&1; then
		tail -n 40 "$work/mmdebstrap.log" >&2
		die "mmdebstrap failed (the last 40 lines of its log are above)"
	fi
	cp "$work"/root/boot/vmlinuz-* "$work/vmlinuz"
	cp "$work"/root/boot/initrd.img-* "$work/initrd.img"
	# Room for the build, the registry and Boxer's unpacked images; sparse.
	size=$(($(du -sm "$work/root" | cut -f1) + 4096))
	mkfs.ext4 -q -F -L boxer-root -d "$work/root" "$work/root.img" "${size}M" >/dev/null
	rm -rf "$work/root"
	rm -rf "$image"
	mv "$work" "$image"
	trap - EXIT
	# Older images of other inputs.
	for d in "$VMCACHE"/*; do
		[ "$d" = "$image" ] || rm -rf "$d"
	done
	log "guest image: $image"
}
# --- end of the guest image

t0=$(date +%s)
[ -f "$image/root.img" ] || build_image
t1=$(date +%s)

# --- the work disk of this boot ----------------------------------------------

run=$(mktemp -d "$VMCACHE/.run.XXXXXX")
qemu_pid=
cleanup() {
	[ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
	rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
stage=$run/stage
mkdir -p "$stage/src" "$stage/cache"
git ls-files -z -c -o --exclude-standard |
	tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$stage/src"
# runsc and the layouts, at the paths they have here (hard links: same
# filesystem, no copy); the guest binds $stage/cache at $CACHE.
case $runsc in
"$CACHE"/*) ;;
*) die "runsc is $runsc, outside $CACHE: the guest would not find it (unset PATH's runsc?)" ;;
esac
mkdir -p "$stage/cache$(dirname "${runsc#"$CACHE"}")"
cp -l "$runsc" "$stage/cache${runsc#"$CACHE"}" 2>/dev/null || cp "$runsc" "$stage/cache${runsc#"$CACHE"}"
echo "$layouts" | while read -r _ layout; do
	case $layout in "$CACHE"/*) ;; *) continue ;; esac
	mkdir -p "$stage/cache$(dirname "${layout#"$CACHE"}")"
	cp -al "$layout" "$stage/cache${layout#"$CACHE"}" 2>/dev/null || cp -a "$layout" "$stage/cache${layout#"$CACHE"}"
done
# Swagger UI's files, which contrib/pool.sh serves.
case $swagger_ui in "$CACHE"/npm/*) cp -al "$CACHE/npm" "$stage/cache/npm" ;; esac
echo "$CACHE" >"$stage/cache-path"
echo "$runsc" >"$stage/runsc-path"
size=$(($(du -sm "$stage" | cut -f1) + 1024))
mkfs.ext4 -q -F -L boxer-work -d "$stage" "$run/work.img" "${size}M" >/dev/null
rm -rf "$stage"

# --- boot ------------------------------------------------------------------

console=$run/console.log
log "booting the guest ($ACCEL, ${MEM} MiB, timeout ${TIMEOUT}s)"
# No network card: the guest talks to loopback and its own namespaces only.
# shellcheck disable=SC2086 # $accel is two words
qemu-system-x86_64 $accel -cpu max -smp 2 -m "$MEM" \
	-nodefaults -display none -no-reboot -nic none \
	-kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
	-append "root=/dev/vda rw console=ttyS0 quiet systemd.show_status=0 panic=-1" \
	-drive "file=$image/root.img,format=raw,if=virtio,snapshot=on" \
	-drive "file=$run/work.img,format=raw,if=virtio,snapshot=on" \
	-serial "file:$console" -monitor none &
qemu_pid=$!
waited=0
while kill -0 "$qemu_pid" 2>/dev/null; do
	if [ "$waited" -ge "$TIMEOUT" ]; then
		log "the guest did not finish within ${TIMEOUT}s; killing it"
		kill "$qemu_pid" 2>/dev/null || true
		break
	fi
	sleep 5
	waited=$((waited + 5))
done
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=
t2=$(date +%s)

# --- verdict ---------------------------------------------------------------

fstype=$(sed -n 's/^.*BOXER-VM cgroupfs: \([a-z0-9]*\).*$/\1/p' "$console" | tail -n 1)
rc=$(sed -n 's/^.*BOXER-VM-RESULT rc=\([0-9]*\).*$/\1/p' "$console" | tail -n 1)
fail=
[ "$fstype" = cgroup2fs ] || fail="the guest's /sys/fs/cgroup is '${fstype:-unknown}', not cgroup2fs"
[ "$rc" = 0 ] || fail="${fail:+$fail; }the guest's test ended with rc=${rc:-none (no verdict on the console)}"
if [ -n "$fail" ]; then
	log "the guest's console:"
	cat "$console" >&2
	die "FAILED: $fail"
fi
grep -a 'BOXER-VM' "$console" | sed 's/^.*\(BOXER-VM\)/\1/' >&2
log "guest: stat -fc %T /sys/fs/cgroup = $fstype"
log "image $((t1 - t0))s (0 when cached), boot + quickstart + smoke $((t2 - t1))s"
log "passed"
