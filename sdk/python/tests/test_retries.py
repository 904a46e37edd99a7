"""Retries and the error paths a real server cannot easily be made to take
(resets, a 500, a non-API answer), through httpx.MockTransport; the retry
on `503 busy` also against a real server that answers it (a sandbox subnet
with room for one run), and on `429 too_many_requests` in test_keys.py.
Everything else is tested against the real server."""

import asyncio
import json
import os
import threading
import time

import httpx
import pytest

import boxer

RESULT = {
    "id": "r_1", "image": "img", "image_digest": "sha256:" + "0" * 64, "exit_code": 0,
    "signal": None, "timed_out": False, "oom_killed": False, "stdout": "ok\n", "stderr": "",
    "stdout_truncated": False, "stderr_truncated": False, "wall_ms": 5, "outputs": [],
    "outputs_truncated": False, "started_at": "2026-11-22T10:00:00Z",
    "finished_at": "2026-11-22T10:00:00Z",
}
HEALTH = {"status": "ok", "runsc_version": "v", "platform": "systrap"}


def error(status, code, headers=None):
    return httpx.Response(status, headers=headers or {},
                          json={"error": {"code": code, "message": f"{code} (request id q_1)"}})


class Server:
    """Answers from a script, one entry per request; records the requests."""

    def __init__(self, *script):
        self.script = list(script)
        self.seen = []

    def __call__(self, request):
        self.seen.append((request.method, request.url.path))
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return step


@pytest.fixture(params=["sync", "async"])
def mode(request):
    return request.param


def make(mode, server, **kw):
    transport = httpx.MockTransport(server)
    if mode == "sync":
        return boxer.BoxerClient("http://boxer.test", http_client=httpx.Client(transport=transport), **kw)
    return boxer.AsyncBoxerClient("http://boxer.test", http_client=httpx.AsyncClient(transport=transport), **kw)


def call(mode, fn, *args, **kw):
    if mode == "sync":
        return fn(*args, **kw)
    return asyncio.run(fn(*args, **kw))


def run(mode, client):
    return call(mode, client.run, "img", ["true"])


def test_busy_with_retry_after_is_retried_even_for_run(mode):
    s = Server(error(503, "busy", {"Retry-After": "0"}), error(503, "busy", {"Retry-After": "0"}),
               httpx.Response(200, json=RESULT))
    r = run(mode, make(mode, s))
    assert r.stdout == "ok\n"
    assert s.seen == [("POST", "/run")] * 3


def test_busy_gives_up_after_max_retries(mode):
    s = Server(error(503, "busy", {"Retry-After": "0"}))
    with pytest.raises(boxer.BusyError) as e:
        run(mode, make(mode, s, max_retries=1))
    assert len(s.seen) == 2
    assert e.value.retry_after == 0 and e.value.status_code == 503 and e.value.code == "busy"


def test_retry_after_too_long_is_not_waited_for(mode):
    s = Server(error(503, "busy", {"Retry-After": "120"}))
    with pytest.raises(boxer.BusyError) as e:
        run(mode, make(mode, s))
    assert len(s.seen) == 1 and e.value.retry_after == 120


def test_too_many_requests_with_retry_after_is_retried_even_for_run(mode):
    """429: the key's runs are at its max_concurrent_runs; like busy, the
    server did not start the run, so the default retries re-send it."""
    s = Server(error(429, "too_many_requests", {"Retry-After": "0"}),
               error(429, "too_many_requests", {"Retry-After": "0"}),
               httpx.Response(200, json=RESULT))
    assert run(mode, make(mode, s)).stdout == "ok\n"
    assert s.seen == [("POST", "/run")] * 3


def test_too_many_requests_gives_up_as_busy_does(mode):
    s = Server(error(429, "too_many_requests", {"Retry-After": "0"}))
    with pytest.raises(boxer.TooManyRequestsError) as e:
        run(mode, make(mode, s, max_retries=1))
    assert len(s.seen) == 2
    assert (e.value.status_code, e.value.code, e.value.retry_after) == (429, "too_many_requests", 0)
    s = Server(error(429, "too_many_requests", {"Retry-After": "61"}))
    with pytest.raises(boxer.TooManyRequestsError):
        run(mode, make(mode, s))
    assert len(s.seen) == 1
    s = Server(error(429, "too_many_requests"))
    with pytest.raises(boxer.TooManyRequestsError) as e:
        run(mode, make(mode, s))
    assert len(s.seen) == 1 and e.value.retry_after is None


