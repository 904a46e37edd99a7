#!/usr/bin/env python3
"""What Boxer adds to a run: POST /run through nginx and the pool, against
bare `runsc run` of an equivalent bundle and against the same program run
unsandboxed (chroot into the same rootfs), all measured in this invocation.

Usage (as root, with Boxer running, e.g. after contrib/quickstart.sh):
    contrib/bench/run-overhead.py [--url URL] [--config FILE] [-n RUNS]
"""

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from _bench import build_runsc, release_runsc_state, runsc_run, write_bundle

ARGV = ["python3", "-c", "print(42)"]


def timed(fn, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def unsandboxed(rootfs):
    def run():
        out = subprocess.run(["chroot", rootfs, *ARGV], capture_output=True, check=True)
        assert out.stdout == b"42\n"
    return run


def bare_runsc(runsc, rootfs, env, work):
    bundle = write_bundle(work / "bundle", rootfs, env, ARGV)
    state = work / "state"
    count = [0]

    def run():
        count[0] += 1
        out = runsc_run(runsc, state, bundle, f"bench-{os.getpid()}-{count[0]}", check=True)
        assert out.stdout == b"42\n"
    return run, state


def boxer(url, image):
    u = urllib.parse.urlsplit(url)
    body = json.dumps({"image": image, "cmd": ARGV})

    def run():
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
        conn.request("POST", "/run", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        result = json.loads(resp.read())
        conn.close()
        assert resp.status == 200 and result["stdout"] == "42\n", result
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--config", default="/etc/boxer/config.json")
    ap.add_argument("--image", default="localhost:5000/boxer/python:3.11")
    ap.add_argument("-n", type=int, default=20, help="runs per mode (default 20)")
    args = ap.parse_args()

    inspect = subprocess.run(["boxer-image", "--config", args.config, "inspect", args.image],
                             capture_output=True, text=True, check=True)
    image = json.loads(inspect.stdout)
    runsc = build_runsc()

    work = Path(tempfile.mkdtemp(prefix="boxer-bench-"))
    try:
        bare, state = bare_runsc(runsc, image["rootfs"], image["env"], work)
        modes = [("unsandboxed (chroot)", unsandboxed(image["rootfs"])),
                 ("bare runsc run", bare),
                 ("Boxer POST /run", boxer(args.url, args.image))]
        for _, fn in modes:     # warm caches once
            fn()
        results = {name: timed(fn, args.n) for name, fn in modes}
    finally:
        subprocess.run([runsc, f"--root={work / 'state'}", "list"], capture_output=True)
        release_runsc_state(work)
        shutil.rmtree(work, ignore_errors=True)

    print(f"python3 -c 'print(42)', {args.n} sequential runs per mode, ms")
    print(f"{'mode':24} {'p50':>8} {'p90':>8}")
    p50 = {}
    for name, t in results.items():
        p50[name] = statistics.median(t)
        p90 = sorted(t)[int(0.9 * (len(t) - 1))]
        print(f"{name:24} {p50[name]:8.1f} {p90:8.1f}")
    b, r, u = p50["Boxer POST /run"], p50["bare runsc run"], p50["unsandboxed (chroot)"]
    print(f"ratio Boxer / bare runsc run: {b / r:.2f}")
    print(f"ratio bare runsc run / unsandboxed: {r / u:.2f}")
    print(f"ratio Boxer / unsandboxed: {b / u:.2f}")


if __name__ == "__main__":
    sys.exit(main())
