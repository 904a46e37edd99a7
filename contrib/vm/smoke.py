#!/usr/bin/env python3
"""Smoke suite for a cgroup v2 host, run inside contrib/test-vm.sh's guest
against the quickstart's Boxer on 127.0.0.1:8080.  Small on purpose:
gVisor under qemu's TCG is slow.  Prints one "BOXER-VM ok|FAIL ..." line
per check and exits non-zero on any failure.

Traffic goes to loopback and to a network namespace this script makes
(its address is one of the benchmarking range 198.18.0.0/15, outside
Boxer's default deny ranges, and exists only inside the guest)."""

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

API = "http://127.0.0.1:8080"
PYTHON = "localhost:5000/boxer/python:3.11"
BUSYBOX = "localhost:5000/boxer/busybox:latest"
CG = Path("/sys/fs/cgroup")
NS, VETH = "bxsmoke", "bxsmokeh"
OUTSIDE, HOST_END, PORT = "198.18.7.1", "198.18.7.254", 8099
failures = []


def say(msg):
    print(f"BOXER-VM {msg}", flush=True)


def call(method, path, body=None, timeout=600):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(API + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=timeout) as r:
        return json.loads(r.read())


def run(cmd, image=PYTHON, **kw):
    return call("POST", "/run", {"image": image, "cmd": cmd, **kw})


def check(name, fn):
    t0 = time.monotonic()
    try:
        detail = fn()
        say(f"ok   {name} ({time.monotonic() - t0:.1f}s){': ' + detail if detail else ''}")
    except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
        failures.append(name)
        say(f"FAIL {name} ({time.monotonic() - t0:.1f}s): {type(e).__name__}: {e}")


def run_cgroups():
    """Run cgroups (runs/boxer-*) anywhere under the hierarchy.  Cgroups
    come and go while this looks: one removed under the walk is skipped,
    not fatal (pathlib's recursive glob raises), and runs are not entered."""
    found = []
    for top, dirs, _ in os.walk(CG, onerror=lambda e: None):
        if os.path.basename(top) == "runs":
            found += [Path(top) / d for d in dirs if d.startswith("boxer-")]
            dirs[:] = []
    return found


def health():
    h = call("GET", "/health")
    assert h["cgroup"] == "v2", h
    # The executor lives in the leaf of its delegated cgroup, runs beside it.
    pid = Path("/run/boxer/boxer-executor.pid").read_text().split()[0]
    own = Path(f"/proc/{pid}/cgroup").read_text().strip()
    assert own.startswith("0::/") and own.endswith("/service"), own
    base = CG / own[4:].rsplit("/", 1)[0]
    assert (base / "runs").is_dir(), base
    ctl = (base / "runs" / "cgroup.subtree_control").read_text().split()
    assert {"memory", "cpu", "pids"} <= set(ctl), ctl
    return f"{h}; executor in {own[3:]}"


def hello():
    r = run(["python3", "-c", "print('hello world')"])
    assert r["exit_code"] == 0 and r["stdout"] == "hello world\n", r
    assert not r["oom_killed"] and not r["timed_out"], r
    return f"wall {r['wall_ms']} ms"


def oom():
    r = run(["python3", "-c", "b = bytearray(400 << 20); print(len(b))"],
            limits={"memory_mb": 128, "wall_clock_secs": 120})
    assert r["oom_killed"] is True, r
    assert r["exit_code"] != 0 and r["stdout"] == "", r
    return f"exit {r['exit_code']}"


CPU_WORK = """
import time
end = time.monotonic() + 4
n = 0
while time.monotonic() < end:
    n += 1
print(n)
"""


def cpu():
    # Not less than a quarter of a core: gVisor's own start-up is CPU-bound,
    # and under TCG a tenth of a core does not boot it within minutes.
    full = run(["python3", "-c", CPU_WORK], limits={"cpu_cores": 1, "wall_clock_secs": 300})
    slow = run(["python3", "-c", CPU_WORK], limits={"cpu_cores": 0.25, "wall_clock_secs": 300})
    assert full["exit_code"] == 0 and slow["exit_code"] == 0, (full, slow)
    a, b = int(full["stdout"]), int(slow["stdout"])
    # A quarter of a core does well under two thirds of the work of a whole one.
    assert b < a * 0.6, f"{b} loops at 0.25 core against {a} at 1 core"
    return f"{b} loops at 0.25 core, {a} at 1 core ({b / a:.2f})"


