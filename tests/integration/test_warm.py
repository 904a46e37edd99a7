"""Warm sandboxes through the real stack: the pool fills once a run has
named its image's digest, a run takes a booted sandbox and never shares it,
the pool refills after a burst, a tag that moves drains the old digest's
sandboxes, a broken boxer-init leaves runs on the cold path, and a killed
executor with a full pool leaves nothing behind.

The run behaviours themselves (timeouts, OOM, signals, stdin, files,
outputs, truncation...) are test_run.py and test_files.py run again with
BOXER_TEST_WARM=1 (contrib/test.sh does), every run in a warm sandbox.

Ports: BOXER_TEST_PORT+40 .. +48."""

import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (BUILD, BUSYBOX, PYTHON, ROOT, Stack, check_prerequisites, wait_no_leftovers,
                      wait_warm, warm_config)

BASE = int(os.environ.get("BOXER_TEST_PORT", "18080"))
MOVING = "localhost:5000/boxer/moving:1"


def metric(s, name):
    """One sample of /metrics, by its name and labels as written."""
    _, _, _, raw = s.request("GET", "/metrics")
    m = re.search(rf"^{re.escape(name)} (\S+)$", raw.decode(), re.M)
    assert m, f"no {name} in /metrics"
    return float(m.group(1))


def warm_runs(s):
    return int(metric(s, "boxer_warm_runs_total"))


def boots(s):
    """The run phase "boot" (count, sum) and the pool's boots (count)."""
    return (metric(s, 'boxer_run_phase_seconds_count{phase="boot"}'),
            metric(s, 'boxer_run_phase_seconds_sum{phase="boot"}'),
            metric(s, "boxer_warm_boot_seconds_count"))


def pools(s):
    status, body, _, _ = s.request("GET", "/health")
    assert status == 200
    return body["warm_pool"]


