#!/usr/bin/env python3
"""POST /batch against plain processes, in one invocation: HumanEval's 164
canonical programs as unsandboxed `python3 -` processes on this host,
--parallelism at a time (the baseline), and as the runs of one POST /batch
with that parallelism (the Python SDK's client.batch); every program must
pass in both. Prints both wall times and "batch / unsandboxed = X.XX×"
(target <= 3×).

Usage (as root with --start-stack; the SDK comes from the venv of
contrib/python-env.sh):
    "$(contrib/python-env.sh)" contrib/bench/batch.py --start-stack 18530
    "$(contrib/python-env.sh)" contrib/bench/batch.py --url http://127.0.0.1:8080

--start-stack PORT runs a private nginx + pool with the test images on
127.0.0.1:PORT (the integration tests' Stack), allowing the batch's sandbox
--parallelism cores, and removes it afterwards; otherwise --url names a
running Boxer with the image.

Both modes feed each program to `python3 -` on stdin, the same text
(prompt + canonical solution + test + check(entry_point)); a program passes
when it exits 0 in time. The baseline's processes run as uid 65534 when
this runs as root, in an empty working directory, with the host's python3
(--python). The batch's sandbox gets --parallelism cores and --memory-mb,
as much as the baseline's processes may use; its time is the whole
POST /batch as the client sees it (sandbox start-up, every run, the
answer). Modes alternate for --rounds rounds and each keeps its fastest,
so that a burst of other work on the machine does not decide the ratio.

With --start-stack a third mode measures gVisor's own floor: one bare
`runsc run` of the image's rootfs (Boxer's flags, as warm.py's baseline)
whose python3 runs the same programs as `python3 -` children, --parallelism
at a time, each taken as a slot frees (as a batch's are). The batch cannot
beat it: what lies between the two is Boxer's share.
"""

from __future__ import annotations

import argparse
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
from typing import Any

from _bench import (HUMANEVAL, RUN_UID, build_runsc, humaneval_programs, integration,
                    release_runsc_state, runsc_run, write_bundle)

IMAGE = "localhost:5000/boxer/python:3.11"
TARGET = 3.0
# Seconds each program may take, in both modes.
WALL_CLOCK_SECS = 30
# Debian's, which uid 65534 can run (a python3 under /root may not be).
DEFAULT_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"


class ProgramFailed(Exception):
    """A program did not pass in one of the modes: no ratio is printed."""


def unsandboxed(python: str, programs: list[str], concurrency: int,
                work: Path) -> tuple[float, list[float]]:
    """Every program as `python3 -` on this host, `concurrency` at a time;
    the total seconds and each program's milliseconds."""
    as_nobody: dict[str, Any] = {}
    if os.geteuid() == 0:
        as_nobody = {"user": RUN_UID, "group": RUN_UID, "extra_groups": []}

    def one(item: tuple[int, str]) -> float:
        i, program = item
        t0 = time.perf_counter()
        try:
            p = subprocess.run([python, "-"], input=program.encode(), capture_output=True,
                               cwd=work, timeout=WALL_CLOCK_SECS, **as_nobody)
        except subprocess.TimeoutExpired:
            raise ProgramFailed(f"unsandboxed: program {i} ran past {WALL_CLOCK_SECS} s") from None
        except OSError as e:
            who = f" as uid {RUN_UID}" if as_nobody else ""
            raise ProgramFailed(f"unsandboxed: cannot run {python}{who}: {e}; pass --python "
                                f"with an interpreter that uid can run") from None
        ms = (time.perf_counter() - t0) * 1000
        if p.returncode != 0:
            raise ProgramFailed(f"unsandboxed: program {i} exited with status {p.returncode}: "
                                f"{p.stderr[-500:].decode(errors='replace')}")
        return ms

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        lat = list(pool.map(one, enumerate(programs)))
    return time.perf_counter() - t0, lat


