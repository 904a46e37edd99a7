"""Sessions (API.md, "Sessions"): one sandbox kept for many commands,
through the real stack: state between execs, files in and out, expiry,
max_sessions, isolation, ownership, streaming, and nothing left after."""

import json
import os
import signal
import threading
import time

import pytest

from conftest import BUSYBOX, PYTHON, wait_no_leftovers
from test_stream import Events


def create(api, expect=201, **req):
    status, body, _, raw = api.request("POST", "/sessions", req)
    assert status == expect, f"POST /sessions answered {status}: {raw[:500]!r}"
    return body


def exec_(api, sid, expect=200, **req):
    status, body, _, raw = api.request("POST", f"/sessions/{sid}/exec", req)
    assert status == expect, f"exec answered {status}: {raw[:500]!r}"
    return body


def sh(api, sid, script, **kw):
    return exec_(api, sid, cmd=["/bin/sh", "-c", script], **kw)


def put(api, sid, path, data, expect=204):
    status, _, _, raw = api.request("PUT", f"/sessions/{sid}/files/{path}", data,
                                    {"Content-Type": "application/octet-stream"})
    assert status == expect, f"PUT answered {status}: {raw[:300]!r}"


def get(api, sid, path):
    status, body, resp, raw = api.request("GET", f"/sessions/{sid}/files/{path}")
    return status, (body if body is not None else raw)


def delete(api, sid, expect=204):
    status, _, _, raw = api.request("DELETE", f"/sessions/{sid}")
    assert status == expect, raw[:300]


def sessions_alive(api):
    return api.request("GET", "/health")[1]["sessions"]


def test_state_persists_between_execs(api):
    s = create(api, image=BUSYBOX)
    sid = s["id"]
    try:
        assert sid.startswith("s_") and len(sid) == 34
        assert s["image"] == BUSYBOX and s["image_digest"].startswith("sha256:")
        assert s["network"] == "none" and s["execs"] == 0
        assert s["idle_timeout_secs"] == 300 and s["ttl_secs"] == 3600
        assert s["expires_at"] > s["created_at"]
        assert sessions_alive(api) == 1
        assert "\nboxer_sessions 1\n" in api.request("GET", "/metrics")[3].decode()
        r = sh(api, sid, "echo kept > /tmp/state; echo one")
        assert (r["stdout"], r["exit_code"]) == ("one\n", 0)
        assert r["id"] == f"{sid}/1" and r["image"] == BUSYBOX
        r = sh(api, sid, "cat /tmp/state; exit 3")
        assert (r["stdout"], r["exit_code"]) == ("kept\n", 3)
        assert r["id"] == f"{sid}/2"
        status, info, _, _ = api.request("GET", f"/sessions/{sid}")
        assert status == 200 and info["execs"] == 2 and info["id"] == sid
    finally:
        delete(api, sid)
    assert api.request("GET", f"/sessions/{sid}")[1]["error"]["code"] == "session_not_found"
    assert api.request("POST", f"/sessions/{sid}/exec", {"cmd": ["true"]})[0] == 404
    assert sessions_alive(api) == 0
    assert "\nboxer_sessions 0\n" in api.request("GET", "/metrics")[3].decode()
    assert wait_no_leftovers(api.home, api.runsc_root) == []


def test_files_in_and_out(api):
    sid = create(api, image=PYTHON)["id"]
    try:
        put(api, sid, "workspace/src/main.py", b"print(open('/workspace/in.txt').read().upper())")
        put(api, sid, "workspace/in.txt", b"hello")
        r = exec_(api, sid, cmd=["python3", "/workspace/src/main.py"])
        assert r["stdout"] == "HELLO\n", r
        # Written by the API, the session's user may change them (and their directories).
        r = exec_(api, sid, cmd=["sh", "-c", "echo more >> /workspace/in.txt && "
                                 "touch /workspace/src/new && printf '\\000\\377' > /tmp/bin"])
        assert r["exit_code"] == 0, r
        assert get(api, sid, "workspace/in.txt") == (200, b"hellomore\n")
        assert get(api, sid, "tmp/bin") == (200, b"\x00\xff")
        # Replaced whole.
        put(api, sid, "workspace/in.txt", b"new")
        assert get(api, sid, "workspace/in.txt") == (200, b"new")
        # Percent-encoded names.
        put(api, sid, "workspace/a%20b.txt", b"spaced")
        assert exec_(api, sid, cmd=["cat", "/workspace/a b.txt"])["stdout"] == "spaced"
        # Absent, a directory, a link, a FIFO: no file.
        exec_(api, sid, cmd=["sh", "-c", "ln -s /etc/passwd /tmp/link; mkfifo /tmp/fifo"])
        for path in ("workspace/absent", "workspace", "tmp/link", "tmp/fifo"):
            status, body = get(api, sid, path)
            assert status == 404 and body["error"]["code"] == "file_not_found", (path, body)
        # The kernel's files are no session's.
        status, body = get(api, sid, "proc/self/status")
        assert status == 400 and body["error"]["code"] == "invalid_request"
    finally:
        delete(api, sid)