FORKS = """
import os, sys
n = 0
try:
    for _ in range(64):
        if os.fork() == 0:
            import time; time.sleep(5); os._exit(0)
        n += 1
except OSError as e:
    print(n, e.errno)
    sys.exit(0)
print(n, 0)
"""


def pids():
    r = run(["python3", "-c", FORKS], limits={"pids_limit": 8, "wall_clock_secs": 120})
    assert r["exit_code"] == 0, r
    n, errno = map(int, r["stdout"].split())
    assert errno == 11 and n < 8, r   # EAGAIN at the limit
    return f"fork failed with EAGAIN after {n} children"


def timeout_and_files():
    """A wall-clock timeout; while the run sleeps, its cgroup has the v2
    limits Boxer wrote, under the delegated subtree."""
    seen = {}

    def watch():
        # Until the sandbox has joined the run's cgroup and its program
        # runs.  Other cgroups are about: the pool's sandboxes, the last
        # check's run going after its answer, this run's boot (which has
        # max_limits' CPU until the program starts); the run's is the one
        # with the limits it asked for, and without them none is taken.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not seen.get("procs"):
            for d in run_cgroups():
                try:
                    now = {f: (d / f).read_text().strip() for f in
                           ("memory.max", "memory.swap.max", "cpu.max", "pids.max",
                            "memory.oom.group")
                           if (d / f).exists()}
                    now["procs"] = len((d / "cgroup.procs").read_text().split())
                except OSError:
                    continue
                if (now["procs"] and now.get("memory.max") == str(200 << 20)
                        and now.get("cpu.max") == "50000 100000"):
                    seen.update(now)
                    break
            time.sleep(0.2)

    t = threading.Thread(target=watch)
    t.start()
    r = run(["sleep", "300"], image=BUSYBOX,
            limits={"wall_clock_secs": 8, "memory_mb": 200, "cpu_cores": 0.5, "pids_limit": 20})
    t.join()
    assert r["timed_out"] is True and r["exit_code"] == 137, r
    assert seen.get("memory.max") == str(200 << 20), seen
    assert seen.get("memory.swap.max") in ("0", None), seen
    assert seen.get("cpu.max") == "50000 100000", seen
    assert seen.get("pids.max") == str(20 + 512), seen
    assert seen.get("procs", 0) > 0, seen
    return f"timed out after {r['wall_ms']} ms; cgroup {seen}"


SERVER = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = b"hello from the test namespace\n"
        self.send_response(200); self.send_header("Content-Length", str(len(b)))
        self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
http.server.HTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"""


def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def sandbox_network():
    ip("link", "del", VETH, check=False)
    ip("netns", "del", NS, check=False)
    server = None
    try:
        ip("netns", "add", NS)
        ip("link", "add", VETH, "type", "veth", "peer", "name", "eth0", "netns", NS)
        ip("addr", "add", f"{HOST_END}/24", "dev", VETH)
        ip("link", "set", VETH, "up")
        ip("-n", NS, "addr", "add", f"{OUTSIDE}/24", "dev", "eth0")
        ip("-n", NS, "link", "set", "eth0", "up")
        ip("-n", NS, "link", "set", "lo", "up")
        ip("-n", NS, "route", "add", "default", "via", HOST_END)
        server = subprocess.Popen(["ip", "netns", "exec", NS, "python3", "-c", SERVER, str(PORT)])
        time.sleep(1)
        r = run(["python3", "-c",
                 f"import urllib.request; print(urllib.request.urlopen("
                 f"'http://{OUTSIDE}:{PORT}/', timeout=20).read().decode(), end='')"],
                network="sandbox", limits={"wall_clock_secs": 120})
        assert r["exit_code"] == 0 and r["stdout"] == "hello from the test namespace\n", r
        return "reached the test's namespace through the run's veth"
    finally:
        if server:
            server.terminate()
            server.wait(timeout=10)
        ip("link", "del", VETH, check=False)
        ip("netns", "del", NS, check=False)


def leftovers():
    time.sleep(1)
    left = run_cgroups()
    assert not left, left
    return "no run cgroup under /sys/fs/cgroup"


def main():
    check("health reports cgroup v2; the pool sits in its delegated leaf", health)
    check("hello world", hello)
    check("memory limit: oom_killed", oom)
    check("cpu limit: work done at 0.25 core against 1 core", cpu)
    check("pids_limit", pids)
    check("wall-clock timeout; the run's cgroup v2 files", timeout_and_files)
    check("sandbox network to a namespace of the test", sandbox_network)
    check("nothing left under /sys/fs/cgroup", leftovers)
    say(f"smoke: {8 - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