def bundles_digests(s, timeout=15):
    """The image digest (its rootfs directory) of every warm sandbox, once
    the sandboxes are the pool's ready ones: a cold run's own goes just
    after its answer."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for cfg in (s.home / "runs" / "active").glob("r_*/config.json"):
            try:
                root = json.loads(cfg.read_text())["root"]["path"]
            except (OSError, ValueError):
                continue        # removed meanwhile
            found.append(Path(root).parent.name)
        if len(found) == sum(p["ready"] for p in pools(s)) or time.monotonic() > deadline:
            return sorted(found)
        time.sleep(0.1)


@pytest.fixture
def stacks():
    check_prerequisites()
    made = []

    def make(port_offset, config):
        s = Stack(BASE + port_offset, config)
        made.append(s)
        return s.start()

    yield make
    left = [x for s in made for x in s.destroy()]
    assert not left, f"left behind: {left}"


def test_pool_fills_serves_and_never_reuses(stacks):
    s = stacks(40, warm_config(PYTHON))
    # Nothing tells the executor the digest before a run does.
    assert pools(s) == [{"image": PYTHON, "network": "none", "size": 2, "ready": 0}]
    assert s.run(image=PYTHON, cmd=["true"])["exit_code"] == 0
    assert wait_warm(s) == [{"image": PYTHON, "network": "none", "size": 2, "ready": 2}]

    before = warm_runs(s)
    prog = ("import os\n"
            "print(os.path.exists('/tmp/marker'), os.getuid())\n"
            "open('/tmp/marker', 'w').write('x')\n")
    for _ in range(5):
        wait_warm(s)
        r = s.run(image=PYTHON, cmd=["python3", "-c", prog])
        # A sandbox serves one run: no run sees another's marker.
        assert r["exit_code"] == 0 and r["stdout"] == "False 65534\n", r
    assert warm_runs(s) - before == 5
    # Only the pool is left once it has refilled.
    wait_warm(s)
    assert len(bundles_digests(s)) == 2


def test_refill_after_burst(stacks):
    s = stacks(41, warm_config(PYTHON))
    s.run(image=PYTHON, cmd=["true"])
    wait_warm(s)
    # The first run found the pool empty: a miss.
    assert metric(s, "boxer_warm_misses_total") == 1
    before = warm_runs(s)
    results = []

    def one(i):
        results.append(s.run(image=PYTHON, cmd=["python3", "-c", f"print({i})"]))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(r["stdout"] for r in results) == [f"{i}\n" for i in range(6)]
    # Two (or more, if a refill was quick) took warm sandboxes, the rest
    # went cold, each a miss; the pool is whole again.
    hits = warm_runs(s) - before
    assert hits >= 2 and metric(s, "boxer_warm_misses_total") - 1 == 6 - hits
    assert wait_warm(s)[0]["ready"] == 2
    assert len(bundles_digests(s)) == 2


def test_refill_yields_to_the_run_for_a_while(stacks):
    """The replacement of a taken sandbox does not boot beside the run that
    took it (its CPU would slow that run), but a run going on past the
    wait (a second) does not keep the pool short."""
    s = stacks(47, warm_config(PYTHON, size=1))
    s.run(image=PYTHON, cmd=["true"])
    wait_warm(s)
    before = warm_runs(s)
    result = {}
    t = threading.Thread(target=lambda: result.update(s.run(image=PYTHON, cmd=["sleep", "5"])))
    t.start()
    try:
        deadline = time.monotonic() + 10
        while warm_runs(s) == before:
            assert time.monotonic() < deadline, "the run did not take the warm sandbox"
            time.sleep(0.02)
        taken = time.monotonic()
        # No boot began when the sandbox was taken, nor just after.
        assert metric(s, "boxer_warm_sandboxes") == 0
        time.sleep(0.5)
        assert metric(s, "boxer_warm_sandboxes") == 0
        # A second after, the refill goes ahead, the run still going.
        while metric(s, "boxer_warm_sandboxes") == 0:
            assert time.monotonic() < taken + 3.5, "the pool stayed short during a long run"
            time.sleep(0.05)
        assert t.is_alive()
    finally:
        t.join(30)
    assert result["exit_code"] == 0 and result["wall_ms"] >= 5000
    assert wait_warm(s)[0]["ready"] == 1


def test_refill_starts_once_the_program_is_over(stacks):
    """Back-to-back runs: the refill waits for the program of the run that
    took the sandbox, not for that run's clean-up after its answer, nor
    for the second the next run might take."""
    s = stacks(48, warm_config(PYTHON, size=1))
    s.run(image=PYTHON, cmd=["true"])
    wait_warm(s)
    before = warm_runs(s)
    assert s.run(image=PYTHON, cmd=["true"])["exit_code"] == 0
    answered = time.monotonic()
    assert warm_runs(s) == before + 1
    result = {}
    t = threading.Thread(target=lambda: result.update(s.run(image=PYTHON, cmd=["sleep", "3"])))
    t.start()
    try:
        seen = metric(s, "boxer_warm_sandboxes")
        while seen == 0 and time.monotonic() < answered + 0.6:
            time.sleep(0.02)
            seen = metric(s, "boxer_warm_sandboxes")
        # Booting (or booted) while the next run goes, well before the
        # second a refill may wait.
        assert seen == 1, "no refill under way 0.6 s after the run's answer"
    finally:
        t.join(30)
    assert result["exit_code"] == 0


def test_tag_moved_drains_the_pool(stacks):
    s = stacks(42, warm_config(MOVING))
    layouts = subprocess.run([str(ROOT / "contrib/images/build-images.sh"), "busybox"],
                             check=True, capture_output=True, text=True).stdout.split()
    load = [str(BUILD / "boxer-image"), "--config", str(s.config_path), "load"]
    subprocess.run(load + [layouts[1], MOVING], check=True, capture_output=True)
    first = s.run(image=MOVING, cmd=["busybox", "true"])["image_digest"]
    wait_warm(s)
    assert bundles_digests(s) == [first[7:]] * 2

    # The tag now names the busybox-only image of the suite (another digest).
    subprocess.run(load + [str(s.tmp / "nocmd"), MOVING], check=True, capture_output=True)
    second = s.run(image=MOVING, cmd=["busybox", "true"])["image_digest"]
    assert second != first
    wait_warm(s)
    assert bundles_digests(s) == [second[7:]] * 2
    before = warm_runs(s)
    r = s.run(image=MOVING, cmd=["busybox", "echo", "new"])
    assert r["stdout"] == "new\n" and r["image_digest"] == second
    assert warm_runs(s) == before + 1


def test_broken_init_fails_runs_clearly(stacks):
    """Every sandbox starts with boxer-init: a server whose init_path is
    not one answers each run with a server error whose log line names
    boxer-init, and the pool's boots back off; nothing of either stays."""
    s = stacks(43, {**warm_config(BUSYBOX), "init_path": "/bin/true"})
    for _ in range(3):
        status, body, _, raw = s.request("POST", "/run", {"image": BUSYBOX, "cmd": ["true"]})
        assert status == 500 and body["error"]["code"] == "internal", raw[:300]
        # The client hears of a server error; its log, of what to fix.
        request_id = body["error"]["message"].rsplit(" ", 1)[1]
        logs = "".join(p.read_text(errors="replace") for p in s.prefix.glob("*.log"))
        assert any(request_id in line and "error:" in line and "boxer-init" in line
                   for line in logs.splitlines()), (request_id, logs[-3000:])
        time.sleep(0.5)
    assert pools(s)[0]["ready"] == 0
    assert warm_runs(s) == 0
    assert not bundles_digests(s)


def test_executor_killed_with_full_pool(stacks):
    s = stacks(44, warm_config(BUSYBOX, PYTHON))
    s.run(image=BUSYBOX, cmd=["true"])
    s.run(image=PYTHON, cmd=["true"])
    wait_warm(s)
    # The new server sweeps the dead one's sandboxes; its pools are empty
    # until runs name their digests.
    s.kill_executor_server()
    left = wait_no_leftovers(s.home, s.runsc_root, timeout=30)
    assert not left, f"left behind by the killed server: {left}"
    assert s.run(image=BUSYBOX, cmd=["echo", "again"])["stdout"] == "again\n"
    assert s.run(image=PYTHON, cmd=["python3", "-c", "print(1)"])["stdout"] == "1\n"
    wait_warm(s, timeout=60)


