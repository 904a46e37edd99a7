"""API keys: `api_key=` / $BOXER_API_KEY as `Authorization: Bearer`, the
key kept out of reprs and messages (through httpx.MockTransport: nothing is
sent), and against a real stack with keys configured (as
tests/integration/test_keys.py's): 401 without a key or with a wrong one,
403 for what a key may not do, 429 over the key's max_concurrent_runs,
retried after Retry-After. Each real-stack test runs with the sync and the
async client.

Ports: BOXER_TEST_PORT+31 (this module's stack)."""

import asyncio
import hashlib
import os
import time

import httpx
import pytest

import boxer
from boxer import _core as core
from conftest import BUSYBOX, Awaitable, it, maybe_await, url_of

PORT = int(os.environ.get("BOXER_TEST_PORT", "18080")) + 31

# Made up for the test, as `openssl rand -hex 32` would; only their hashes
# go into the config.
ALICE = "alice-" + "6a0d3f91" * 6
BOB = "bob-" + "c47e2b05" * 6
WRONG = "x" * len(ALICE)


def sha(key):
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch):
    """The key of whoever runs the tests must not decide them."""
    monkeypatch.delenv("BOXER_API_KEY", raising=False)


# --- without a server -----------------------------------------------------------


RESULT = {
    "id": "r_1", "image": "img", "image_digest": "sha256:" + "0" * 64, "exit_code": 0,
    "signal": None, "timed_out": False, "oom_killed": False, "stdout": "ok\n", "stderr": "",
    "stdout_truncated": False, "stderr_truncated": False, "wall_ms": 5, "outputs": [],
    "outputs_truncated": False, "started_at": "2026-11-22T10:00:00Z",
    "finished_at": "2026-11-22T10:00:00Z",
}


class Recorder:
    """A server that records each request's Authorization lines and answers
    `answer` (default: a run's result)."""

    def __init__(self, answer=None):
        self.auth = []
        self.answer = answer

    def __call__(self, request):
        self.auth.append(request.headers.get_list("authorization"))
        if self.answer is not None:
            return self.answer
        if request.url.path == "/health":
            return httpx.Response(200, json={"status": "ok"})
        if request.url.path == "/images":
            return httpx.Response(200, json={"images": []})
        return httpx.Response(200, json=RESULT)


@pytest.fixture(params=["sync", "async"])
def mode(request):
    return request.param


def mocked(mode, server, **kw):
    # MockTransport: nothing leaves the process.
    transport = httpx.MockTransport(server)
    if mode == "sync":
        return boxer.BoxerClient("http://127.0.0.1:1", http_client=httpx.Client(transport=transport),
                                 **kw)
    return boxer.AsyncBoxerClient("http://127.0.0.1:1",
                                  http_client=httpx.AsyncClient(transport=transport), **kw)


def call(mode, fn, *args, **kw):
    if mode == "sync":
        return fn(*args, **kw)
    return asyncio.run(fn(*args, **kw))


def test_the_key_goes_with_every_request(mode):
    s = Recorder()
    c = mocked(mode, s, api_key=ALICE)
    call(mode, c.run, "img", ["true"])
    call(mode, c.health)
    call(mode, c.images.list)
    assert s.auth == [[f"Bearer {ALICE}"]] * 3
    # Without a key (and none in the environment), no Authorization at all.
    s = Recorder()
    call(mode, mocked(mode, s).run, "img", ["true"])
    assert s.auth == [[]]


def test_the_key_from_the_environment(mode, monkeypatch):
    monkeypatch.setenv("BOXER_API_KEY", BOB)
    s = Recorder()
    call(mode, mocked(mode, s).run, "img", ["true"])
    # The argument wins over the environment.
    call(mode, mocked(mode, s, api_key=ALICE).run, "img", ["true"])
    assert s.auth == [[f"Bearer {BOB}"], [f"Bearer {ALICE}"]]
    # Empty counts as unset.
    monkeypatch.setenv("BOXER_API_KEY", "")
    s = Recorder()
    call(mode, mocked(mode, s).run, "img", ["true"])
    assert s.auth == [[]]


