"""Streamed runs and batches (API.md, "Streaming"): POST /run and POST
/batch with Accept: text/event-stream answer with server-sent events as the
programs write, through nginx: cold runs, runs in a warm sandbox (boxer-init)
and batches."""

import http.client
import json
import os
import signal
import socket
import time

import pytest

from conftest import BUSYBOX, PYTHON, settled, wait_no_leftovers, wait_warm, warm_config
from test_files import multipart


def sh(script, **kw):
    return dict(image=BUSYBOX, cmd=["/bin/sh", "-c", script], **kw)


class Events:
    """A streamed POST /run, read event by event, each with the time it
    arrived."""

    def __init__(self, stack, req, accept="text/event-stream", body=None, ctype=None,
                 headers=None, path="/run"):
        self.conn = http.client.HTTPConnection(stack.host, stack.port, timeout=120)
        if body is None:
            body, ctype = json.dumps(req).encode(), "application/json"
        self.t0 = time.monotonic()
        self.conn.request("POST", path, body=body,
                          headers={"Content-Type": ctype, "Accept": accept, **(headers or {})})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status

    def next(self):
        """(event, data, seconds since the request) or None at the end."""
        name, data = None, []
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.decode("utf-8").rstrip("\n")
            if line == "":
                if name is None and not data:
                    continue
                return name, json.loads("\n".join(data)), time.monotonic() - self.t0
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)

    def all(self):
        out = []
        while (e := self.next()) is not None:
            out.append(e)
        self.close()
        return out

    def close(self):
        self.conn.close()


def joined(events, name):
    return "".join(d["data"] for n, d, _ in events if n == name)


def stream(stack, req, **kw):
    """A streamed run's output events and its result, checked for shape."""
    ev = Events(stack, req, **kw)
    assert ev.status == 200, ev.resp.read()[:300]
    assert ev.resp.getheader("Content-Type") == "text/event-stream; charset=utf-8"
    events = ev.all()
    assert events and events[-1][0] == "result", events
    assert [n for n, _, _ in events[:-1] if n not in ("stdout", "stderr")] == []
    return events[:-1], events[-1][1]


def test_output_arrives_as_written(api):
    """A program that prints, sleeps 2 s and prints: the first event comes
    at least 1.5 s before the second, through nginx."""
    events, result = stream(api, dict(image=PYTHON, cmd=[
        "python3", "-u", "-c",
        "import sys, time; sys.stdout.write('first\\n'); time.sleep(2); sys.stdout.write('second\\n')"]))
    out = [(d["data"], t) for n, d, t in events if n == "stdout"]
    assert [d for d, _ in out] == ["first\n", "second\n"]
    assert out[1][1] - out[0][1] >= 1.5, out
    assert result["stdout"] == "first\nsecond\n" and result["exit_code"] == 0
    assert result["id"].startswith("r_") and result["image"] == PYTHON


def test_streams_and_result_agree(api):
    events, result = stream(api, sh("echo out; echo err >&2; printf 'more'; exit 3"))
    assert joined(events, "stdout") == result["stdout"] == "out\nmore"
    assert joined(events, "stderr") == result["stderr"] == "err\n"
    assert result["exit_code"] == 3
    # GET /runs/{id} holds the same result.
    status, body, _, _ = api.request("GET", f"/runs/{result['id']}")
    assert status == 200 and body["stdout"] == result["stdout"]


def test_characters_cut_between_writes(api):
    """A character written in two pieces a second apart is one character in
    the stream; bytes that are no UTF-8 become U+FFFD, as in the result."""
    events, result = stream(api, sh(r"printf '\342\202'; sleep 1; printf '\254 ok \377\n'"))
    assert joined(events, "stdout") == result["stdout"] == "\u20ac ok \ufffd\n"
    # And a cut character the program never finished still ends the stream.
    events, result = stream(api, sh(r"printf 'x\342\202'"))
    assert joined(events, "stdout") == result["stdout"] == "x\ufffd\ufffd"


def test_output_cap_holds(api):
    """Streamed output stops at output_limit_bytes (64 KiB here), as the
    result's does, also within a read that crosses it (the 2 bytes first
    put every later block's end off the limit)."""
    events, result = stream(api, sh("echo x; head -c 300000 /dev/zero | tr '\\0' a; echo done >&2"))
    assert result["stdout_truncated"] is True
    assert joined(events, "stdout") == result["stdout"] == "x\n" + "a" * 65534
    assert joined(events, "stderr") == "done\n"


