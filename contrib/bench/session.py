#!/usr/bin/env python3
"""A session's exec against a bare `runsc run`, in one invocation: POST
/sessions/{id}/exec of `python3 -c pass` in one session of the python image,
and bare `runsc run` of the same program on that image's rootfs as the
baseline, interleaved; prints p50s and the ratio issue 17 asks for
(session exec p50 <= 0.3x bare runsc run).

Usage (as root):
    contrib/bench/session.py --start-stack 18540 [-n RUNS]

--start-stack PORT runs a private nginx + pool stack with the test images
(the integration tests' Stack) on PORT+1 and removes it afterwards.
"""

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import integration, release_runsc_state
from warm import bare_runner

PYTHON = "localhost:5000/boxer/python:3.11"
PROGRAM = ["python3", "-c", "pass"]


def request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(method, path, json.dumps(body) if body is not None else None,
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data) if data else None


def timed_exec(port, sid):
    t0 = time.perf_counter()
    status, body = request(port, "POST", f"/sessions/{sid}/exec", {"cmd": PROGRAM})
    ms = (time.perf_counter() - t0) * 1000
    assert status == 200 and body["exit_code"] == 0, body
    return ms


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--start-stack", type=int, required=True, metavar="PORT")
    ap.add_argument("-n", type=int, default=20, help="runs per mode (default 20)")
    args = ap.parse_args()

    it = integration()
    runsc = it.runsc_path()
    work = Path(tempfile.mkdtemp(prefix="boxer-bench-"))
    stack = None
    try:
        stack = it.Stack(args.start_stack + 1).start()
        out = subprocess.run([str(it.BUILD / "boxer-image"), "--config", str(stack.config_path),
                              "inspect", PYTHON], capture_output=True, text=True, check=True)
        image = json.loads(out.stdout)
        status, session = request(stack.port, "POST", "/sessions", {"image": PYTHON})
        assert status == 201, session
        sid = session["id"]
        timed_exec(stack.port, sid)          # the first exec warms the page cache
        bare = bare_runner(runsc, image["rootfs"], image["env"], PROGRAM, work)
        bare()
        results = {"bare runsc run, python": [], "session exec, python": []}
        # Interleaved: a burst of other work on the machine weighs on both.
        for _ in range(args.n):
            results["bare runsc run, python"].append(bare())
            results["session exec, python"].append(timed_exec(stack.port, sid))
        request(stack.port, "DELETE", f"/sessions/{sid}")
    finally:
        release_runsc_state(work)
        shutil.rmtree(work, ignore_errors=True)
        if stack:
            left = stack.destroy()
            if left:
                print(f"left behind: {left}", file=sys.stderr)
                return 1

    print(f"{args.n} rounds of one run per mode, interleaved, ms")
    print(f"{'mode':28} {'p50':>8} {'p90':>8}")
    p50 = {}
    for name, t in results.items():
        p50[name] = statistics.median(t)
        print(f"{name:28} {p50[name]:8.1f} {sorted(t)[int(0.9 * (len(t) - 1))]:8.1f}")
    print(f"ratio session exec / bare runsc (python): "
          f"{p50['session exec, python'] / p50['bare runsc run, python']:.2f}  (target <= 0.30)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
