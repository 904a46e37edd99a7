"""The shared executor (executor/daemon.h) from outside: who may connect,
what it does with hostile protocol messages, admission under overload, and
cancellation when a client goes away.  Protocol messages are written by
hand here, as a compromised worker would, not through Boxer's own client."""

import concurrent.futures
import json
import os
import pwd
import shutil
import socket
import statistics
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from conftest import BUSYBOX, children, wait_no_leftovers


def sh(script, **kw):
    return dict(image=BUSYBOX, cmd=["/bin/sh", "-c", script], **kw)


def frame(obj_or_bytes):
    body = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
    return struct.pack(">I", len(body)) + body


def read_frame(sock, timeout=10):
    """The next frame as a dict, or None when the executor closed first."""
    sock.settimeout(timeout)
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    (n,) = struct.unpack(">I", head)
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        assert chunk, "the executor closed in the middle of a frame"
        body += chunk
    return json.loads(body)


def connect(stack, path=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(path or stack.home / "executor.sock"))
    return s


def hello(stack, path=None):
    with connect(stack, path) as s:
        s.sendall(frame({"type": "hello", "version": 1}))
        msg = read_frame(s)
    assert msg and msg["type"] == "hello", msg
    return msg


def executor_log(stack):
    return (stack.prefix / "executor.log").read_text(errors="replace")


def as_user(code, uid, gid):
    """Run Python code as uid/gid with no supplementary groups."""
    def drop():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return subprocess.run(["python3", "-c", code], capture_output=True, text=True, timeout=30,
                          preexec_fn=drop)


def as_nobody(code):
    return as_user(code, 65534, 65534)


HELLO = ("import socket, struct, json\n"
         "s = socket.socket(socket.AF_UNIX); s.connect(PATH)\n"
         "body = json.dumps({'type': 'hello', 'version': 1}).encode()\n"
         "s.sendall(struct.pack('>I', len(body)) + body)\n"
         "s.settimeout(10)\n"
         "print(s.recv(4096)[4:].decode())\n")


def test_socket_reachable_by_root_and_workers_only(api):
    sock = api.home / "executor.sock"
    boxer = pwd.getpwnam("boxer")
    st = os.stat(sock)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, boxer.pw_gid, 0o660), oct(st.st_mode)
    home = os.stat(api.home)
    assert home.st_uid == 0 and home.st_mode & 0o777 == 0o711, oct(home.st_mode)
    # The workers' user: served.
    p = as_user(HELLO.replace("PATH", repr(str(sock))), boxer.pw_uid, boxer.pw_gid)
    assert p.returncode == 0 and json.loads(p.stdout)["type"] == "hello", p.stderr
    # Anyone else: not even a connection.
    p = as_nobody(HELLO.replace("PATH", repr(str(sock))))
    assert p.returncode != 0 and "PermissionError" in p.stderr, p.stderr


def test_peer_credentials_checked(make_stack):
    """With the socket's mode opened by mistake, a stranger's connection is
    still refused: SO_PEERCRED, not only file modes."""
    sockdir = Path(tempfile.mkdtemp(prefix="boxer-it-sock-"))
    try:
        os.chmod(sockdir, 0o755)
        path = sockdir / "executor.sock"
        s = make_stack({"executor_socket": str(path)}, workers=1).start()
        os.chmod(path, 0o666)
        # Connected (the mode allows it), then closed unanswered.
        code = ("import socket, struct, json\n"
                f"s = socket.socket(socket.AF_UNIX); s.connect({str(path)!r})\n"
                "print('connected')\n"
                "body = json.dumps({'type': 'hello', 'version': 1}).encode()\n"
                "try:\n"
                "    s.sendall(struct.pack('>I', len(body)) + body)\n"
                "    s.settimeout(10)\n"
                "    print(repr(s.recv(100)))\n"
                "except (BrokenPipeError, ConnectionResetError):\n"
                "    print(repr(b''))\n")
        p = as_nobody(code)
        assert p.returncode == 0 and p.stdout.split() == ["connected", "b''"], (p.stdout, p.stderr)
        assert "refused a connection from uid 65534" in executor_log(s)
        assert hello(s, path)["runsc_version"]
        s.stop()
    finally:
        shutil.rmtree(sockdir)


