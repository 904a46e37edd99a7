"""cpu_cores limits the CPU a run gets, measured by the work it does: the
same busy loop for the same wall time at 0.25 and at 1.0 cores. Without
the limit both would do the same work (the ratio near 1). (The CPU time
the sandbox reports is printed but not judged: gVisor's Sentry counts a
throttled task's time as its own.)"""

from conftest import PYTHON

SECS = 4
# Counts loop iterations for SECS of wall time, and the CPU time it got.
LOOP = ("import time\n"
        "t0 = time.monotonic(); c0 = time.process_time(); n = 0\n"
        f"while time.monotonic() - t0 < {SECS}:\n"
        "    for _ in range(1000): pass\n"
        "    n += 1\n"
        "print(n, time.process_time() - c0, time.monotonic() - t0)\n")


def work(api, cores):
    r = api.run(image=PYTHON, cmd=["python3", "-c", LOOP],
                limits={"cpu_cores": cores, "wall_clock_secs": SECS + 20})
    assert r["exit_code"] == 0, r
    n, cpu, wall = r["stdout"].split()
    return int(n), float(cpu), float(wall)


def test_cpu_cores_limit_work_done(api):
    # Two pairs, interleaved: other load on the machine slows the whole
    # core, and the quarter's cgroup also holds gVisor's Sentry and gofer,
    # whose share of a quarter core grows under load; the pair judged for
    # each bound is the one least disturbed in that direction.
    ratios = []
    for _ in range(2):
        quarter = work(api, 0.25)
        whole = work(api, 1.0)
        ratios.append(whole[0] / quarter[0])
        print(f"0.25 cores: {quarter}; 1.0 cores: {whole}; ratio {ratios[-1]:.2f}")
    # About 4x (CFS quota). Without the limit both get the same (about 1x):
    # 2x is what a whole core still shows when the machine's other load
    # leaves it half a core. A quota of half what was asked (1/8 core)
    # would show 8x in both pairs; one pair under 7x rules it out.
    assert max(ratios) > 2.0, ratios
    assert min(ratios) < 7.0, ratios