def test_unauthorized_is_not_retried(mode):
    s = Server(error(401, "unauthorized", {"WWW-Authenticate": 'Bearer realm="boxer"',
                                           "Retry-After": "0"}))
    with pytest.raises(boxer.UnauthorizedError) as e:
        run(mode, make(mode, s))
    assert len(s.seen) == 1
    assert e.value.headers["www-authenticate"] == 'Bearer realm="boxer"'


def test_503_without_retry_after_is_not_retried(mode):
    s = Server(error(503, "runtime_unavailable"))
    with pytest.raises(boxer.RuntimeUnavailableError):
        call(mode, make(mode, s).health)
    assert len(s.seen) == 1


def test_connection_failure_before_sending_is_retried_even_for_run(mode):
    s = Server(httpx.ConnectError("refused"), httpx.Response(200, json=RESULT))
    assert run(mode, make(mode, s)).exit_code == 0
    assert s.seen == [("POST", "/run")] * 2


def test_run_that_may_have_started_is_never_resent(mode):
    s = Server(httpx.RemoteProtocolError("server disconnected"), httpx.Response(200, json=RESULT))
    with pytest.raises(boxer.BoxerConnectionError, match="connection failed") as e:
        run(mode, make(mode, s))
    assert not isinstance(e.value, boxer.BoxerTimeoutError)
    assert isinstance(e.value.__cause__, httpx.RemoteProtocolError)
    assert s.seen == [("POST", "/run")]


def test_run_read_timeout_is_not_resent(mode):
    s = Server(httpx.ReadTimeout("slow"), httpx.Response(200, json=RESULT))
    with pytest.raises(boxer.BoxerTimeoutError, match="wall-clock limit plus run_timeout_margin"):
        run(mode, make(mode, s))
    assert len(s.seen) == 1


BATCH = {"id": "b_" + "0" * 32, "image": "img", "image_digest": "sha256:" + "0" * 64,
         "results": [{**RESULT, "id": "b_" + "0" * 32 + "/0", "index": 0}]}


def batch(mode, client):
    return call(mode, client.batch, "img", [{"cmd": ["true"]}], parallelism=1)


def test_batch_is_retried_as_a_run_is(mode):
    """busy or 429 with Retry-After: the server started none of the runs; a
    connection never made: it never saw the batch. Both are sent again."""
    s = Server(error(503, "busy", {"Retry-After": "0"}),
               error(429, "too_many_requests", {"Retry-After": "0"}),
               httpx.ConnectError("refused"), httpx.Response(200, json=BATCH))
    b = batch(mode, make(mode, s, max_retries=3))
    assert b[0].stdout == "ok\n" and b[0].index == 0
    assert s.seen == [("POST", "/batch")] * 4
    s = Server(error(503, "busy", {"Retry-After": "0"}))
    with pytest.raises(boxer.BusyError):
        batch(mode, make(mode, s, max_retries=1))
    assert len(s.seen) == 2


def test_batch_that_may_have_started_is_never_resent(mode):
    s = Server(httpx.RemoteProtocolError("server disconnected"), httpx.Response(200, json=BATCH))
    with pytest.raises(boxer.BoxerConnectionError, match="connection failed"):
        batch(mode, make(mode, s))
    assert s.seen == [("POST", "/batch")]
    s = Server(httpx.ReadTimeout("slow"), httpx.Response(200, json=BATCH))
    with pytest.raises(boxer.BoxerTimeoutError,
                       match=r"no answer within 330 s \(ceil\(runs / parallelism\)"):
        batch(mode, make(mode, s))
    assert s.seen == [("POST", "/batch")]


def test_batch_upload_is_resent_after_a_reset(mode):
    """The upload before a batch is safe to repeat (a second copy expires
    like the first); the batch then goes once."""
    files = {"files": [{"id": "f_1", "name": "a", "size": 1, "sha256": "0" * 64}]}
    s = Server(httpx.RemoteProtocolError("reset"), httpx.Response(201, json=files),
               httpx.Response(200, json=BATCH))
    b = call(mode, make(mode, s).batch, "img", [{"cmd": ["cat", "/w/a"], "files": {"/w/a": b"x"}}])
    assert b[0].ok
    assert s.seen == [("POST", "/files"), ("POST", "/files"), ("POST", "/batch")]


def test_idempotent_request_is_resent_after_a_reset(mode):
    s = Server(httpx.RemoteProtocolError("reset"), httpx.Response(200, json=HEALTH))
    assert call(mode, make(mode, s).health).status == "ok"
    assert s.seen == [("GET", "/health")] * 2