def test_hostile_paths_and_sizes(api):
    sid = create(api, image=BUSYBOX)["id"]
    try:
        for path in ("a/../../etc/passwd", "a//b", "a/./b"):
            status, body, _, _ = api.request("PUT", f"/sessions/{sid}/files/{path}", b"x")
            assert status in (400, 404), (path, status, body)
        for path in ("proc/x", "dev/null", "sys/x"):
            status, body, _, _ = api.request("PUT", f"/sessions/{sid}/files/{path}", b"x")
            assert status == 400 and body["error"]["code"] == "invalid_request", (path, body)
        # A file where a directory must be.
        put(api, sid, "plain", b"x")
        status, body, _, _ = api.request("PUT", f"/sessions/{sid}/files/plain/sub", b"x")
        assert status == 400, body
        # Over upload_limit_bytes (1 MiB here), in and out.
        status, body, _, _ = api.request("PUT", f"/sessions/{sid}/files/big", b"x" * (1 << 20 | 1))
        assert status == 413 and body["error"]["code"] == "payload_too_large"
        sh(api, sid, "head -c 2000000 /dev/zero > /tmp/huge")
        status, body = get(api, sid, "tmp/huge")
        assert status == 413, body
        # Unknown fields, a missing cmd, ids that are no session.
        assert exec_(api, sid, 400, cmd=["true"], bogus=1)["error"]["code"] == "invalid_request"
        assert exec_(api, sid, 400)["error"]["code"] == "invalid_request"
        for bad in ("s_nope", "s_" + "0" * 32, "../x"):
            status, body, _, _ = api.request("GET", f"/sessions/{bad}")
            assert status == 404, (bad, body)
        # The session is unharmed.
        assert sh(api, sid, "echo fine")["stdout"] == "fine\n"
    finally:
        delete(api, sid)


def test_bad_creations(api):
    for req, status in [({}, 400), ({"image": BUSYBOX, "network": "bridge"}, 400),
                        ({"image": BUSYBOX, "ttl_secs": 0}, 400),
                        ({"image": BUSYBOX, "ttl_secs": 10, "idle_timeout_secs": 20}, 400),
                        ({"image": BUSYBOX, "bogus": 1}, 400),
                        ({"image": BUSYBOX, "limits": {"memory_mb": 1}}, 400),
                        ({"image": "localhost:5000/boxer/absent:1"}, 404)]:
        body = create(api, status, **req)
        assert "error" in body
    assert sessions_alive(api) == 0


def test_two_sessions_see_nothing_of_each_other(api):
    a = create(api, image=BUSYBOX)["id"]
    b = create(api, image=BUSYBOX)["id"]
    try:
        sh(api, a, "echo a-secret > /tmp/mine; (setsid sleep 300 >/dev/null 2>&1 &); sleep 0.5")
        # a's daemon goes on in a, and b sees none of it.
        assert sh(api, a, "ps -o args | grep -c '[s]leep 300'")["stdout"] == "1\n"
        r = sh(api, b, "cat /tmp/mine; ps -o args | grep -c '[s]leep 300'; ls /tmp")
        assert "a-secret" not in r["stdout"] and r["stdout"].startswith("0\n"), r
        assert get(api, b, "tmp/mine")[0] == 404
        # Each session's id is its own: b's id with a's path finds nothing.
        assert sh(api, a, "cat /tmp/mine")["stdout"] == "a-secret\n"
    finally:
        delete(api, a)
        delete(api, b)
    assert wait_no_leftovers(api.home, api.runsc_root) == []


def test_idle_and_ttl_expiry(api):
    idle = create(api, image=BUSYBOX, idle_timeout_secs=3)["id"]
    ttl = create(api, image=BUSYBOX, ttl_secs=4, idle_timeout_secs=4)["id"]
    t0 = time.monotonic()
    # Use keeps the idle one alive past its timeout; the ttl ends the other whatever.
    while time.monotonic() - t0 < 5:
        time.sleep(0.5)
        assert sh(api, idle, "true")["exit_code"] == 0
    assert api.request("GET", f"/sessions/{ttl}")[0] == 404
    deadline = time.monotonic() + 15
    while sessions_alive(api) > 0:
        assert time.monotonic() < deadline, "a session outlived its idle timeout and ttl"
        time.sleep(0.5)
    for sid in (idle, ttl):
        assert api.request("GET", f"/sessions/{sid}")[0] == 404
    assert wait_no_leftovers(api.home, api.runsc_root) == []