def test_hostile_messages(api):
    cases = [
        (b"\x00\x00\x00\x05[1,2]", "not a JSON object"),
        (b"\x00\x00\x10\x00" + b"{" * 10, "a frame of 4096 bytes"),
        (b"\xff\xff\xff\xff", "a frame of 4294967295 bytes"),
        (frame(b"{nope"), "not one JSON value"),
        (frame({"type": "run", "version": 2}), "version 2"),
        (frame({"type": "run"}), "'version' must be an integer"),
        (frame({"type": "shell", "version": 1}), "must be of type"),
        (frame({"type": "result", "version": 1}), "must be of type"),
        (frame(b'{"type": "hello", "version": 1, "deep": ' + b"[" * 100 + b"]" * 100 + b"}"),
         "not one JSON value"),
    ]
    for data, needle in cases:
        with connect(api) as s:
            s.sendall(data)
            msg = read_frame(s)
        assert msg and msg["type"] == "error" and msg["category"] == "invalid", (data[:40], msg)
        assert needle in msg["message"], (needle, msg)
    # A run message of the wrong shape after admission: refused, no run.
    bad_runs = [
        {"type": "run", "id": "r_../../../etc"},
        {"type": "hello", "version": 1},
        {"type": "run", "id": "r_" + "0" * 32, "request": {"image": "x"}, "image": {}},
        {"type": "run", "id": "r_" + "0" * 32,
         "request": {"image": "x", "cmd": ["true"], "limits": {
             "cpu_cores": 1, "memory_mb": 10 ** 9, "wall_clock_secs": 1, "pids_limit": 8,
             "nofile": 64}, "network": "none", "files": []},
         "image": {"digest": "sha256:" + "0" * 64, "env": []}},
        {"type": "run", "id": "r_" + "0" * 32,
         "request": {"image": "x", "cmd": ["true"], "limits": {
             "cpu_cores": 1, "memory_mb": 64, "wall_clock_secs": 1, "pids_limit": 8,
             "nofile": 64}, "network": "none", "files": []},
         "image": {"digest": "sha256:../../../../../../etc/x" + "0" * 30, "env": []}},
    ]
    for msg in bad_runs:
        with connect(api) as s:
            s.sendall(frame({"type": "run", "version": 1}))
            assert read_frame(s)["type"] == "admitted"
            s.sendall(frame(msg))
            got = read_frame(s)
        assert got and got["type"] == "error" and got["category"] == "invalid", (msg, got)
    # Half a frame, then hang up; and a silent connection past the open
    # timeout: dropped without an answer.
    with connect(api) as s:
        s.sendall(b"\x00\x00\x00\x40{\"type\"")
    with connect(api) as s:
        assert read_frame(s, timeout=15) is None
    # Many idle connections cannot starve the others.
    idle = [connect(api) for _ in range(300)]
    try:
        assert hello(api)["running"] == 0
    finally:
        for s in idle:
            s.close()
    assert api.run(**sh("echo still"))["stdout"] == "still\n"
    # Its run child ends once the sandbox is gone, after the answer.
    deadline = time.monotonic() + 15
    while api.run_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert api.run_processes() == []


def timed_post(stack, req, timeout=120):
    t0 = time.monotonic()
    try:
        status, body, resp, _ = stack.request("POST", "/run", req, timeout=timeout)
        return status, body, resp.getheader("Retry-After"), time.monotonic() - t0
    except OSError as e:  # a dropped connection is a failure, recorded as such
        return type(e).__name__, None, None, time.monotonic() - t0


def test_overload_answers_busy_fast(make_stack):
    """200 concurrent runs against 2 slots and 4 places in the queue: each
    gets its result or a fast 503 busy with Retry-After; none a 502, 504 or
    a dropped connection."""
    s = make_stack({"max_concurrent_runs": 2, "max_queued_runs": 4, "queue_timeout_secs": 30},
                   workers=16).start()
    with concurrent.futures.ThreadPoolExecutor(200) as pool:
        results = list(pool.map(lambda i: timed_post(s, sh(f"sleep 1; echo {i}")), range(200)))
    statuses = [r[0] for r in results]
    assert set(statuses) <= {200, 503}, sorted(set(map(str, statuses)))
    ok = [r for r in results if r[0] == 200]
    busy = [r for r in results if r[0] == 503]
    assert len(ok) >= 2 and busy, (len(ok), len(busy))
    for status, body, retry_after, _ in busy:
        assert body["error"]["code"] == "busy" and retry_after and int(retry_after) >= 1, body
    lat = sorted(r[3] for r in busy)
    print(f"{len(ok)} ran, {len(busy)} busy; busy answered in p50 {statistics.median(lat):.3f} s, "
          f"max {lat[-1]:.3f} s")
    assert statistics.median(lat) < 1.0, lat
    for status, body, _, _ in ok:
        assert body["exit_code"] == 0, body
    assert wait_no_leftovers(s.home, s.runsc_root) == []


def test_queue_timeout(make_stack):
    s = make_stack({"max_concurrent_runs": 1, "max_queued_runs": 4, "queue_timeout_secs": 1},
                   workers=4).start()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        long = pool.submit(timed_post, s, sh("sleep 5; echo long"))
        time.sleep(1)
        queued = timed_post(s, sh("echo queued"))
        status, body, retry_after, took = queued
        assert status == 503 and body["error"]["code"] == "busy", queued
        assert "queue_timeout_secs" in body["error"]["message"] and retry_after
        assert 0.8 < took < 4, took
        assert long.result()[0] == 200
    assert s.run(**sh("echo free"))["stdout"] == "free\n"