def batched(url: str, image: str, programs: list[str], parallelism: int,
            memory_mb: int) -> tuple[float, list[float]]:
    """Every program as a run of one POST /batch; the total seconds and
    each run's milliseconds as the server measured them."""
    from boxer import BoxerClient

    runs = [{"cmd": ["python3", "-"], "stdin": program} for program in programs]
    with BoxerClient(url) as client:
        t0 = time.perf_counter()
        batch = client.batch(image, runs, parallelism=parallelism,
                             limits={"cpu_cores": float(parallelism), "memory_mb": memory_mb,
                                     "wall_clock_secs": WALL_CLOCK_SECS})
        total = time.perf_counter() - t0
    for r in batch:
        if not r.ok:
            why = f"could not start: {r.error}" if r.error else (
                "timed out" if r.timed_out else "ran out of memory" if r.oom_killed
                else f"exited with status {r.exit_code}: {r.stderr[-500:]}")
            raise ProgramFailed(f"POST /batch {batch.id}: program {r.index} {why}")
    return total, [float(r.wall_ms) for r in batch]


# The bare sandbox's driver: the programs of /progs as `python3 -`
# children, argv[1] at a time; prints each one's milliseconds, or FAIL.
BARE_DRIVER = """
import os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
progs = [open(os.path.join("/progs", n), "rb").read() for n in sorted(os.listdir("/progs"))]
def one(item):
    i, text = item
    t0 = time.perf_counter()
    p = subprocess.run(["python3", "-"], input=text, capture_output=True, timeout=%d)
    if p.returncode:
        print("FAIL", i, p.returncode, p.stderr[-300:], flush=True)
    return (time.perf_counter() - t0) * 1000
with ThreadPoolExecutor(int(sys.argv[1])) as pool:
    print(" ".join("%%.1f" %% ms for ms in pool.map(one, enumerate(progs))))
""" % WALL_CLOCK_SECS


def bare_runsc(runsc: str, rootfs: str, env: list[str], programs: list[str], parallelism: int,
               work: Path) -> tuple[float, list[float]]:
    """Every program in one bare `runsc run` of rootfs, as children of a
    python3 there; the total seconds (its whole `runsc run`: boot, programs,
    teardown, as the batch's time holds its sandbox's start-up) and each
    program's milliseconds."""
    progs = work / "progs"
    if not progs.exists():
        progs.mkdir(mode=0o755)
        for i, program in enumerate(programs):
            (progs / f"{i:05d}.py").write_text(program)
            os.chmod(progs / f"{i:05d}.py", 0o644)
    n = len(list(work.glob("bare-*")))
    bundle = write_bundle(work / f"bare-{n}", rootfs, env,
                          ["python3", "-c", BARE_DRIVER, str(parallelism)])
    spec = json.loads((bundle / "config.json").read_text())
    spec["mounts"].append({"destination": "/progs", "type": "bind", "source": str(progs),
                           "options": ["ro", "rbind"]})
    (bundle / "config.json").write_text(json.dumps(spec))
    t0 = time.perf_counter()
    p = runsc_run(runsc, work / "state", bundle, f"bench-batch-{os.getpid()}-{n}",
                  timeout=WALL_CLOCK_SECS * len(programs))
    total = time.perf_counter() - t0
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0 or "FAIL" in out:
        raise ProgramFailed(f"bare runsc: exit {p.returncode}: {out[-500:]} "
                            f"{p.stderr.decode(errors='replace')[-500:]}")
    return total, [float(x) for x in out.split()]