def test_an_authorization_header_still_works(mode, monkeypatch):
    """headers={"Authorization": ...} is sent as given, also over
    $BOXER_API_KEY; api_key= wins over it, whatever the header's case, and
    only one Authorization line is sent."""
    monkeypatch.setenv("BOXER_API_KEY", BOB)
    s = Recorder()
    call(mode, mocked(mode, s, headers={"Authorization": "Token t"}).run, "img", ["true"])
    call(mode, mocked(mode, s, headers={"authorization": "Token t"}).run, "img", ["true"])
    call(mode, mocked(mode, s, headers={"authorization": "Token t", "X-A": "1"},
                      api_key=ALICE).run, "img", ["true"])
    assert s.auth == [["Token t"], ["Token t"], [f"Bearer {ALICE}"]]


@pytest.mark.parametrize("bad, message", [
    ("", "api_key is empty; pass the key"),
    (ALICE + "\n", f"api_key has whitespace or a control character at position {len(ALICE)} "
                   f"of {len(ALICE) + 1}; strip it (a key read from a file often ends with a newline)"),
    (" " + ALICE, "api_key has whitespace or a control character at position 0"),
    (ALICE[:5] + "\t" + ALICE[5:], "api_key has whitespace or a control character at position 5"),
    (ALICE[:3] + "\x00", "api_key has whitespace or a control character at position 3"),
    (f"Bearer {ALICE}", "api_key must be the key alone, without 'Bearer ': the client adds it"),
    (ALICE + "\u00e9", f"api_key has a non-ASCII character at position {len(ALICE)}"),
])
def test_a_malformed_key_is_refused_without_being_shown(bad, message):
    for cls in (boxer.BoxerClient, boxer.AsyncBoxerClient):
        with pytest.raises(ValueError) as e:
            cls("http://127.0.0.1:1", api_key=bad)
        assert str(e.value).startswith(message), str(e.value)
        assert ALICE not in str(e.value) and ALICE[6:] not in str(e.value)


def test_a_malformed_key_in_the_environment_is_named_as_such(monkeypatch):
    monkeypatch.setenv("BOXER_API_KEY", ALICE + "\n")
    with pytest.raises(ValueError) as e:
        boxer.BoxerClient("http://127.0.0.1:1")
    assert str(e.value).startswith(f"$BOXER_API_KEY has whitespace or a control character at "
                                   f"position {len(ALICE)}")
    assert ALICE not in str(e.value)
    with pytest.raises(TypeError, match="api_key must be a string"):
        boxer.AsyncBoxerClient("http://127.0.0.1:1", api_key=b"key")


def test_the_key_is_in_no_repr(mode, monkeypatch):
    for kw in ({"api_key": ALICE}, {"headers": {"Authorization": f"Bearer {ALICE}"}}):
        c = mocked(mode, Recorder(), **kw)
        assert repr(c) == f"{type(c).__name__}('http://127.0.0.1:1')"
        assert ALICE not in repr(c._opts) and "headers" not in repr(c._opts)
        assert repr(c._opts).startswith("Options(base_url='http://127.0.0.1:1', ")
    monkeypatch.setenv("BOXER_API_KEY", ALICE)
    assert ALICE not in repr(mocked(mode, Recorder())._opts)


def test_the_key_is_in_no_error(mode):
    c = mocked(mode, Recorder(httpx.Response(401, json={"error": {
        "code": "unauthorized", "message": "unknown API key; check the key"}})), api_key=ALICE)
    with pytest.raises(boxer.UnauthorizedError) as e:
        call(mode, c.run, "img", ["true"])
    assert str(e.value) == "POST /run: 401 unauthorized: unknown API key; check the key"
    assert ALICE not in repr(e.value) and ALICE not in repr(vars(e.value))

    def refuse(request):
        raise httpx.ConnectError("refused")
    with pytest.raises(boxer.BoxerConnectionError) as e:
        call(mode, mocked(mode, refuse, api_key=ALICE, max_retries=0).health)
    assert ALICE not in str(e.value) and ALICE not in repr(vars(e.value))


