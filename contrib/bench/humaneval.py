#!/usr/bin/env python3
"""HumanEval's 164 canonical programs three ways, in one invocation: through
Boxer with the Python SDK (AsyncBoxerClient), as bare `runsc run` of a
bundle per program, and as plain unsandboxed processes (python3 of the same
image rootfs, via chroot), each at several concurrencies; prints the times
and the ratios against both baselines.

Usage (as root; the SDK comes from the venv of contrib/python-env.sh):
    "$(contrib/python-env.sh)" contrib/bench/humaneval.py --start-stack 18510
    "$(contrib/python-env.sh)" contrib/bench/humaneval.py --url URL --config FILE

--start-stack PORT runs a private nginx + pool with the test images on
127.0.0.1:PORT (the integration tests' Stack), and removes it afterwards;
otherwise --url and --config name a running Boxer and its config (from which
`boxer-image inspect` finds the image's rootfs for the baselines).

Every mode feeds each program to `python3 -` on stdin, under the same
uid 65534, and every program must pass in every mode. The bare runsc
baseline uses the flags Boxer uses (--platform=systrap --network=none
--overlay2=root:memory) but no cgroups, no result JSON and no HTTP.
"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _bench import (HUMANEVAL as DATA, ROOT, build_runsc, humaneval_programs as programs,
                    integration, release_runsc_state, runsc_run, write_bundle)

IMAGE = "localhost:5000/boxer/python:3.11"


def in_threads(fn, items, concurrency):
    """fn over items with `concurrency` in flight; each item's wall time in ms."""
    def timed(item):
        t0 = time.perf_counter()
        fn(item)
        return (time.perf_counter() - t0) * 1000
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(timed, items))


def unsandboxed(rootfs, env):
    def run(item):
        _, prog = item
        p = subprocess.run(["chroot", "--userspec=65534:65534", rootfs, "python3", "-"],
                           input=prog.encode(), capture_output=True, env=env, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(f"unsandboxed program failed: {p.stderr[-300:]!r}")
    return run


def bare_runsc(runsc, rootfs, env, work):
    state = work / "state"

    def run(item):
        i, prog = item
        # A bundle per program, as Boxer writes one per run.
        bundle = write_bundle(work / f"bundle-{i}", rootfs, env, ["python3", "-"])
        try:
            p = runsc_run(runsc, state, bundle, f"bench-{os.getpid()}-{i}", stdin=prog.encode(),
                          timeout=60)
        finally:
            shutil.rmtree(bundle)
        if p.returncode != 0:
            raise RuntimeError(f"runsc run failed ({p.returncode}): {p.stderr[-300:]!r}")
    return run


def through_boxer(url, image, items, concurrency):
    from boxer import AsyncBoxerClient

    async def main():
        sem = asyncio.Semaphore(concurrency)
        async with AsyncBoxerClient(url) as client:
            async def one(item):
                _, prog = item
                async with sem:
                    t0 = time.perf_counter()
                    r = await client.run(image, ["python3", "-"], stdin=prog,
                                         limits={"wall_clock_secs": 60})
                    ms = (time.perf_counter() - t0) * 1000
                if not r.ok:
                    raise RuntimeError(f"Boxer run {r.id} failed: {r.stderr[-300:]!r}")
                return ms
            return await asyncio.gather(*(one(i) for i in items))
    return asyncio.run(main())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--start-stack", type=int, metavar="PORT",
                    help="start a private Boxer on 127.0.0.1:PORT for the benchmark")
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--config", default="/etc/boxer/config.json")
    ap.add_argument("--image", default=IMAGE)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--concurrency", default="1,2,4", help="comma-separated (default %(default)s)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N programs")
    ap.add_argument("--rounds", type=int, default=2,
                    help="repeat every measurement, keeping the fastest (default %(default)s)")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    items = list(enumerate(programs(args.data, args.limit)))

    runsc = build_runsc()
    stack = None
    if args.start_stack:
        os.environ.setdefault("BOXER_RUNSC", runsc)
        it = integration()
        stack = it.Stack(args.start_stack).start()
        args.url, args.config = f"http://127.0.0.1:{args.start_stack}", str(stack.config_path)
    work = Path(tempfile.mkdtemp(prefix="boxer-bench-"))
    results = {}
    load_before = os.getloadavg()
    try:
        # The checkout's build for a private stack, else the installed one.
        boxer_image = str(ROOT / "boxer-image")
        if stack is None and shutil.which("boxer-image"):
            boxer_image = shutil.which("boxer-image")
        image = json.loads(subprocess.run([boxer_image, "--config", args.config, "inspect",
                                           args.image], capture_output=True, text=True,
                                          check=True).stdout)
        env = dict(e.split("=", 1) for e in image["env"])
        modes = {
            "unsandboxed (chroot)": lambda c: in_threads(unsandboxed(image["rootfs"], env), items, c),
            "bare runsc run": lambda c: in_threads(bare_runsc(runsc, image["rootfs"], image["env"], work),
                                                   items, c),
            "Boxer via SDK": lambda c: through_boxer(args.url, args.image, items, c),
        }
        # Warm the page cache and the pool's workers once.
        in_threads(unsandboxed(image["rootfs"], env), items[:4], 1)
        in_threads(bare_runsc(runsc, image["rootfs"], image["env"], work), items[:4], 1)
        through_boxer(args.url, args.image, items[:4], 2)
        # Modes interleaved, and the best of --rounds kept: the machine may
        # be shared, and a burst of other work should not decide a ratio.
        for rnd in range(args.rounds):
            for c in levels:
                for name, fn in modes.items():
                    t0 = time.perf_counter()
                    lat = fn(c)
                    total = time.perf_counter() - t0
                    if (name, c) not in results or total < results[(name, c)][0]:
                        results[(name, c)] = (total, lat)
                    print(f"  round {rnd + 1}: {name} at concurrency {c}: {total:.1f} s",
                          file=sys.stderr)
    finally:
        release_runsc_state(work)
        shutil.rmtree(work, ignore_errors=True)
        if stack is not None:
            left = stack.destroy()
            if left:
                print(f"humaneval bench: the private stack left: {left}", file=sys.stderr)

    print(f"HumanEval canonical solutions: {len(items)} programs, python3 of {args.image}, "
          f"{os.cpu_count()} cores, best of {args.rounds} rounds; load average before: "
          f"{load_before[0]:.1f}, after: {os.getloadavg()[0]:.1f}")
    print(f"{'mode':22} {'conc':>4} {'total s':>8} {'prog/s':>7} {'p50 ms':>7} {'p90 ms':>7}")
    for c in levels:
        for name in modes:
            total, lat = results[(name, c)]
            p90 = sorted(lat)[int(0.9 * (len(lat) - 1))]
            print(f"{name:22} {c:4} {total:8.1f} {len(items) / total:7.1f} "
                  f"{statistics.median(lat):7.0f} {p90:7.0f}")
    for c in levels:
        b = results[("Boxer via SDK", c)][0]
        r = results[("bare runsc run", c)][0]
        u = results[("unsandboxed (chroot)", c)][0]
        print(f"concurrency {c}: Boxer/bare runsc {b / r:.2f}x, Boxer/unsandboxed {b / u:.1f}x, "
              f"bare runsc/unsandboxed {r / u:.1f}x (total time)")


if __name__ == "__main__":
    sys.exit(main())