def test_connection_failures_give_up(mode):
    s = Server(httpx.ConnectError("refused"))
    with pytest.raises(boxer.BoxerConnectionError, match="is Boxer running there"):
        call(mode, make(mode, s, max_retries=2).health)
    assert len(s.seen) == 3
    s = Server(httpx.ConnectError("refused"))
    with pytest.raises(boxer.BoxerConnectionError):
        call(mode, make(mode, s, max_retries=0).health)
    assert len(s.seen) == 1


def test_internal_error(mode):
    s = Server(error(500, "internal"))
    with pytest.raises(boxer.InternalServerError, match=r"q_1") as e:
        run(mode, make(mode, s))
    assert e.value.status_code == 500 and len(s.seen) == 1


def test_not_the_api(mode):
    s = Server(httpx.Response(200, html="<html>hi</html>"))
    with pytest.raises(boxer.InvalidResponseError, match="is the base URL a Boxer server"):
        call(mode, make(mode, s).health)


def test_requests_as_sent(mode):
    """What goes over the wire: JSON for a run without local files,
    multipart with a `request` part and one part per file otherwise."""
    bodies = []

    def handler(request):
        bodies.append(request)
        if request.url.path == "/files":
            return httpx.Response(201, json={"files": [
                {"id": "f_1", "name": "a.txt", "size": 1, "sha256": "0" * 64}]})
        return httpx.Response(200, json=RESULT)

    c = make(mode, handler, headers={"Authorization": "Bearer k"})
    call(mode, c.run, "img", ["cat"], stdin="x", limits=boxer.Limits(wall_clock_secs=3))
    req = bodies[-1]
    assert req.headers["content-type"] == "application/json"
    assert req.headers["authorization"] == "Bearer k"
    assert req.headers["user-agent"].startswith("boxer-sdk-python/")
    assert json.loads(req.content) == {"image": "img", "cmd": ["cat"], "stdin": "x",
                                       "limits": {"wall_clock_secs": 3}}
    # The HTTP timeout follows the run's wall clock.
    assert req.extensions["timeout"]["read"] == 3 + 300.0

    call(mode, c.run, "img", ["cat", "/w/a.txt"], files={"/w/a.txt": "hello"})
    req = bodies[-1]
    assert req.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = req.read()
    assert b'name="request"' in body and b'{"image":"img","cmd":["cat","/w/a.txt"]}' in body
    assert b'name="/w/a.txt"; filename="a.txt"' in body and b"hello" in body

    up = call(mode, c.upload, {"a.txt": b"x"})
    assert up == (boxer.UploadedFile("f_1", "a.txt", 1, "0" * 64),)
    assert b'filename="a.txt"' in bodies[-1].read()


def test_real_busy_is_retried(make_stack, mode):
    """A /30 sandbox subnet has one address for runs: while one `sandbox`
    run holds it, the server answers another `503 busy` with Retry-After
    (executor/ipam.c). The client waits and sends it again until the
    first run is over; without retries it gets BusyError."""
    from conftest import BUSYBOX, url_of

    port = int(os.environ.get("BOXER_TEST_PORT", "18080")) + 1
    s = make_stack({"sandbox_subnet": f"10.{port // 256}.{port % 256}.0/30"}, workers=2).start()
    leases = s.home / "network" / "leases"
    holder = threading.Thread(target=lambda: boxer.BoxerClient(url_of(s)).run(
        BUSYBOX, ["sleep", "4"], network="sandbox"))
    holder.start()
    deadline = time.monotonic() + 30
    while not (leases.exists() and any(not p.name.startswith(".") for p in leases.iterdir())):
        assert time.monotonic() < deadline, "the first run never took its address"
        time.sleep(0.05)

    statuses = []

    def record(response):
        statuses.append(response.status_code)

    async def arecord(response):
        record(response)

    def client(retries):
        if mode == "sync":
            return boxer.BoxerClient(url_of(s), max_retries=retries, http_client=httpx.Client(
                event_hooks={"response": [record]}, timeout=60))
        return boxer.AsyncBoxerClient(url_of(s), max_retries=retries, http_client=httpx.AsyncClient(
            event_hooks={"response": [arecord]}, timeout=60))

    try:
        with pytest.raises(boxer.BusyError):
            call(mode, client(0).run, BUSYBOX, ["echo", "no"], network="sandbox")
        assert statuses == [503]
        statuses.clear()
        r = call(mode, client(20).run, BUSYBOX, ["echo", "ok"], network="sandbox")
    finally:
        holder.join(timeout=60)
    assert r.stdout == "ok\n" and r.exit_code == 0
    # Busy at least once (the first run still held the address), then served.
    assert statuses[0] == 503 and statuses[-1] == 200 and set(statuses) == {503, 200}, statuses
