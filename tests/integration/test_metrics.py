"""GET /metrics through the real stack: Prometheus' own checker accepts
it, and each counter moves as runs, errors, refusals and pulls happen.
The example scrape config, alert rules and Grafana dashboard of
contrib/prometheus/ are checked against it too.

Ports: BOXER_TEST_PORT+32 (this module's stack), +33 (a registry)."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from conftest import BUSYBOX, PYTHON, ROOT, Stack, check_prerequisites, need
from registry_fixtures import REGISTRY_BIN, Registry

BASE = int(os.environ.get("BOXER_TEST_PORT", "18080"))
PORT = BASE + 32
REGISTRY_PORT = BASE + 33
ONE = "metrics-one-" + "7b3e" * 8       # max_concurrent_runs 1
MANY = "metrics-many-" + "2d9a" * 8
SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (\S+)$')


def sha(key):
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def promtool():
    out = subprocess.run([str(ROOT / "contrib/promtool.sh")], capture_output=True, text=True)
    need(out.returncode == 0, f"promtool is needed (contrib/promtool.sh): {out.stderr[-300:]}")
    return out.stdout.strip()


@pytest.fixture(scope="module")
def ms():
    check_prerequisites()
    registry = f"127.0.0.1:{REGISTRY_PORT}"
    s = Stack(PORT, {
        # One slot and one queue place: a third run at once is refused.
        "max_concurrent_runs": 1, "max_queued_runs": 1,
        "pull_policy": "if-not-present", "registry_timeout_secs": 5,
        "registries": {registry: {"insecure": True}},
        "api_keys": [
            {"name": "one", "sha256": sha(ONE), "max_concurrent_runs": 1, "allow_images": True},
            {"name": "many", "sha256": sha(MANY), "allow_images": True},
        ],
    }, workers=6).start()
    try:
        yield s
    finally:
        left = s.destroy()
        assert not left, f"left behind: {left}"


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def scrape(s):
    status, _, resp, raw = s.request("GET", "/metrics")
    assert status == 200, raw[:300]
    assert resp.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    return raw.decode()


def samples(text):
    """{(name, labels): value} of a scrape."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def value(got, name, labels=""):
    return got.get((name, labels), 0.0)