def test_timeout_in_a_stream(api):
    events, result = stream(api, dict(sh("echo start; sleep 30"), limits={"wall_clock_secs": 1}))
    assert joined(events, "stdout") == "start\n"
    assert result["timed_out"] is True and result["exit_code"] == 137


def test_multipart_run_streams(api):
    body, ctype = multipart([
        ("request", None, json.dumps(sh("cat /w/in.txt")).encode()),
        ("/w/in.txt", "in.txt", b"uploaded\n")])
    ev = Events(api, None, body=body, ctype=ctype)
    assert ev.status == 200
    events = ev.all()
    assert events[-1][0] == "result" and events[-1][1]["stdout"] == "uploaded\n"
    assert joined(events[:-1], "stdout") == "uploaded\n"


@pytest.mark.parametrize("accept, streamed", [
    ("text/event-stream", True),
    ("application/json, text/event-stream;q=0.5", True),
    ("TEXT/EVENT-STREAM", True),
    ("text/event-stream;q=0", False),
    ("*/*", False),
    ("application/json", False),
])
def test_accept_decides(api, accept, streamed):
    ev = Events(api, sh("echo hi"), accept=accept)
    assert ev.status == 200
    ctype = ev.resp.getheader("Content-Type")
    if streamed:
        assert ctype.startswith("text/event-stream")
        events = ev.all()
        assert events[-1][1]["stdout"] == "hi\n"
    else:
        assert ctype.startswith("application/json")
        assert json.loads(ev.resp.read())["stdout"] == "hi\n"
        ev.close()


def test_errors_before_the_run_are_json(api):
    """An error before the program starts is an ordinary JSON error."""
    for req, status, code in [
            (dict(image="localhost:5000/boxer/absent:1", cmd=["true"]), 404, "image_not_found"),
            (dict(image=BUSYBOX, cmd=["true"], limits={"memory_mb": 1}), 400, "invalid_request")]:
        ev = Events(api, req)
        assert ev.status == status
        assert ev.resp.getheader("Content-Type").startswith("application/json")
        assert json.loads(ev.resp.read())["error"]["code"] == code
        ev.close()


def test_client_gone_mid_stream_ends_the_run(api):
    """A client that hangs up after the first event: the run is killed and
    nothing of it is left within seconds."""
    ev = Events(api, sh("echo begun; sleep 60"))
    name, data, _ = ev.next()
    assert (name, data["data"]) == ("stdout", "begun\n")
    ev.conn.sock.shutdown(socket.SHUT_RDWR)
    ev.close()
    gone_at = time.monotonic()
    while api.run_processes():
        assert time.monotonic() - gone_at < 10, "the executor still runs the abandoned run"
        time.sleep(0.1)
    assert settled(api, timeout=10) == []