def p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * (len(values) - 1))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--start-stack", type=int, metavar="PORT",
                    help="start a private Boxer on 127.0.0.1:PORT for the benchmark")
    ap.add_argument("--url", default=os.environ.get("BOXER_URL", "http://127.0.0.1:8080"),
                    help="Boxer's base URL without --start-stack (default $BOXER_URL, else "
                         "%(default)s)")
    ap.add_argument("--image", default=IMAGE, help="an image with python3 (default %(default)s)")
    ap.add_argument("--python", default=DEFAULT_PYTHON,
                    help="the host's interpreter for the baseline (default %(default)s)")
    ap.add_argument("--data", type=Path, default=HUMANEVAL,
                    help="HumanEval problems (default %(default)s)")
    ap.add_argument("--limit", type=int, help="only the first N programs")
    ap.add_argument("--parallelism", type=int, default=2,
                    help="programs at once in both modes (default %(default)s)")
    ap.add_argument("--memory-mb", type=int, default=1024,
                    help="memory of the batch's sandbox (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="measure each mode this many times, keeping the fastest "
                         "(default %(default)s)")
    args = ap.parse_args()
    if args.parallelism < 1 or args.rounds < 1:
        ap.error("--parallelism and --rounds must be at least 1")
    python = shutil.which(args.python)
    if python is None:
        ap.error(f"--python {args.python!r} is not on PATH")
    try:
        programs = humaneval_programs(args.data, args.limit)
    except OSError as e:
        print(f"batch bench: cannot read HumanEval from {args.data}: {e}", file=sys.stderr)
        return 2
    py_version = subprocess.run([python, "--version"], capture_output=True, text=True,
                                check=True).stdout.strip()

    stack = None
    bare = None
    if args.start_stack:
        os.environ.setdefault("BOXER_RUNSC", build_runsc())
        it = integration()
        stack = it.Stack(args.start_stack)
        # The test stack's maximums, with room for one core per run at once.
        maxima = stack.config["max_limits"]
        maxima["cpu_cores"] = max(maxima["cpu_cores"], args.parallelism)
        maxima["memory_mb"] = max(maxima["memory_mb"], args.memory_mb)
        stack.config_path.write_text(json.dumps(stack.config))
        stack.start()
        args.url = f"http://127.0.0.1:{args.start_stack}"
        out = subprocess.run([str(it.BUILD / "boxer-image"), "--config", str(stack.config_path),
                              "inspect", args.image], capture_output=True, text=True)
        if out.returncode == 0:
            bare = json.loads(out.stdout)

    work = Path(tempfile.mkdtemp(prefix="boxer-bench-"))
    os.chmod(work, 0o755)
    best: dict[str, tuple[float, list[float]]] = {}
    load_before = os.getloadavg()
    try:
        # Warm the page cache, the image and the pool's workers once.
        unsandboxed(python, programs[:4], args.parallelism, work)
        batched(args.url, args.image, programs[:4], args.parallelism, args.memory_mb)
        modes = {
            "unsandboxed": lambda: unsandboxed(python, programs, args.parallelism, work),
            "batch": lambda: batched(args.url, args.image, programs, args.parallelism,
                                     args.memory_mb),
        }
        if bare is not None:
            modes["bare"] = lambda: bare_runsc(os.environ["BOXER_RUNSC"], bare["rootfs"],
                                               bare["env"], programs, args.parallelism, work)
        for rnd in range(args.rounds):
            for name, fn in modes.items():
                total, lat = fn()
                if name not in best or total < best[name][0]:
                    best[name] = (total, lat)
                print(f"  round {rnd + 1}: {name}: {total:.2f} s", file=sys.stderr)
    except ProgramFailed as e:
        print(f"batch bench: {e}", file=sys.stderr)
        return 1
    finally:
        release_runsc_state(work)
        shutil.rmtree(work, ignore_errors=True)
        if stack is not None:
            left = stack.destroy()
            if left:
                print(f"batch bench: the private stack left: {left}", file=sys.stderr)

    n = len(programs)
    print(f"HumanEval canonical solutions: {n} programs, all passed in every mode; "
          f"parallelism {args.parallelism}, best of {args.rounds} rounds, {os.cpu_count()} "
          f"cores; load average before: {load_before[0]:.1f}, after: {os.getloadavg()[0]:.1f}")
    print(f"baseline: {python} ({py_version}) on the host; bare runsc and batch: python3 of "
          f"{args.image} (p50/p90: each run's wall_ms from the server; a bare run's as its "
          f"driver in the sandbox timed it)")
    print(f"{'mode':24} {'total s':>8} {'prog/s':>7} {'p50 ms':>7} {'p90 ms':>7}")
    labels = {"unsandboxed": "unsandboxed processes", "bare": "one bare runsc run",
              "batch": "one POST /batch"}
    for name in ("unsandboxed", "bare", "batch"):
        if name not in best:
            continue
        total, lat = best[name]
        print(f"{labels[name]:24} {total:8.2f} {n / total:7.1f} {statistics.median(lat):7.0f} "
              f"{p90(lat):7.0f}")
    ratio = best["batch"][0] / best["unsandboxed"][0]
    verdict = "met" if ratio <= TARGET else "missed"
    if "bare" in best:
        # gVisor's floor, and Boxer's share above it.
        print(f"bare runsc / unsandboxed = {best['bare'][0] / best['unsandboxed'][0]:.2f}×, "
              f"batch / bare runsc = {best['batch'][0] / best['bare'][0]:.2f}×")
    print(f"batch / unsandboxed = {ratio:.2f}×  (target <= {TARGET:g}×: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