def test_max_sessions(make_stack):
    s = make_stack({"max_sessions": 2}).start()
    a = create(s, image=BUSYBOX)["id"]
    b = create(s, image=BUSYBOX)["id"]
    status, body, resp, _ = s.request("POST", "/sessions", {"image": BUSYBOX})
    assert status == 503 and body["error"]["code"] == "busy"
    assert resp.getheader("Retry-After")
    delete(s, a)
    c = create(s, image=BUSYBOX)["id"]
    delete(s, b)
    delete(s, c)


def test_execs_of_a_session_take_turns(api):
    """Two execs at once: the second waits for the first; both complete."""
    sid = create(api, image=BUSYBOX)["id"]
    try:
        results = {}

        def one(name):
            results[name] = sh(api, sid, f"echo start-{name} >> /tmp/log; sleep 1; "
                                         f"echo end-{name} >> /tmp/log")
        threads = [threading.Thread(target=one, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(r["exit_code"] == 0 for r in results.values())
        log = get(api, sid, "tmp/log")[1].decode().split()
        assert sorted(log) == ["end-a", "end-b", "start-a", "start-b"]
        # Never overlapping: each start is followed by its own end.
        assert log[0][6:] == log[1][4:] and log[2][6:] == log[3][4:], log
    finally:
        delete(api, sid)


def test_limits_bound_the_session(api):
    sid = create(api, image=BUSYBOX, limits={"wall_clock_secs": 2, "pids_limit": 32})["id"]
    try:
        r = sh(api, sid, "sleep 10")
        assert r["timed_out"] is True and r["exit_code"] == 137
        # An exec's own timeout, and the session goes on.
        r = sh(api, sid, "sleep 3; echo done", timeout_secs=5)
        assert r["stdout"] == "done\n" and r["timed_out"] is False
        assert sh(api, sid, "echo alive")["stdout"] == "alive\n"
    finally:
        delete(api, sid)


def test_exec_streams(api):
    sid = create(api, image=PYTHON)["id"]
    try:
        ev = Events(api, {"cmd": ["python3", "-u", "-c", "import sys, time; sys.stdout.write('a\\n');"
                                  " time.sleep(2); sys.stdout.write('b\\n')"]},
                    path=f"/sessions/{sid}/exec")
        assert ev.status == 200
        events = ev.all()
        out = [(d["data"], t) for n, d, t in events if n == "stdout"]
        assert [d for d, _ in out] == ["a\n", "b\n"] and out[1][1] - out[0][1] >= 1.5
        assert events[-1][0] == "result" and events[-1][1]["stdout"] == "a\nb\n"
    finally:
        delete(api, sid)


def test_executor_restart_ends_sessions(make_stack):
    s = make_stack().start()
    sid = create(s, image=BUSYBOX)["id"]
    os.kill(s.executor_server_pid(), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        try:
            status, body, _, _ = s.request("GET", f"/sessions/{sid}")
            if status == 404:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "the session outlived its executor"
        time.sleep(0.5)
    assert s.request("GET", "/health")[1]["sessions"] == 0


def test_stopping_the_service_ends_sessions(make_stack):
    """A service stopped with sessions open, one of them mid-exec: every
    session ends, and nothing of any is left (make_stack checks)."""
    s = make_stack().start()
    idle = create(s, image=BUSYBOX)["id"]
    busy = create(s, image=BUSYBOX)["id"]
    sh(s, idle, "echo x > /tmp/x")
    t = threading.Thread(target=lambda: s.request("POST", f"/sessions/{busy}/exec",
                                                  {"cmd": ["sleep", "2"]}))
    t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    s.stop()
    t.join(30)
    print(f"stopped in {time.monotonic() - t0:.1f} s")
    assert time.monotonic() - t0 < 20


def test_metrics_count_boot_and_execs(api):
    """A session's boot is on its creation's path (the boot phase), and
    each exec is a run; a session holds no run slot."""
    def scrape():
        text = api.request("GET", "/metrics")[3].decode()
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines() if line and not line.startswith("#")}

    boot = 'boxer_run_phase_seconds_count{phase="boot"}'
    boot_sum = 'boxer_run_phase_seconds_sum{phase="boot"}'
    ok, nonzero = 'boxer_runs_total{outcome="ok"}', 'boxer_runs_total{outcome="exit_nonzero"}'
    before = scrape()
    sid = create(api, image=BUSYBOX)["id"]
    try:
        assert sh(api, sid, "true")["exit_code"] == 0
        assert sh(api, sid, "exit 3")["exit_code"] == 3
        assert scrape()["boxer_sandboxes"] == 0
    finally:
        delete(api, sid)
    deadline = time.monotonic() + 5
    while True:
        after = scrape()
        moved = {k: after[k] - before[k] for k in (boot, boot_sum, ok, nonzero)}
        if moved[nonzero] >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (moved[boot], moved[ok], moved[nonzero]) == (1, 1, 1), moved
    # A gVisor boot, not a take: tens of milliseconds at least.
    assert moved[boot_sum] > 0.05, moved
