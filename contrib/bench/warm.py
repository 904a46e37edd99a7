#!/usr/bin/env python3
"""Warm sandboxes against a cold boot, in one invocation: POST /run of
`python3 -c pass` through a stack whose warm pool holds the python image,
through a stack with no pool (the cold path) for the python and the busybox
image, and bare `runsc run` of each image's rootfs as the baseline; prints
p50s and the ratios the warm pool issue asks for.

Usage (as root):
    contrib/bench/warm.py --start-stack 18520 [-n RUNS] [--pause SECONDS]

--start-stack PORT runs two private nginx + pool stacks with the test images
(the integration tests' Stack) on PORT+1 and PORT+2 (warm and cold) and
removes them afterwards.  Every request, of every mode, comes one at a
time after a pause, as an evaluation's arrivals would: the pool has
refilled, and a cold run's sandbox removal (after its answer) is done
before the next mode's request.
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
from pathlib import Path

from _bench import integration, release_runsc_state, runsc_run, write_bundle

PYTHON = "localhost:5000/boxer/python:3.11"
BUSYBOX = "localhost:5000/boxer/busybox:latest"
PROGRAMS = {PYTHON: ["python3", "-c", "pass"], BUSYBOX: ["true"]}


def post_run(port, image):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.perf_counter()
    conn.request("POST", "/run", json.dumps({"image": image, "cmd": PROGRAMS[image]}),
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    ms = (time.perf_counter() - t0) * 1000
    conn.close()
    assert resp.status == 200 and body["exit_code"] == 0, body
    return ms


def bare_runner(runsc, rootfs, env, argv, work):
    """A function doing one `runsc run` of a bundle, as Boxer's flags make
    them, and returning its milliseconds."""
    bundle = write_bundle(work / f"bundle-{len(list(work.glob('bundle-*')))}", rootfs, env, argv)
    count = [0]

    def run():
        count[0] += 1
        t0 = time.perf_counter()
        runsc_run(runsc, work / "state", bundle,
                  f"bench-{os.getpid()}-{bundle.name}-{count[0]}", check=True)
        return (time.perf_counter() - t0) * 1000
    return run


def wait_ready(stack, want, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, body, _, _ = stack.request("GET", "/health")
        if body and all(p["ready"] >= want for p in body.get("warm_pool", [])):
            return
        time.sleep(0.1)
    raise RuntimeError("the warm pool did not fill")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--start-stack", type=int, required=True, metavar="PORT")
    ap.add_argument("-n", type=int, default=20, help="runs per mode (default 20)")
    ap.add_argument("--pause", type=float, default=0.5,
                    help="seconds before each request (default 0.5)")
    args = ap.parse_args()

    it = integration()
    runsc = it.runsc_path()
    stacks = []
    work = Path(tempfile.mkdtemp(prefix="boxer-bench-"))
    try:
        warm = it.Stack(args.start_stack + 1, {
            "warm_pool": [{"image": PYTHON, "network": "none", "size": 2}],
            "init_path": str(it.BUILD / "boxer-init")}).start()
        stacks.append(warm)
        cold = it.Stack(args.start_stack + 2).start()
        stacks.append(cold)
        images = {}
        for ref in (PYTHON, BUSYBOX):
            out = subprocess.run([str(it.BUILD / "boxer-image"), "--config", str(cold.config_path),
                                  "inspect", ref], capture_output=True, text=True, check=True)
            images[ref] = json.loads(out.stdout)

        post_run(warm.port, PYTHON)          # teaches the pool its digest
        wait_ready(warm, 2)
        for ref in (PYTHON, BUSYBOX):        # caches warm once
            post_run(cold.port, ref)

        # Modes interleaved, one request of each per round: a burst of other
        # work on the machine then weighs on every mode alike.
        bare = {ref: bare_runner(runsc, images[ref]["rootfs"], images[ref]["env"], PROGRAMS[ref],
                                 work) for ref in (PYTHON, BUSYBOX)}
        modes = (("bare runsc run, python", bare[PYTHON]),
                 ("warm POST /run, python", lambda: post_run(warm.port, PYTHON)),
                 ("cold POST /run, python", lambda: post_run(cold.port, PYTHON)),
                 ("bare runsc run, busybox", bare[BUSYBOX]),
                 ("cold POST /run, busybox", lambda: post_run(cold.port, BUSYBOX)))
        results = {name: [] for name, _ in modes}
        # A pause before each request, as between an evaluation's arrivals:
        # what the one before left to do after its answer (a cold run's
        # sandbox removal, the pool's refill) is done, and weighs on no
        # mode but its own.
        for _ in range(args.n):
            for name, measure in modes:
                time.sleep(args.pause)
                results[name].append(measure())
    finally:
        release_runsc_state(work)
        shutil.rmtree(work, ignore_errors=True)
        for s in stacks:
            left = s.destroy()
            if left:
                print(f"left behind: {left}", file=sys.stderr)
                return 1

    print(f"{args.n} rounds of one run per mode, interleaved, {args.pause} s before each, ms")
    print(f"{'mode':28} {'p50':>8} {'p90':>8}")
    p50 = {}
    for name, t in results.items():
        p50[name] = statistics.median(t)
        print(f"{name:28} {p50[name]:8.1f} {sorted(t)[int(0.9 * (len(t) - 1))]:8.1f}")
    print(f"ratio warm / bare runsc (python): "
          f"{p50['warm POST /run, python'] / p50['bare runsc run, python']:.2f}  (target <= 0.40)")
    print(f"ratio cold / bare runsc (python): "
          f"{p50['cold POST /run, python'] / p50['bare runsc run, python']:.2f}  (target <= 1.10)")
    print(f"ratio cold / bare runsc (busybox): "
          f"{p50['cold POST /run, busybox'] / p50['bare runsc run, busybox']:.2f}  (target <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
