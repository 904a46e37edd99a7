"""Disk quotas through nginx -> FastCGI -> runsc, on a stack whose home is a
small tmpfs of its own: files_budget_bytes and runs_budget_bytes (expired
entries make room first, then 503 busy with Retry-After), and the min_free_bytes floor below
which uploads, runs and pulls are refused before they start.

Ports: BOXER_TEST_PORT+20 (this module's stacks); nothing else listens."""

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, BUSYBOX, ROOT, Stack, check_prerequisites, need, wait_no_leftovers
from test_files import multipart

BASE = int(os.environ.get("BOXER_TEST_PORT", "18080"))
PORT = BASE + 20
UNUSED_PORT = BASE + 29         # configured as a registry; nothing listens
TMPFS_MB = 96


@pytest.fixture
def small_home():
    """make(config) -> a started stack with busybox loaded, its home a
    TMPFS_MB tmpfs; torn down (and checked for leftovers) after the test."""
    check_prerequisites()
    need(subprocess.run(["which", "mount"], capture_output=True).returncode == 0, "mount")
    made = []

    def make(config):
        cfg = {"registries": {f"127.0.0.1:{UNUSED_PORT}": {"insecure": True}},
               "registry_timeout_secs": 2, "pull_policy": "if-not-present", "min_free_bytes": 0}
        cfg.update(config)
        s = Stack(PORT + len(made), cfg, workers=2, images=False)
        s.home.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m,mode=0700", "tmpfs",
                        str(s.home)], check=True)
        made.append(s)
        out = subprocess.run([str(ROOT / "contrib/images/build-images.sh"), "busybox"],
                             check=True, capture_output=True, text=True).stdout.split()
        subprocess.run([str(BUILD / "boxer-image"), "--config", str(s.config_path), "load",
                        out[1], BUSYBOX], check=True, capture_output=True)
        return s.start()

    yield make
    left = []
    for s in made:
        s.stop()
        left += wait_no_leftovers(s.home, s.runsc_root)
        subprocess.run(["umount", str(s.home)], check=True)
        subprocess.run(["rm", "-rf", str(s.tmp)], check=True)
    assert not left, f"left behind: {left}"


def upload(s, data):
    body, ctype = multipart([("file", "f.bin", data)])
    return s.request("POST", "/files", body, {"Content-Type": ctype})


def error_of(answer):
    status, body, resp, raw = answer
    assert body is not None and "error" in body, raw[:300]
    if status == 503:
        # Room comes back when the sweep removes expired entries.
        assert resp.getheader("Retry-After") == "60", resp.getheaders()
    return status, body["error"]["code"], body["error"]["message"]


def test_files_budget(small_home):
    s = small_home({"files_budget_bytes": 1024 * 1024, "files_ttl_secs": 3})
    status, _, _, raw = upload(s, os.urandom(600 * 1024))
    assert status == 201, raw
    # 600 KiB more does not fit the 1 MiB budget: refused before a byte is kept.
    before = sorted(p.name for p in (s.home / "files").iterdir())
    status, code, msg = error_of(upload(s, os.urandom(600 * 1024)))
    assert (status, code) == (503, "busy"), msg
    assert "files_budget_bytes" in msg
    assert sorted(p.name for p in (s.home / "files").iterdir()) == before
    # Expired uploads make room.
    time.sleep(3.5)
    status, _, _, raw = upload(s, os.urandom(600 * 1024))
    assert status == 201, raw


def test_runs_budget(small_home):
    s = small_home({"runs_budget_bytes": 300 * 1024, "runs_ttl_secs": 4,
                    "outputs_limit_bytes": 65536, "output_limit_bytes": 65536})
    script = "head -c 60000 /dev/zero > /output/blob; echo done"
    first = s.run(image=BUSYBOX, cmd=["sh", "-c", script])
    assert first["stdout"] == "done\n"
    s.run(image=BUSYBOX, cmd=["sh", "-c", script])
    # Two records of ~64 KiB, and room needed for what a run may keep
    # (its outputs and both streams, 192 KiB, and 16 KiB for the rest of
    # its record): the third is refused before it starts.
    status, code, msg = error_of(s.request("POST", "/run",
                                           {"image": BUSYBOX, "cmd": ["sh", "-c", script]}))
    assert (status, code) == (503, "busy"), msg
    assert "runs_budget_bytes" in msg
    # The records kept are still served.
    status, body, _, raw = s.request("GET", f"/runs/{first['id']}")
    assert status == 200, raw
    time.sleep(4.5)
    assert s.run(image=BUSYBOX, cmd=["sh", "-c", script])["stdout"] == "done\n"


def test_a_record_counts_what_it_took(small_home):
    """A run is charged what its limits let it keep, but JSON writes each
    control byte it printed in six: once written, its record counts for
    what it took, and the budget holds from then on."""
    s = small_home({"runs_budget_bytes": 600 * 1024, "runs_ttl_secs": 4,
                    "outputs_limit_bytes": 65536, "output_limit_bytes": 65536})
    ones = "head -c 65536 /dev/zero | tr '\\000' '\\001'"
    r = s.run(image=BUSYBOX, cmd=["sh", "-c", f"{ones}; {ones} >&2"])
    assert r["stdout"] == r["stderr"] == "\x01" * 65536, r["stdout"][:20]
    assert not r["stdout_truncated"] and not r["stderr_truncated"]
    # About 770 KiB on disk, and 208 KiB charged for the next run: past
    # the budget.  Charged only as much as the first, the two would fit.
    status, code, msg = error_of(s.request("POST", "/run",
                                           {"image": BUSYBOX, "cmd": ["true"]}))
    assert (status, code) == (503, "busy"), msg
    assert "runs_budget_bytes" in msg
    time.sleep(4.5)
    assert s.run(image=BUSYBOX, cmd=["echo", "ok"])["stdout"] == "ok\n"


def test_free_space_floor(small_home):
    s = small_home({"min_free_bytes": 48 * 1024 * 1024})
    assert s.run(image=BUSYBOX, cmd=["echo", "ok"])["stdout"] == "ok\n"
    # Something else fills the disk past the floor.
    filler = s.home / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * (TMPFS_MB - 40) * 1024 * 1024)
    try:
        cases = [("POST", "/run", {"image": BUSYBOX, "cmd": ["true"]}, "runs"),
                 ("POST", "/images/pull", {"image": f"127.0.0.1:{UNUSED_PORT}/x:y"}, "pulls")]
        for method, path, body, what in cases:
            status, code, msg = error_of(s.request(method, path, body))
            assert (status, code) == (503, "busy"), msg
            assert "min_free_bytes" in msg and what in msg, msg
        status, code, msg = error_of(upload(s, b"x" * 1000))
        assert (status, code) == (503, "busy"), msg
        assert "uploads" in msg
    finally:
        filler.unlink()
    # Space again: all of it works (the pull reaches the registry, which is
    # not there).
    assert s.run(image=BUSYBOX, cmd=["echo", "ok"])["stdout"] == "ok\n"
    status, _, _, raw = upload(s, b"x" * 1000)
    assert status == 201, raw
    status, code, msg = error_of(s.request("POST", "/images/pull",
                                           {"image": f"127.0.0.1:{UNUSED_PORT}/x:y"}))
    assert (status, code) == (502, "registry_error"), msg