def wait_for(s, check, timeout=10):
    """Workers report after they answer, without waiting: poll a little."""
    deadline = time.monotonic() + timeout
    while True:
        got = samples(scrape(s))
        if check(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def run(s, key, expect=200, **req):
    status, body, resp, raw = s.request("POST", "/run", req, auth(key))
    assert status == expect, f"POST /run answered {status}: {raw[:300]!r}"
    return body, resp


def test_promtool_accepts_the_scrape(ms, promtool):
    run(ms, MANY, image=BUSYBOX, cmd=["true"])
    text = scrape(ms)
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # Public, like /health: no key asked.
    assert "boxer_runs_total" in text


def test_runs_by_outcome_phase_and_key(ms):
    before = samples(scrape(ms))
    assert run(ms, MANY, image=BUSYBOX, cmd=["true"])[0]["exit_code"] == 0
    assert run(ms, MANY, image=BUSYBOX, cmd=["sh", "-c", "exit 3"])[0]["exit_code"] == 3
    assert run(ms, MANY, image=BUSYBOX, cmd=["sleep", "30"],
               limits={"wall_clock_secs": 1})[0]["timed_out"]
    assert run(ms, ONE, image=PYTHON, cmd=["python3", "-c", "x = bytearray(400 << 20)"],
               limits={"memory_mb": 128})[0]["oom_killed"]
    run(ms, MANY, expect=400, image=BUSYBOX, cmd=["true"], limits={"memory_mb": 1})
    # Not a configured registry: refused before anything is contacted.
    run(ms, MANY, expect=403, image="localhost:1/nothing:1", cmd=["true"])

    def delta(got, name, labels=""):
        return value(got, name, labels) - value(before, name, labels)

    after = wait_for(ms, lambda g: delta(g, "boxer_run_errors_total", '{code="forbidden"}'))
    for outcome in ("ok", "exit_nonzero", "timeout", "oom"):
        assert delta(after, "boxer_runs_total", f'{{outcome="{outcome}"}}') == 1, outcome
    assert delta(after, "boxer_run_errors_total", '{code="invalid_request"}') == 1
    assert delta(after, "boxer_run_errors_total", '{code="forbidden"}') == 1
    for phase in ("queue", "setup", "run", "teardown"):
        assert delta(after, "boxer_run_phase_seconds_count", f'{{phase="{phase}"}}') == 4, phase
    # No warm pool: each run boots a sandbox of its own, measured apart
    # from the program's run.
    assert delta(after, "boxer_run_phase_seconds_count", '{phase="boot"}') == 4
    assert delta(after, "boxer_run_phase_seconds_sum", '{phase="boot"}') > 0
    # The image was looked for by the four runs and the refused one.
    assert delta(after, "boxer_run_phase_seconds_count", '{phase="pull"}') == 5
    # The run phase holds the timed-out run's second at least.
    assert delta(after, "boxer_run_phase_seconds_sum", '{phase="run"}') >= 1.0
    assert delta(after, "boxer_run_phase_seconds_bucket", '{phase="run",le="0.5"}') <= 3
    assert delta(after, "boxer_key_runs_total", '{key="many"}') == 3
    assert delta(after, "boxer_key_runs_total", '{key="one"}') == 1
    assert delta(after, "boxer_http_responses_total", '{status="200"}') >= 4
    assert delta(after, "boxer_http_responses_total", '{status="400"}') == 1
    assert value(after, "boxer_sandboxes") == 0 and value(after, "boxer_queued_runs") == 0
    assert value(after, "boxer_max_concurrent_runs") == 1
    assert value(after, "boxer_max_queued_runs") == 1


def test_refusals_and_gauges(ms):
    before = samples(scrape(ms))
    results = {}

    def long_run(name, key, seconds):
        results[name] = run(ms, key, image=BUSYBOX, cmd=["sleep", str(seconds)])

    first = threading.Thread(target=long_run, args=("first", ONE, 3))
    first.start()
    got = wait_for(ms, lambda g: value(g, "boxer_sandboxes") == 1)
    assert value(got, "boxer_sandboxes") == 1
    # The key's own bound first: 429.
    status, body, resp, _ = ms.request("POST", "/run", {"image": BUSYBOX, "cmd": ["true"]},
                                       auth(ONE))
    assert status == 429
    # Another key waits in the one queue place...
    second = threading.Thread(target=long_run, args=("second", MANY, 0))
    second.start()
    got = wait_for(ms, lambda g: value(g, "boxer_queued_runs") == 1)
    assert value(got, "boxer_queued_runs") == 1
    # ...and the next finds the queue full: 503 busy.
    status, body, resp, _ = ms.request("POST", "/run", {"image": BUSYBOX, "cmd": ["true"]},
                                       auth(MANY))
    assert status == 503 and body["error"]["code"] == "busy"
    first.join(60)
    second.join(60)
    assert results["first"][0]["exit_code"] == 0 and results["second"][0]["exit_code"] == 0
    after = wait_for(ms, lambda g: value(g, "boxer_run_errors_total", '{code="busy"}')
                     > value(before, "boxer_run_errors_total", '{code="busy"}'))

    def delta(name, labels=""):
        return value(after, name, labels) - value(before, name, labels)

    assert delta("boxer_key_refused_total", '{key="one"}') == 1
    assert delta("boxer_key_refused_total", '{key="many"}') == 0
    assert delta("boxer_busy_refused_total") == 1
    assert delta("boxer_run_errors_total", '{code="too_many_requests"}') == 1
    assert delta("boxer_run_errors_total", '{code="busy"}') == 1
    assert delta("boxer_http_responses_total", '{status="429"}') == 1
    assert delta("boxer_http_responses_total", '{status="503"}') == 1
    # The queued run waited about as long as the first ran.
    assert delta("boxer_run_phase_seconds_sum", '{phase="queue"}') >= 1.0
    assert value(after, "boxer_sandboxes") == 0


def test_pulled_bytes(ms, tmp_path):
    need(os.path.exists(REGISTRY_BIN), "docker-registry is needed (contrib/install-deps.sh)")
    need(shutil.which("skopeo"), "skopeo is needed (contrib/install-deps.sh)")
    # An image of its own (the stack's store has the test images' layers
    # already, and a pull fetches only what it lacks): random bytes, which
    # gzip cannot shrink.
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    (rootfs / "noise").write_bytes(os.urandom(256 * 1024))
    layout = tmp_path / "layout"
    subprocess.run(["python3", str(ROOT / "contrib/images/mkoci.py"), "--dir", str(rootfs),
                    "--out", str(layout), "--ref", "metrics"], check=True, capture_output=True)
    index = json.loads((layout / "index.json").read_text())
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_text())
    layers = sum(layer["size"] for layer in manifest["layers"])
    assert layers > 256 * 1024
    registry = Registry(REGISTRY_PORT)
    try:
        registry.push_layout(str(layout), "boxer/noise:1")
        before = samples(scrape(ms))
        ref = f"{registry.host}/boxer/noise:1"
        status, image, _, raw = ms.request("POST", "/images/pull", {"image": ref}, auth(MANY))
        assert status == 200, raw[:300]
        after = wait_for(ms, lambda g: value(g, "boxer_pulled_bytes_total")
                         > value(before, "boxer_pulled_bytes_total"))
        pulled = value(after, "boxer_pulled_bytes_total") - value(before, "boxer_pulled_bytes_total")
        # The layer, the manifest and the config came over the wire, and
        # little else.
        assert layers < pulled < layers + 64 * 1024, (pulled, layers)
        # A run of the stored image pulls nothing more.
        before = after
        run(ms, MANY, image=ref, cmd=["/bin/busybox", "true"])
        after = wait_for(ms, lambda g: value(g, "boxer_runs_total", '{outcome="ok"}')
                         > value(before, "boxer_runs_total", '{outcome="ok"}'))
        assert value(after, "boxer_pulled_bytes_total") == value(before, "boxer_pulled_bytes_total")
    finally:
        registry.stop()


def test_contrib_prometheus_files(ms, promtool):
    cfg = ROOT / "contrib/prometheus/prometheus.yml"
    check = subprocess.run([promtool, "check", "config", str(cfg)], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # Every series the dashboard and the rules read is one the server has.
    names = {name for name, _ in samples(scrape(ms))}
    names |= {n.rsplit("_bucket", 1)[0] for n in names}
    dashboard = json.loads((ROOT / "contrib/prometheus/grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs.append(dashboard["templating"]["list"][1]["query"])
    exprs.append((ROOT / "contrib/prometheus/boxer-rules.yml").read_text())
    used = {n for e in exprs for n in re.findall(r"\bboxer_[a-z_]+", e)}
    assert used, "no boxer_ series found"
    assert used <= names, f"not served: {sorted(used - names)}"