def test_make_options_takes_the_key_from_the_argument_then_headers_then_environment():
    kw = dict(timeout=1.0, run_timeout_margin=1.0, default_wall_clock_secs=30, pull_timeout=1.0,
              max_retries=0, max_retry_after=1.0)
    env = {"BOXER_API_KEY": BOB}

    def auth(**more):
        headers = core.make_options("http://127.0.0.1:1", **kw, **more).headers
        return {k: v for k, v in headers.items() if k.lower() == "authorization"}
    assert auth(api_key=None, headers=None, environ={}) == {}
    assert auth(api_key=None, headers=None, environ=env) == {"Authorization": f"Bearer {BOB}"}
    assert auth(api_key=ALICE, headers=None, environ=env) == {"Authorization": f"Bearer {ALICE}"}
    assert auth(api_key=None, headers={"AUTHORIZATION": "x"}, environ=env) == {"AUTHORIZATION": "x"}
    assert auth(api_key=ALICE, headers={"AUTHORIZATION": "x"}, environ=env) == \
        {"Authorization": f"Bearer {ALICE}"}


# --- a real stack with keys -------------------------------------------------------


@pytest.fixture(scope="module")
def keyed():
    it.check_prerequisites()
    s = it.Stack(PORT, {
        "api_keys": [
            # Narrow: small limits, one run at a time, no networks, no pulls.
            {"name": "alice", "sha256": sha(ALICE), "max_concurrent_runs": 1,
             "max_limits": {"memory_mb": 128}},
            {"name": "bob", "sha256": sha(BOB), "allow_images": True},
        ],
    }).start()
    try:
        yield s
    finally:
        left = s.destroy()
        assert not left, f"left behind: {left}"


@pytest.fixture(params=["sync", "async"])
async def connect(request, keyed):
    """Makes clients of the keyed stack, sync (wrapped as in conftest's `both`)
    or async; with statuses=[], the status of every answer is appended to
    it. After the test, nothing of its runs may remain."""
    sync = request.param == "sync"
    opened = []

    def connect(statuses=None, **kw):
        if statuses is not None:
            def record(response):
                statuses.append(response.status_code)

            async def arecord(response):
                record(response)
            http = (httpx.Client(event_hooks={"response": [record]}) if sync else
                    httpx.AsyncClient(event_hooks={"response": [arecord]}))
            opened.append(http)
            kw["http_client"] = http
        c = (boxer.BoxerClient if sync else boxer.AsyncBoxerClient)(url_of(keyed), **kw)
        opened.append(c)
        return Awaitable(c) if sync else c

    yield connect
    for c in opened:
        await maybe_await(c.aclose() if isinstance(c, httpx.AsyncClient) else c.close())
    left = it.wait_no_leftovers(keyed.home, keyed.runsc_root)
    assert not left, f"left behind: {left}"


def in_background(client, *args, **kw):
    """client.run(...) as a task that leaves the event loop free: the sync
    client's in a thread."""
    if isinstance(client, Awaitable):
        return asyncio.create_task(asyncio.to_thread(client._target.run, *args, **kw))
    return asyncio.create_task(client.run(*args, **kw))


async def test_a_client_with_its_key_runs(connect):
    alice = connect(api_key=ALICE)
    r = await alice.run(BUSYBOX, ["echo", "hi"])
    assert (r.stdout, r.exit_code) == ("hi\n", 0)
    assert (await alice.get_run(r.id)).stdout == "hi\n"
    # The header given by hand works as before; another key's run is unknown to it.
    bob = connect(headers={"Authorization": f"Bearer {BOB}"})
    assert (await bob.run(BUSYBOX, ["echo", "bob"])).stdout == "bob\n"
    with pytest.raises(boxer.RunNotFoundError) as e:
        await bob.get_run(r.id)
    assert (e.value.status_code, e.value.code) == (404, "run_not_found")


async def test_no_key_is_unauthorized(connect):
    statuses = []
    c = connect(statuses=statuses)
    # The health check is public.
    assert (await c.health()).status == "ok"
    with pytest.raises(boxer.UnauthorizedError) as e:
        await c.run(BUSYBOX, ["echo", "hi"])
    assert (e.value.status_code, e.value.code) == (401, "unauthorized")
    assert e.value.message == "this server needs an API key: send 'Authorization: Bearer <key>'"
    assert e.value.headers["www-authenticate"] == 'Bearer realm="boxer"'
    # Not retried: waiting does not bring a key.
    assert statuses == [200, 401]
    with pytest.raises(boxer.UnauthorizedError):
        await c.images.list()
    with pytest.raises(boxer.UnauthorizedError):
        await c.upload({"a.txt": b"a"})