def test_reader_that_stops_reading(make_stack):
    """A client that stops reading a program's endless output cannot keep
    the program past its wall clock: the run ends, and nothing is left."""
    s = make_stack({"output_limit_bytes": 64 * 1024 * 1024,
                    "max_limits": {"memory_mb": 1024, "wall_clock_secs": 60, "cpu_cores": 2,
                                   "pids_limit": 256, "nofile": 4096}}).start()
    c = socket.create_connection((s.host, s.port))
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    body = json.dumps(dict(sh("yes streamed-output-line"), limits={"wall_clock_secs": 2})).encode()
    c.sendall(b"POST /run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Accept: text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    c.recv(1024)
    try:
        # Wall clock 2 s (+ 2 s grace), then the executor gives up on the
        # worker; the bound below leaves room for a loaded machine.
        deadline = time.monotonic() + 20
        while s.run_processes():
            assert time.monotonic() < deadline, "a stalled reader holds its run"
            time.sleep(0.5)
    finally:
        c.close()
    assert wait_no_leftovers(s.home, s.runsc_root, timeout=15) == []


def test_executor_gone_mid_stream_is_an_error_event(make_stack):
    """Once the 200 is out, a failure is the stream's last event."""
    s = make_stack().start()
    ev = Events(s, sh("echo begun; sleep 60"))
    assert ev.next()[0] == "stdout"
    os.kill(s.executor_server_pid(), signal.SIGKILL)
    events = ev.all()
    assert [n for n, _, _ in events] == ["error"]
    assert events[0][1]["error"]["code"] == "runtime_unavailable"


def test_warm_sandbox_streams(make_stack):
    """The same through boxer-init, in a pool sandbox."""
    s = make_stack(warm_config(PYTHON, size=1)).start()
    s.run(image=PYTHON, cmd=["true"])
    wait_warm(s)
    events, result = stream(s, dict(image=PYTHON, cmd=[
        "python3", "-u", "-c",
        "import sys, time; sys.stdout.write('first\\n'); time.sleep(2); "
        "sys.stderr.write('second\\n')"]))
    assert [(n, d["data"]) for n, d, _ in events] == [("stdout", "first\n"),
                                                      ("stderr", "second\n")]
    assert events[1][2] - events[0][2] >= 1.5
    assert result["stdout"] == "first\n" and result["stderr"] == "second\n"
    # Hanging up mid-stream ends the warm run too.
    ev = Events(s, dict(image=PYTHON, cmd=["python3", "-u", "-c",
                                           "import time; print('x'); time.sleep(60)"]))
    assert ev.next()[0] == "stdout"
    ev.close()
    assert wait_no_leftovers(s.home, s.runsc_root, pool=s) == []


def test_batch_streams(api):
    """Each run's output with its index as it comes, each run's end as a
    "run" event, then the whole answer."""
    req = dict(image=PYTHON, parallelism=2, runs=[
        dict(cmd=["python3", "-u", "-c",
                  "import sys, time; sys.stdout.write('a0\\n'); time.sleep(2); sys.stdout.write('b0\\n')"]),
        dict(cmd=["sh", "-c", "echo a1; echo e1 >&2; exit 3"]),
        dict(cmd=["sh", "-c", r"printf '\342\202'; sleep 1; printf '\254'"]),
    ])
    ev = Events(api, req, path="/batch")
    assert ev.status == 200
    events = ev.all()
    names = [n for n, _, _ in events]
    assert names[-1] == "result" and names.count("run") == 3, names
    result = events[-1][1]
    assert result["id"].startswith("b_") and len(result["results"]) == 3
    for i, r in enumerate(result["results"]):
        out = "".join(d["data"] for n, d, _ in events if n == "stdout" and d["index"] == i)
        err = "".join(d["data"] for n, d, _ in events if n == "stderr" and d["index"] == i)
        assert (out, err) == (r["stdout"], r["stderr"]), i
        # Its "run" event is its entry of the answer, after all its output.
        at = next(k for k, (n, d, _) in enumerate(events) if n == "run" and d["index"] == i)
        assert events[at][1] == r
        assert all(not (n in ("stdout", "stderr") and d["index"] == i) for n, d, _ in events[at:])
    assert result["results"][0]["stdout"] == "a0\nb0\n"
    assert result["results"][1]["exit_code"] == 3
    assert result["results"][2]["stdout"] == "\u20ac"
    # The runs' output came as it was written: run 1 ended while run 0 slept.
    first = {d["data"]: t for n, d, t in events if n == "stdout" and d["index"] == 0}
    assert first["b0\n"] - first["a0\n"] >= 1.5
    run1_end = next(t for n, d, t in events if n == "run" and d["index"] == 1)
    assert run1_end < first["b0\n"]


def test_batch_stream_errors_and_hang_up(api):
    """An error before the batch starts is JSON; a client that hangs up
    mid-batch ends it, and nothing is left."""
    ev = Events(api, dict(image="localhost:5000/boxer/absent:1", runs=[dict(cmd=["true"])]),
                path="/batch")
    assert ev.status == 404
    assert json.loads(ev.resp.read())["error"]["code"] == "image_not_found"
    ev.close()
    ev = Events(api, dict(image=BUSYBOX, runs=[dict(cmd=["sh", "-c", "echo begun; sleep 60"])]),
                path="/batch")
    name, data, _ = ev.next()
    assert (name, data) == ("stdout", {"index": 0, "data": "begun\n"})
    ev.conn.sock.shutdown(socket.SHUT_RDWR)
    ev.close()
    gone_at = time.monotonic()
    while api.run_processes():
        assert time.monotonic() - gone_at < 10, "the executor still runs the abandoned batch"
        time.sleep(0.1)
    assert settled(api, timeout=10) == []
