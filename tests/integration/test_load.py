"""Load and crashes: many runs answered with nothing leaked, and a restart
under load leaves nothing half-done behind."""

import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import BUSYBOX, ROOT, leftovers

RUNS = int(os.environ.get("BOXER_LOAD_RUNS", "1000"))
SANITIZED = "detect_leaks=1" in os.environ.get("ASAN_OPTIONS", "")
CONCURRENCY = 8


def workers(stack):
    out = subprocess.run(["pgrep", "-P", str(stack.master_pid())], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


def footprint(pid):
    rss = 0
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def hammer(api, n, start=0):
    def one(i):
        status, body, _, raw = api.request("POST", "/run", {
            "image": BUSYBOX, "cmd": ["echo", f"run {i}"]}, timeout=300)
        return i, status, body

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return list(pool.map(one, range(start, start + n)))


def quiet_footprints(pids):
    """Each worker's footprint once its last request is done with: after
    answering, a worker still reports the request to the executor on a
    socket of its own for a moment (slower under a sanitizer)."""
    time.sleep(1)
    return {p: footprint(p) for p in pids}


def test_thousand_runs_nothing_leaks(api):
    # Warm every worker up, then take their footprint.
    hammer(api, 40)
    pids = workers(api)
    before = quiet_footprints(pids)

    t0 = time.monotonic()
    results = hammer(api, RUNS)
    elapsed = time.monotonic() - t0
    bad = [(i, s, b) for i, s, b in results if s != 200 or b["stdout"] != f"run {i}\n"]
    assert not bad, bad[:5]
    print(f"{RUNS} runs at concurrency {CONCURRENCY} in {elapsed:.1f} s")

    assert workers(api) == pids, "a worker died or was replaced under load"
    after = quiet_footprints(pids)
    for p in pids:
        rss0, fds0 = before[p]
        rss1, fds1 = after[p]
        assert fds1 == fds0, f"worker {p} fds {fds0} -> {fds1}"
        # A leak of even a few hundred bytes per run would show over the runs
        # each worker served; allocator noise stays well under this.  Under
        # AddressSanitizer freed memory sits in its quarantine, so RSS says
        # nothing there: LeakSanitizer checks every worker as it exits.
        if not SANITIZED:
            assert rss1 - rss0 < 2048, f"worker {p} RSS {rss0} -> {rss1} kB"
    assert leftovers(api.home, api.runsc_root) == []


RESULT_FIELDS = {"id", "image", "image_digest", "exit_code", "signal", "timed_out", "oom_killed",
                 "stdout", "stderr", "stdout_truncated", "stderr_truncated", "wall_ms", "outputs",
                 "outputs_truncated", "started_at", "finished_at"}


def test_restart_under_load(make_stack):
    s = make_stack(workers=4).start()
    stop = threading.Event()
    lock = threading.Lock()
    answered = []       # (started, status) of every request that got an answer
    refused = []        # connections refused while nginx restarted
    failures = []       # anything else: a hung request, a reset, a bad answer

    def load(k):
        i = 0
        while not stop.is_set() and i < 400:
            started = time.monotonic()
            try:
                status, body, _, raw = s.request(
                    "POST", "/run", {"image": BUSYBOX,
                                     "cmd": ["sh", "-c", f"sleep 0.3; echo {k}-{i}"]},
                    timeout=60)
                with lock:
                    answered.append((started, status))
                    if status == 200 and body["stdout"] != f"{k}-{i}\n":
                        failures.append(("wrong answer", k, i, body))
                    elif status not in (200, 502, 503):
                        failures.append(("status", status, raw[:200]))
            except ConnectionRefusedError:
                # nginx closed its socket while it restarted: refused, not lost.
                with lock:
                    refused.append(started)
                time.sleep(0.05)
            except Exception as e:      # a hung request (timeout) included
                with lock:
                    failures.append((type(e).__name__, str(e), time.monotonic() - started))
            i += 1

    threads = [threading.Thread(target=load, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    time.sleep(3)
    # pool.sh start on a running pool restarts it: nginx and every worker.
    subprocess.run([str(ROOT / "contrib/pool.sh"), "start", "--config", str(s.config_path),
                    "--prefix", str(s.prefix), "--workers", "4",
                    "--bin", str(Path(os.environ.get("BOXER_BUILD_DIR", ROOT)) / "boxer-fcgi")],
                   check=True)
    restarted = time.monotonic()
    time.sleep(4)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a request hung"
    # Every request got an answer (success, or an honest error while the pool
    # restarted) or was refused; none hung or was cut off.
    assert not failures, failures[:5]
    before = [st for started, st in answered if started < restarted - 3 and st == 200]
    after = [st for started, st in answered if started > restarted]
    # Served before the restart, and served again after it, by every client.
    assert len(before) >= 6 and len(after) >= 6 and all(st == 200 for st in after), \
        (len(before), after, len(refused))
    status, body, _, _ = s.request("GET", "/health")
    assert status == 200
    assert s.run(image=BUSYBOX, cmd=["echo", "after"])["stdout"] == "after\n"
    # No half-written image or run state: the images are whole, every run
    # record is complete (its result parses, has every field, names its
    # own run, and its outputs are there), no staging record is left, and
    # nothing of any run is left once the load is over.
    listing = subprocess.run([str(Path(os.environ.get("BOXER_BUILD_DIR", ROOT)) / "boxer-image"),
                              "--config", str(s.config_path), "list"], capture_output=True,
                             text=True, check=True).stdout
    assert "localhost:5000/boxer/busybox:latest" in listing
    tmp = s.home / "images" / "tmp"
    assert not tmp.exists() or [p for p in tmp.iterdir() if not p.name.endswith(".lock")] == []
    # Every entry a record, beside the ledger of their usage.
    records = [r for r in (s.home / "runs" / "records").iterdir() if r.name != ".usage"]
    assert [r.name for r in records if not r.name.startswith("r_")] == []
    assert len(records) >= len(before) + len(after)
    for rec in records:
        result = json.loads((rec / "result.json").read_text())
        assert set(result) == RESULT_FIELDS and result["id"] == rec.name, rec
        assert (rec / "outputs").is_dir(), rec
        status, got, _, _ = s.request("GET", f"/runs/{rec.name}")
        assert status == 200 and got == result