async def test_a_wrong_key_is_unauthorized(connect):
    c = connect(api_key=WRONG)
    with pytest.raises(boxer.UnauthorizedError) as e:
        await c.run(BUSYBOX, ["echo", "hi"])
    assert (e.value.status_code, e.value.code) == (401, "unauthorized")
    assert e.value.message == "unknown API key; check the key, or ask the operator for one"
    assert WRONG not in str(e.value) and WRONG not in repr(vars(e.value))
    # Nor is the hash the key.
    with pytest.raises(boxer.UnauthorizedError):
        await connect(api_key=sha(ALICE)).run(BUSYBOX, ["true"])


async def test_the_key_from_the_environment_is_used(connect, monkeypatch):
    monkeypatch.setenv("BOXER_API_KEY", BOB)
    r = await connect().run(BUSYBOX, ["echo", "from the environment"])
    assert (r.stdout, r.exit_code) == ("from the environment\n", 0)
    monkeypatch.setenv("BOXER_API_KEY", WRONG)
    with pytest.raises(boxer.UnauthorizedError):
        await connect().run(BUSYBOX, ["true"])
    # The argument wins over it.
    assert (await connect(api_key=BOB).run(BUSYBOX, ["echo", "arg"])).stdout == "arg\n"


async def test_what_a_key_may_not_do_is_forbidden(connect):
    alice = connect(api_key=ALICE)
    with pytest.raises(boxer.ForbiddenError) as e:
        await alice.run(BUSYBOX, ["true"], limits=boxer.Limits(memory_mb=256))
    assert (e.value.status_code, e.value.code) == (403, "forbidden")
    assert "limits.memory_mb of 256 is above the 128 this API key may use" in e.value.message
    with pytest.raises(boxer.ForbiddenError, match="may not pull images; ask the operator to "
                                                   "set allow_images") as e:
        await alice.images.pull(BUSYBOX)
    assert e.value.status_code == 403
    # Within its maximum it runs.
    r = await alice.run(BUSYBOX, ["echo", "ok"], limits={"memory_mb": 128})
    assert (r.stdout, r.exit_code) == ("ok\n", 0)


async def test_a_key_over_its_concurrent_runs(connect, keyed):
    """alice may have one run at a time: while `sleep 3` runs, another run
    is refused with 429 and Retry-After: 1. Without retries that is
    TooManyRequestsError; with them the client waits and sends it again
    until the first run is over."""
    holder = in_background(connect(api_key=ALICE), BUSYBOX, ["sleep", "3"])
    try:
        # Until the executor has admitted the first, the second may get in
        # first: wait for a run process.
        deadline = time.monotonic() + 20
        while not keyed.run_processes():
            assert not holder.done(), f"the first run ended early: {holder.result()}"
            assert time.monotonic() < deadline, "the first run never started"
            await asyncio.sleep(0.05)
        statuses = []
        with pytest.raises(boxer.TooManyRequestsError) as e:
            await connect(api_key=ALICE, max_retries=0, statuses=statuses).run(
                BUSYBOX, ["echo", "no"])
        assert (e.value.status_code, e.value.code, e.value.retry_after) == \
            (429, "too_many_requests", 1.0)
        assert "max_concurrent_runs" in e.value.message
        assert statuses == [429]
        statuses.clear()
        # Retry-After is 1 s: ten retries outlast what remains of `sleep 3`.
        r = await connect(api_key=ALICE, max_retries=10, statuses=statuses).run(
            BUSYBOX, ["echo", "after"])
    finally:
        first = await holder
    assert (r.stdout, r.exit_code) == ("after\n", 0)
    assert statuses[0] == 429 and statuses[-1] == 200 and set(statuses) == {429, 200}, statuses
    assert first.exit_code == 0 and not first.timed_out
