"""Deployment claims of the README against the real parts: the systemd
units pass `systemd-analyze verify`, start-up refuses a runsc older than
August 2024 (Debian's own), the platform probe falls back from systrap to
ptrace, and `boxer-image pull` pulls from a registry."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD, BUSYBOX, ROOT, check_prerequisites, need, runsc_path

BASE = int(os.environ.get("BOXER_TEST_PORT", "18080"))
REGISTRY_PORT = BASE + 22


def test_systemd_units_verify(tmp_path):
    """Every unit of contrib/systemd (and the nginx drop-in, on Debian's
    nginx.service) as systemd itself reads them: no error, no warning.
    Paths the units name (/usr/local/sbin/boxer-fcgi, spawn-fcgi) must
    exist, as after `make install`; without an install the built binary
    stands in at the same path inside the unit copies."""
    need(shutil.which("systemd-analyze"), "systemd-analyze is needed (Debian systemd)")
    units = tmp_path / "units"
    (units / "nginx.service.d").mkdir(parents=True)
    shutil.copy("/lib/systemd/system/nginx.service", units)
    for f in (ROOT / "contrib/systemd").iterdir():
        text = f.read_text()
        for name in ("boxer-fcgi", "boxer-executor"):
            installed = f"/usr/local/sbin/{name}"
            if not os.path.exists(installed):
                text = text.replace(installed, str(BUILD / name))
        dest = units / "nginx.service.d" / f.name if f.suffix == ".conf" else units / f.name
        dest.write_text(text)
    checked = sorted(str(p) for p in units.glob("*.service"))
    assert any(p.endswith("/boxer.service") for p in checked), checked
    assert any(p.endswith("/boxer-executor.service") for p in checked), checked
    p = subprocess.run(["systemd-analyze", "verify", *checked], capture_output=True, text=True,
                       env=dict(os.environ, SYSTEMD_UNIT_PATH=f"{units}:"))
    assert p.returncode == 0 and p.stderr.strip() == "" and p.stdout.strip() == "", \
        (p.returncode, p.stdout, p.stderr)
    # The README's figures: the workers' unit as locked down as systemd
    # can tell; the executor's as far as runsc lets it be.
    levels = {}
    for unit in ("boxer.service", "boxer-executor.service"):
        p = subprocess.run(["systemd-analyze", "security", "--offline=true", f"./{unit}"],
                           capture_output=True, text=True, cwd=units)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout)
        assert m, (p.stdout[-500:], p.stderr)
        levels[unit] = float(m.group(1))
    print(levels)
    assert levels["boxer.service"] <= 2.0, levels
    assert levels["boxer-executor.service"] < 9.0, levels


def start_master(tmp_path, config):
    """boxer-executor's start-up (config, runsc checks), which must fail."""
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"home": str(tmp_path / "home"), **config}))
    return subprocess.run([str(BUILD / "boxer-executor"), "--config", str(cfg)],
                          capture_output=True, text=True, timeout=120)


def test_old_runsc_refused(tmp_path):
    """Debian's own runsc (2022) at start-up: refused, saying why and what
    to do."""
    check_prerequisites()
    old = subprocess.run([str(ROOT / "contrib/old-runsc.sh")], capture_output=True, text=True)
    need(old.returncode == 0, f"Debian's runsc package is needed: {old.stderr}")
    path = old.stdout.strip()
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    assert "2022" in version, version
    p = start_master(tmp_path, {"runsc_path": path})
    assert p.returncode != 0
    assert "is older than 20240801" in p.stderr and "contrib/build-runsc.sh" in p.stderr, p.stderr


# systrap cannot be made to fail on demand on a host where it works, so a
# wrapper in front of the real runsc fails every systrap command, as runsc
# does on a host without it (a mock of that one failure; every other
# command, and every run, is the real runsc).
NO_SYSTRAP = """#!/bin/sh
for a in "$@"; do
	case $a in --platform=systrap) echo "systrap: not on this host (test wrapper)" >&2; exit 1 ;; esac
	case $a in --platform=ptrace) [ -n "$NO_PTRACE" ] && { echo "ptrace: no (test wrapper)" >&2; exit 1; } ;; esac
done
exec RUNSC "$@"
"""


def test_platform_probe_falls_back_to_ptrace(tmp_path, make_stack):
    check_prerequisites()
    wrapper = tmp_path / "runsc"
    wrapper.write_text(NO_SYSTRAP.replace("RUNSC", runsc_path()))
    wrapper.chmod(0o755)
    s = make_stack({"runsc_path": str(wrapper)}, workers=1).start()
    status, health, _, _ = s.request("GET", "/health")
    assert status == 200 and health["platform"] == "ptrace", health
    r = s.run(image=BUSYBOX, cmd=["echo", "on ptrace"])
    assert r["stdout"] == "on ptrace\n" and r["exit_code"] == 0
    # With neither working, start-up stops and says so.
    p = subprocess.run([str(BUILD / "boxer-executor"), "--config", str(s.config_path)],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, NO_PTRACE="1"))
    assert p.returncode != 0 and "no runsc platform works here" in p.stderr, p.stderr


def test_boxer_image_pull(tmp_path):
    """`boxer-image pull` from a registry on loopback: the image is stored
    under the registry's digest, and a run uses it without pulling."""
    from registry_fixtures import REGISTRY_BIN, Registry
    check_prerequisites()
    need(os.path.exists(REGISTRY_BIN), "docker-registry is needed (contrib/install-deps.sh)")
    need(shutil.which("skopeo"), "skopeo is needed (contrib/install-deps.sh)")
    layout = subprocess.run([str(ROOT / "contrib/images/build-images.sh"), "busybox"], check=True,
                            capture_output=True, text=True).stdout.split()[1]
    reg = Registry(REGISTRY_PORT)
    try:
        reg.push_layout(layout, "boxer/busybox:pulled")
        ref = f"{reg.host}/boxer/busybox:pulled"
        cfg = tmp_path / "config.json"
        cfg.write_text(json.dumps({"home": str(tmp_path / "home"), "runsc_path": runsc_path(),
                                   "registries": {reg.host: {"insecure": True}}}))
        image = [str(BUILD / "boxer-image"), "--config", str(cfg)]
        p = subprocess.run(image + ["pull", ref], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        digest = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--format",
                                 "{{.Digest}}", f"docker://{ref}"], capture_output=True,
                                text=True, check=True).stdout.strip()
        listing = subprocess.run(image + ["list"], capture_output=True, text=True,
                                 check=True).stdout
        assert ref in listing and digest in listing, (listing, digest)
        # An unknown tag: non-zero, naming the reference; nothing stored.
        p = subprocess.run(image + ["pull", f"{reg.host}/boxer/busybox:absent"],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode != 0 and "busybox:absent" in p.stderr, p.stderr
        assert "busybox:absent" not in subprocess.run(image + ["list"], capture_output=True,
                                                       text=True, check=True).stdout
    finally:
        reg.stop()
        shutil.rmtree(tmp_path / "home", ignore_errors=True)