def test_limits_files_and_outputs_in_a_warm_sandbox(stacks):
    """The request's own limits bind a sandbox booted with the service's
    maximums; files go in through boxer-init, /output comes back."""
    from test_files import upload
    s = stacks(45, warm_config(PYTHON, size=1))
    s.run(image=PYTHON, cmd=["true"])
    before = warm_runs(s)

    wait_warm(s)
    t0 = time.monotonic()
    r = s.run(image=PYTHON, cmd=["sleep", "60"], limits={"wall_clock_secs": 2})
    assert r["timed_out"] is True and r["exit_code"] == 137 and r["signal"] == 9
    assert 2000 <= r["wall_ms"] < 3500 and time.monotonic() - t0 < 4.5

    wait_warm(s)
    r = s.run(image=PYTHON, cmd=["python3", "-c", "x = bytearray(400 << 20); print('survived')"],
              limits={"memory_mb": 128})
    assert r["oom_killed"] is True and r["exit_code"] == 137, r
    assert "survived" not in r["stdout"]

    wait_warm(s)
    f = upload(s, ("data.txt", b"hello from a file\n"))[0]
    r = s.run(image=PYTHON, stdin="from stdin",
              files=[{"id": f["id"], "path": "/work/in/data.txt"}],
              cmd=["sh", "-c", "cat /work/in/data.txt; cat; echo; "
                               "stat -c '%U %a' /work/in/data.txt; "
                               "echo x >> /work/in/data.txt 2>/dev/null || echo read-only; "
                               "echo out > /output/result.txt"])
    assert r["stdout"] == "hello from a file\nfrom stdin\nroot 444\nread-only\n", r
    assert [o["path"] for o in r["outputs"]] == ["result.txt"]
    status, _, _, raw = s.request("GET", f"/runs/{r['id']}/outputs/result.txt")
    assert status == 200 and raw == b"out\n"
    assert warm_runs(s) - before == 3


def test_batch_takes_a_warm_sandbox(stacks):
    """A batch of the pool's image runs in a warm sandbox (one of its runs
    then finds the marker no earlier run left, and every run its own uid),
    the pool refills, and a batch killed with its executor leaves nothing."""
    s = stacks(46, warm_config(PYTHON))
    # The image's first run starts its pool, so it boots a sandbox itself.
    s.run(image=PYTHON, cmd=["true"])
    wait_warm(s)
    cold_count, cold_took, pool_boots = boots(s)
    assert (cold_count, pool_boots) == (1, 2) and cold_took > 0.05
    before = warm_runs(s)
    runs_ok = metric(s, 'boxer_runs_total{outcome="ok"}')
    status, b, _, raw = s.request("POST", "/batch", {
        "image": PYTHON, "parallelism": 2,
        "runs": [{"cmd": ["python3", "-c", "import os; print(os.getuid(), os.listdir('/tmp'))"]}
                 for _ in range(4)] + [{"cmd": ["sh", "-c", "exit 3"]}]})
    assert status == 200, raw
    assert warm_runs(s) == before + 1
    outs = [r["stdout"].split(" ", 1) for r in b["results"][:4]]
    assert [o[1] for o in outs] == ["[]\n"] * 4
    assert len({o[0] for o in outs}) == 4
    assert wait_warm(s)[0]["ready"] == 2
    # Each run of the batch counts as a run; its sandbox was taken, not
    # booted (a boot phase well under a boot), and the pool booted another.
    assert metric(s, 'boxer_runs_total{outcome="ok"}') == runs_ok + 4
    assert metric(s, 'boxer_runs_total{outcome="exit_nonzero"}') == 1
    count, took, pool_boots = boots(s)
    assert (count, pool_boots) == (2, 3) and took - cold_took < 0.05
    assert metric(s, "boxer_warm_boot_seconds_sum") > 0.05 * 3
    # A batch of an image without a pool boots its sandbox on its path.
    status, b, _, raw = s.request("POST", "/batch", {"image": BUSYBOX,
                                                     "runs": [{"cmd": ["true"]}]})
    assert status == 200 and b["results"][0]["exit_code"] == 0, raw
    count, booted, _ = boots(s)
    assert count == 3 and booted - took > 0.05

    # The executor dies mid-batch: its next server sweeps the sandbox.
    done = {}

    def send():
        done["answer"] = s.request("POST", "/batch", {
            "image": PYTHON, "runs": [{"cmd": ["sleep", "30"]}]})[0]

    t = threading.Thread(target=send)
    t.start()
    time.sleep(2)
    s.kill_executor_server()
    t.join(60)
    assert done["answer"] == 503
    left = wait_no_leftovers(s.home, s.runsc_root, timeout=30)
    assert not left, f"left behind by the killed server: {left}"