def raw_post_and_leave(stack, req, after):
    """POST /run over a raw socket and hang up after `after` seconds
    without reading the answer, as a client that gives up."""
    body = json.dumps(req).encode()
    c = socket.create_connection(("127.0.0.1", stack.port))
    c.sendall(b"POST /run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    time.sleep(after)
    c.close()


def test_client_gone_cancels_run(api):
    """A client that gives up after 2 s on a 60 s run leaves no sandbox a
    few seconds later."""
    t = threading.Thread(target=raw_post_and_leave, args=(api, sh("sleep 60"), 2))
    t.start()
    deadline = time.monotonic() + 10
    while not api.run_processes() or not api.sandboxes():
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.1)
    t.join()
    gone_at = time.monotonic()
    while api.run_processes():
        assert time.monotonic() - gone_at < 10, "the executor still runs the abandoned run"
        time.sleep(0.1)
    assert wait_no_leftovers(api.home, api.runsc_root, timeout=10) == []
    print(f"cleaned up {time.monotonic() - gone_at:.2f} s after the client left")
    assert "cancelled: the worker went away" in executor_log(api)


def test_queued_client_gone_leaves_queue(make_stack):
    s = make_stack({"max_concurrent_runs": 1, "max_queued_runs": 1, "queue_timeout_secs": 30},
                   workers=4).start()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        long = pool.submit(timed_post, s, sh("sleep 4; echo long"))
        deadline = time.monotonic() + 10
        while hello(s)["running"] != 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        raw_post_and_leave(s, sh("echo abandoned"), after=1)
        deadline = time.monotonic() + 5
        while hello(s)["queued"] != 0:
            assert time.monotonic() < deadline, "the abandoned run stayed in the queue"
            time.sleep(0.1)
        # Its place is free again: the next one queues rather than 503.
        assert timed_post(s, sh("echo next"))[0] == 200
        assert long.result()[0] == 200


def test_health_reports_executor(api):
    h = hello(api)
    assert h["max_concurrent_runs"] >= 1 and h["max_queued_runs"] >= 1
    assert api.request("GET", "/health")[0] == 200


def status_fields(pid):
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return fields


def uid(pid):
    try:
        return status_fields(pid)["Uid"][0]
    except OSError:
        return None


def tree(pid):
    out = [pid]
    for c in children(pid):
        out += tree(c)
    return out


def runsc_processes(stack):
    """runsc's processes for this stack's sandboxes, wherever they hang:
    a sandbox outlives the `runsc run --detach` that booted it."""
    flag = f"--root={stack.runsc_root}".encode()
    found = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and flag in (d / "cmdline").read_bytes().split(b"\0"):
                found.append(int(d.name))
        except OSError:
            pass
    return found


def test_process_table(api):
    """What SECURITY.md says of the running stack, checked on it while a
    run is in progress: the executor and runsc are the only root
    processes; the FastCGI master and workers are the boxer user with no
    capability and no way to gain one; nginx's workers are www-data."""
    boxer = pwd.getpwnam("boxer")
    www = pwd.getpwnam("www-data")
    t = threading.Thread(target=lambda: api.run(**sh("sleep 3")))
    t.start()
    try:
        deadline = time.monotonic() + 10
        while not api.run_processes() or not api.sandboxes():
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.1)
        executor = tree(api.executor_pid())
        runsc = runsc_processes(api)
        assert runsc, "no runsc process for the run"
        for pid in executor + runsc:
            assert uid(pid) in ("0", None), pid

        fcgi = tree(api.master_pid())
        assert len(fcgi) == 1 + 4, fcgi
        for pid in fcgi:
            st = status_fields(pid)
            assert st["Uid"] == [str(boxer.pw_uid)] * 4, (pid, st["Uid"])
            assert st["Gid"] == [str(boxer.pw_gid)] * 4, (pid, st["Gid"])
            assert st["Groups"] == [], (pid, st["Groups"])
            assert int(st["CapEff"][0], 16) == 0 and int(st["CapPrm"][0], 16) == 0, (pid, st)
            assert st["NoNewPrivs"] == ["1"], (pid, st["NoNewPrivs"])

        nginx_master = int((api.prefix / "nginx.pid").read_text())
        workers = children(nginx_master)
        assert workers
        for pid in workers:
            assert status_fields(pid)["Uid"] == [str(www.pw_uid)] * 4, pid

        # Every root process of the stack is the executor's, runsc's, or
        # nginx's master (which only reads its config and binds the port).
        ours = set(executor) | set(runsc)
        stack = ours | set(fcgi) | set(workers) | {nginx_master}
        root = {p for p in stack if uid(p) == "0"}
        assert root <= ours | {nginx_master}, root - ours
    finally:
        t.join(timeout=30)
