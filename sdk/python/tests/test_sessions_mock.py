"""Sessions without a Boxer server: every method of Session and
AsyncSession against httpx.MockTransport (what goes over the wire, how the
answers are read, errors, retries, closing). Each test runs with the sync
client (seen through the async API) and with the async one.
test_sessions.py runs the real stack."""

import asyncio
import dataclasses
import datetime as dt
import re

import httpx
import pytest

import boxer
from boxer import _core as core
from conftest import maybe_await
from session_helpers import IMAGE, Fake, Sync, error
from stream_helpers import RESULT, err, error_event, out, stream_response

@pytest.fixture(params=["sync", "async"])
def mode(request):
    return request.param


def make(mode, server, **kw):
    transport = httpx.MockTransport(server)
    if mode == "sync":
        return Sync(boxer.BoxerClient("http://boxer.test", run_timeout_margin=100.0,
                                      http_client=httpx.Client(transport=transport), **kw))
    return boxer.AsyncBoxerClient("http://boxer.test", run_timeout_margin=100.0,
                                  http_client=httpx.AsyncClient(transport=transport), **kw)


def result_class(mode):
    return boxer.RunResult if mode == "sync" else boxer.AsyncRunResult


async def events_of(stream):
    async with stream as events:
        return [e async for e in events]


# --- creating -----------------------------------------------------------------------


async def test_created_on_enter_with_every_field(mode):
    fake = Fake()
    c = make(mode, fake, api_key="k-1")
    s = c.session(IMAGE, limits=boxer.Limits(memory_mb=512, wall_clock_secs=7),
                  network="none", env={"A": "1"}, workdir="/w", idle_timeout_secs=60,
                  ttl_secs=600)
    assert fake.seen == [] and "not open" in repr(s)
    with pytest.raises(RuntimeError, match="not open"):
        s.id
    async with s as entered:
        assert entered is s
        assert re.fullmatch(r"s_[0-9a-f]{32}", s.id) and "open" in repr(s)
        create = fake.seen[0]
        assert (create.method, create.path) == ("POST", "/sessions")
        assert create.json == {"image": IMAGE, "limits": {"memory_mb": 512, "wall_clock_secs": 7},
                               "network": "none", "env": {"A": "1"}, "workdir": "/w",
                               "idle_timeout_secs": 60, "ttl_secs": 600}
        assert create.headers["content-type"] == "application/json"
        assert create.headers["authorization"] == "Bearer k-1"
        # Creating may pull the image: awaited for run_timeout_margin.
        assert create.read_timeout == 100.0
    assert fake.requests() == [("POST", "/sessions"), ("DELETE", f"/sessions/{s.id}")]
    assert fake.seen[1].headers["authorization"] == "Bearer k-1"
    assert "closed" in repr(s)


async def test_minimal_create_and_dict_limits(mode):
    fake = Fake()
    c = make(mode, fake)
    async with c.session(IMAGE):
        pass
    async with c.session(IMAGE, limits={"cpu_cores": 0.5}):
        pass
    assert fake.seen[0].json == {"image": IMAGE}
    assert fake.seen[2].json == {"image": IMAGE, "limits": {"cpu_cores": 0.5}}


async def test_open_without_with(mode):
    fake = Fake()
    c = make(mode, fake)
    s = await c.session(IMAGE).open()
    sid = s.id
    assert await s.open() is s    # opening again sends nothing
    assert fake.requests() == [("POST", "/sessions")]
    await s.close()
    await s.close()
    assert fake.requests() == [("POST", "/sessions"), ("DELETE", f"/sessions/{sid}")]
    with pytest.raises(RuntimeError, match="closed"):
        await s.open()


async def test_argument_mistakes_send_nothing(mode):
    fake = Fake()
    c = make(mode, fake)
    with pytest.raises(TypeError, match="image"):
        c.session("")
    with pytest.raises(TypeError, match="idle_timeout_secs"):
        c.session(IMAGE, idle_timeout_secs=True)
    with pytest.raises(TypeError, match="ttl_secs"):
        c.session(IMAGE, ttl_secs=1.5)
    with pytest.raises(TypeError, match="limits"):
        c.session(IMAGE, limits=5)
    with pytest.raises(TypeError, match="env"):
        c.session(IMAGE, env={"A": 1})
    async with c.session(IMAGE) as s:
        with pytest.raises(TypeError, match=r"\['sh', '-c', 'ls'\]"):
            await s.exec("ls")
        with pytest.raises(TypeError, match="cmd is required"):
            await s.exec(None)
        with pytest.raises(ValueError, match="cmd is empty"):
            await s.exec([])
        with pytest.raises(TypeError, match="timeout_secs"):
            await s.exec(["true"], timeout_secs=2.5)
        with pytest.raises(TypeError, match="data"):
            await s.write_file("/a", 5)
    assert [m for m, _ in fake.requests()] == ["POST", "DELETE"]


async def test_create_is_never_sent_twice_once_it_may_have_arrived(mode):
    fake = Fake(httpx.ReadError("reset"))
    c = make(mode, fake)
    with pytest.raises(boxer.BoxerConnectionError):
        async with c.session(IMAGE):
            pass
    assert fake.requests() == [("POST", "/sessions")]
    fake = Fake(httpx.ReadTimeout("late"))
    with pytest.raises(boxer.BoxerTimeoutError, match="run_timeout_margin"):
        async with make(mode, fake).session(IMAGE):
            pass
    assert fake.requests() == [("POST", "/sessions")]


async def test_create_busy_is_retried_then_raised(mode):
    """Over max_sessions: 503 busy with Retry-After; the server made no
    session, so it is asked again, and BusyError raised in the end."""
    busy = error(503, "busy", {"Retry-After": "0"})
    fake = Fake(busy, busy)
    async with make(mode, fake).session(IMAGE) as s:
        assert s.id
    assert fake.requests() == [("POST", "/sessions")] * 3 + [("DELETE", f"/sessions/{s.id}")]
    fake = Fake(busy, busy, busy)
    with pytest.raises(boxer.BusyError) as e:
        async with make(mode, fake, max_retries=2).session(IMAGE):
            raise AssertionError("never entered")
    assert e.value.retry_after == 0
    assert fake.requests() == [("POST", "/sessions")] * 3   # no DELETE: nothing was made
    fake = Fake(error(400, "invalid_request"))
    with pytest.raises(boxer.BadRequestError):
        async with make(mode, fake).session(IMAGE, network="host"):
            pass


# --- exec --------------------------------------------------------------------------


async def test_exec_request_and_result(mode):
    fake = Fake()
    async with make(mode, fake).session(IMAGE) as s:
        r = await s.exec(("python3", "-c", "print(1)"), env={"B": "2"}, workdir="/tmp",
                         stdin=b"h\xc3\xa9", timeout_secs=5)
        req = fake.seen[-1]
        assert (req.method, req.path) == ("POST", f"/sessions/{s.id}/exec")
        assert req.json == {"cmd": ["python3", "-c", "print(1)"], "env": {"B": "2"},
                            "workdir": "/tmp", "stdin": "h\u00e9", "timeout_secs": 5}
        assert req.headers["content-type"] == "application/json"
        assert req.headers["accept"] == "application/json"
        assert type(r) is result_class(mode)
        assert (r.id, r.stdout, r.exit_code, r.ok) == (f"{s.id}/1", "python3 -c print(1)\n", 0,
                                                       True)
        r2 = await s.exec(["true"])
        assert fake.seen[-1].json == {"cmd": ["true"]}
        assert r2.id == f"{s.id}/2"
        # Execs keep no outputs: download() says where the files are.
        with pytest.raises(RuntimeError, match="read_file"):
            await maybe_await(r.download("x"))
        assert fake.requests("GET") == []


async def test_exec_read_timeout(mode):
    """The exec's timeout_secs, else the session's wall clock (the server's
    answer), else the one asked for, else the client's default; plus
    run_timeout_margin (100 here). timeout= overrides it."""
    fake = Fake()
    c = make(mode, fake)
    async with c.session(IMAGE, limits={"wall_clock_secs": 7}) as s:
        await s.exec(["a"])
        assert fake.seen[-1].read_timeout == 107.0
        await s.exec(["a"], timeout_secs=3)
        assert fake.seen[-1].read_timeout == 103.0
        await s.exec(["a"], timeout_secs=3, timeout=1.5)
        assert fake.seen[-1].read_timeout == 1.5
    async with c.session(IMAGE) as s:   # the server's default: 30
        await s.exec(["a"])
        assert fake.seen[-1].read_timeout == 130.0
    # A server whose answer lacks limits: the one asked for, else the default.
    created = {"id": "s_1", "image": IMAGE, "idle_timeout_secs": 300, "ttl_secs": 3600,
               "execs": 0}
    fake.script = [httpx.Response(201, json=created), httpx.Response(200, json=RESULT),
                   httpx.Response(204)]
    async with c.session(IMAGE, limits=boxer.Limits(wall_clock_secs=9)) as s:
        await s.exec(["a"])
        assert fake.seen[-1].read_timeout == 109.0
    fake.script = [httpx.Response(201, json=created), httpx.Response(200, json=RESULT),
                   httpx.Response(204)]
    async with make(mode, fake, default_wall_clock_secs=12).session(IMAGE) as s:
        await s.exec(["a"])
        assert fake.seen[-1].read_timeout == 112.0


async def test_exec_is_never_sent_twice_once_it_may_have_arrived(mode):
    fake = Fake(None, httpx.RemoteProtocolError("cut"))
    async with make(mode, fake).session(IMAGE) as s:
        with pytest.raises(boxer.BoxerConnectionError):
            await s.exec(["touch", "/w/x"])
        assert fake.requests("POST") == [("POST", "/sessions"), ("POST", f"/sessions/{s.id}/exec")]
        fake.script = [httpx.ReadTimeout("late")]
        with pytest.raises(boxer.BoxerTimeoutError, match="timeout_secs"):
            await s.exec(["sleep", "9"])
        assert len(fake.requests("POST")) == 3
        # A connection never made: the server never saw it, so it is sent again.
        fake.script = [httpx.ConnectError("refused")]
        assert (await s.exec(["echo", "hi"])).stdout == "echo hi\n"
        assert len(fake.requests("POST")) == 5


@pytest.mark.parametrize("status, code, cls", [
    (404, "session_not_found", boxer.SessionNotFoundError),
    (503, "busy", boxer.BusyError),
    (400, "invalid_request", boxer.BadRequestError),
    (503, "runtime_unavailable", boxer.RuntimeUnavailableError),
])
async def test_exec_errors(mode, status, code, cls):
    fake = Fake()
    async with make(mode, fake, max_retries=0).session(IMAGE) as s:
        fake.script = [error(status, code)]
        with pytest.raises(cls) as e:
            await s.exec(["true"])
    assert (e.value.status_code, e.value.code) == (status, code)
    assert e.value.path == f"/sessions/{s.id}/exec" and e.value.method == "POST"


# --- exec_stream ---------------------------------------------------------------------


async def test_exec_stream_events(mode):
    fake = Fake()
    async with make(mode, fake).session(IMAGE, limits={"wall_clock_secs": 4}) as s:
        stream = s.exec_stream(["echo", "hi"], env={"A": "1"}, stdin="x", timeout_secs=2)
        assert [m for m, _ in fake.requests()] == ["POST"]   # not sent yet
        events = await events_of(stream)
        req = fake.seen[-1]
        assert (req.method, req.path) == ("POST", f"/sessions/{s.id}/exec")
        assert req.headers.get_list("accept") == ["text/event-stream"]
        assert req.json == {"cmd": ["echo", "hi"], "env": {"A": "1"}, "stdin": "x",
                            "timeout_secs": 2}
        assert req.read_timeout == 102.0
        assert events[:2] == [boxer.StdoutEvent("echo "), boxer.StdoutEvent("hi\n")]
        assert isinstance(events[2], boxer.ResultEvent) and len(events) == 3
        r = events[2].result
        assert type(r) is result_class(mode) and r.id == f"{s.id}/1"
        with pytest.raises(RuntimeError, match="read_file"):
            await maybe_await(r.download("x"))


async def test_exec_stream_error_event_and_refusal(mode):
    fake = Fake()
    async with make(mode, fake).session(IMAGE) as s:
        fake.script = [stream_response(out("begun\n"), err("e\n"),
                                       error_event("runtime_unavailable"))]
        got = []
        with pytest.raises(boxer.RuntimeUnavailableError):
            async with s.exec_stream(["x"]) as events:
                async for e in events:
                    got.append(e)
        assert got == [boxer.StdoutEvent("begun\n"), boxer.StderrEvent("e\n")]
        # Refused before it began: a JSON error, raised before any event.
        fake.script = [error(404, "session_not_found")]
        with pytest.raises(boxer.SessionNotFoundError):
            await events_of(s.exec_stream(["x"]))
        # A server that answers with the whole result: its output, then it.
        fake.script = [httpx.Response(200, json={**RESULT, "id": f"{s.id}/3"})]
        events = await events_of(s.exec_stream(["x"]))
        assert events[:2] == [boxer.StdoutEvent("a\nb\n"), boxer.StderrEvent("oops\n")]
        assert events[2].result.id == f"{s.id}/3"
        # Cut before its result.
        fake.script = [stream_response(out("a"))]
        with pytest.raises(boxer.BoxerConnectionError, match="ended before"):
            await events_of(s.exec_stream(["x"]))


async def test_exec_stream_closed_early_closes_the_connection(mode):
    fake = Fake()
    async with make(mode, fake).session(IMAGE) as s:
        resp, body = stream_response(out("1\n"), out("2\n"), block=True)
        fake.script = [(resp, body)]
        async with s.exec_stream(["x"]) as events:
            async for e in events:
                assert e == boxer.StdoutEvent("1\n")
                break
        assert body.closed


# --- files ---------------------------------------------------------------------------


async def test_write_file_request(mode, tmp_path):
    fake = Fake()
    (tmp_path / "local.py").write_bytes(b"print(1)\n")
    async with make(mode, fake).session(IMAGE) as s:
        assert await s.write_file("/workspace/in.txt", b"\x00\xffbytes") is None
        put = fake.seen[-1]
        assert (put.method, put.path) == ("PUT", f"/sessions/{s.id}/files/workspace/in.txt")
        assert put.headers["content-type"] == "application/octet-stream"
        assert put.content == b"\x00\xffbytes"
        await s.write_file("/w/t.txt", "h\u00e9")                 # str: UTF-8
        assert fake.seen[-1].content == "h\u00e9".encode()
        await s.write_file("/w/m.py", tmp_path / "local.py")      # a local file
        assert fake.seen[-1].content == b"print(1)\n"
        await s.write_file("/w/b", bytearray(b"ba"))
        assert fake.seen[-1].content == b"ba"
        await s.write_file("/w/empty", b"")
        assert fake.seen[-1].content == b""
        assert fake.sessions[s.id]["files"] == {
            "/workspace/in.txt": b"\x00\xffbytes", "/w/t.txt": "h\u00e9".encode(),
            "/w/m.py": b"print(1)\n", "/w/b": b"ba", "/w/empty": b""}


async def test_paths_are_percent_encoded_segment_by_segment(mode):
    fake = Fake()
    async with make(mode, fake).session(IMAGE) as s:
        weird = "/work space/\u00fc/a#b?c%d&e+f=g;h:i@j'k/.hidden/...x"
        await s.write_file(weird, b"1")
        assert fake.seen[-1].path == (
            f"/sessions/{s.id}/files/work%20space/%C3%BC/"
            "a%23b%3Fc%25d%26e%2Bf%3Dg%3Bh%3Ai%40j%27k/.hidden/...x")
        assert await s.read_file(weird) == b"1"
        assert fake.seen[-1].path == fake.seen[-2].path
        assert fake.sessions[s.id]["files"] == {weird: b"1"}


@pytest.mark.parametrize("path, error", [
    ("workspace/in.txt", ValueError),    # relative
    ("", ValueError),
    ("/", ValueError),
    ("/a//b", ValueError),
    ("/a/", ValueError),
    ("/a/../etc/passwd", ValueError),    # httpx would fold it into /etc/passwd
    ("/a/./b", ValueError),
    ("/..", ValueError),
    ("/a\0b", ValueError),
    (b"/a", TypeError),
    (None, TypeError),
])
async def test_bad_paths_send_nothing(mode, path, error):
    fake = Fake()
    async with make(mode, fake).session(IMAGE) as s:
        with pytest.raises(error):
            await s.write_file(path, b"x")
        with pytest.raises(error):
            await s.read_file(path)
    assert [m for m, _ in fake.requests()] == ["POST", "DELETE"]


async def test_read_file(mode):
    fake = Fake()
    async with make(mode, fake).session(IMAGE) as s:
        fake.sessions[s.id]["files"]["/out/r.bin"] = bytes(range(256))
        assert await s.read_file("/out/r.bin") == bytes(range(256))
        get = fake.seen[-1]
        assert (get.method, get.path) == ("GET", f"/sessions/{s.id}/files/out/r.bin")
        assert get.read_timeout == 30.0
        with pytest.raises(boxer.BoxerFileNotFoundError) as e:
            await s.read_file("/out/missing")
        assert e.value.code == "file_not_found" and e.value.status_code == 404
        assert not isinstance(e.value, boxer.SessionNotFoundError)


async def test_file_errors(mode):
    fake = Fake()
    async with make(mode, fake).session(IMAGE) as s:
        fake.script = [error(413, "payload_too_large")]
        with pytest.raises(boxer.PayloadTooLargeError):
            await s.write_file("/big", b"x" * 1000)
        fake.script = [error(400, "invalid_request")]
        with pytest.raises(boxer.BadRequestError):
            await s.write_file("/proc/x", b"x")
        fake.script = [error(404, "session_not_found")]
        with pytest.raises(boxer.SessionNotFoundError):
            await s.read_file("/a")
        fake.script = [error(404, "session_not_found")]
        with pytest.raises(boxer.SessionNotFoundError):
            await s.write_file("/a", b"")


async def test_files_and_info_are_retried_after_a_reset(mode):
    """PUT, GET and DELETE are safe to send again: the same bytes replace
    the same file, reading and deleting change nothing more."""
    fake = Fake()
    async with make(mode, fake).session(IMAGE) as s:
        fake.script = [httpx.ReadError("reset")]
        await s.write_file("/a", b"1")
        fake.script = [httpx.RemoteProtocolError("cut")]
        assert await s.read_file("/a") == b"1"
        fake.script = [httpx.ReadError("reset")]
        assert (await s.info()).id == s.id
        fake.script = [httpx.ReadError("reset")]
    assert fake.requests()[1:] == [("PUT", f"/sessions/{s.id}/files/a")] * 2 + \
        [("GET", f"/sessions/{s.id}/files/a")] * 2 + [("GET", f"/sessions/{s.id}")] * 2 + \
        [("DELETE", f"/sessions/{s.id}")] * 2


# --- info and close --------------------------------------------------------------------


async def test_info(mode):
    fake = Fake()
    async with make(mode, fake).session(IMAGE, limits={"memory_mb": 512},
                                        idle_timeout_secs=60) as s:
        await s.exec(["true"])
        info = await s.info()
        assert fake.requests()[-1] == ("GET", f"/sessions/{s.id}")
    assert isinstance(info, boxer.SessionInfo)
    assert (info.id, info.image, info.image_digest, info.network) == \
        (s.id, IMAGE, "sha256:" + "d" * 64, "none")
    assert info.limits == boxer.Limits(memory_mb=512, cpu_cores=1.0, pids_limit=64, nofile=256,
                                       wall_clock_secs=30)
    assert (info.idle_timeout_secs, info.ttl_secs, info.execs) == (60, 3600, 1)
    utc = dt.timezone.utc
    assert info.created_at == dt.datetime(2026, 12, 3, 8, 0, 0, tzinfo=utc)
    assert info.expires_at == dt.datetime(2026, 12, 3, 9, 0, 0, tzinfo=utc)
    assert info.last_used_at == dt.datetime(2026, 12, 3, 8, 0, 5, tzinfo=utc)
    assert info.raw["limits"]["memory_mb"] == 512
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.execs = 2


def test_parse_session_checks_the_answer():
    ok = {"id": "s_1", "image": "i", "idle_timeout_secs": 1, "ttl_secs": 2, "execs": 0,
          "limits": {"memory_mb": 1, "cpu_cores": 2, "something_new": 3, "nofile": True},
          "later_field": 1}
    info = core.parse_session(ok)
    assert info.limits == boxer.Limits(memory_mb=1, cpu_cores=2)
    assert (info.created_at, info.image_digest) == (None, "")
    assert info.raw["later_field"] == 1
    for key in ("id", "image", "idle_timeout_secs", "ttl_secs", "execs"):
        with pytest.raises(boxer.InvalidResponseError, match=repr(key)):
            core.parse_session({k: v for k, v in ok.items() if k != key})
    with pytest.raises(boxer.InvalidResponseError):
        core.parse_session({**ok, "execs": "0"})


async def test_info_of_a_session_that_is_gone(mode):
    fake = Fake()
    async with make(mode, fake).session(IMAGE) as s:
        del fake.sessions[s.id]      # expired
        with pytest.raises(boxer.SessionNotFoundError) as e:
            await s.info()
        assert isinstance(e.value, boxer.NotFoundError)
        assert (e.value.status_code, e.value.code, e.value.method, e.value.path) == \
            (404, "session_not_found", "GET", f"/sessions/{s.id}")
    # Its DELETE found nothing either, and that is not an error.
    assert fake.requests()[-1] == ("DELETE", f"/sessions/{s.id}")


async def test_context_exit_deletes_and_then_the_session_is_gone(mode):
    fake = Fake()
    c = make(mode, fake)
    async with c.session(IMAGE) as s:
        await s.write_file("/a", b"1")
    assert fake.requests()[-1] == ("DELETE", f"/sessions/{s.id}")
    assert fake.sessions == {}
    # Used after closing: the server says it is gone.
    with pytest.raises(boxer.SessionNotFoundError):
        await s.info()
    with pytest.raises(boxer.SessionNotFoundError):
        await s.exec(["true"])
    await s.close()     # still harmless
    assert [m for m, _ in fake.requests()].count("DELETE") == 1


async def test_an_exception_in_the_body_still_deletes(mode):
    fake = Fake()
    with pytest.raises(KeyError):
        async with make(mode, fake).session(IMAGE) as s:
            raise KeyError("mine")
    assert fake.requests()[-1] == ("DELETE", f"/sessions/{s.id}")
    # A DELETE that fails then does not hide the body's exception.
    fake = Fake(None, error(500, "internal"))
    with pytest.raises(KeyError):
        async with make(mode, fake).session(IMAGE) as s:
            raise KeyError("mine")
    fake = Fake(None, httpx.ConnectError("refused"))
    with pytest.raises(KeyError):
        async with make(mode, fake, max_retries=0).session(IMAGE) as s:
            raise KeyError("mine")


async def test_a_failed_delete_raises_and_can_be_tried_again(mode):
    fake = Fake(None, error(500, "internal"))
    c = make(mode, fake)
    with pytest.raises(boxer.InternalServerError):
        async with c.session(IMAGE) as s:
            pass
    assert s.id in fake.sessions
    await s.close()
    assert s.id not in fake.sessions
    await s.close()
    assert [m for m, _ in fake.requests()].count("DELETE") == 2


async def test_close_of_a_session_never_opened_sends_nothing(mode):
    fake = Fake()
    s = make(mode, fake).session(IMAGE)
    await s.close()
    assert fake.seen == []
    with pytest.raises(RuntimeError, match="closed"):
        await s.open()
    with pytest.raises(RuntimeError, match="not open"):
        await s.exec(["true"])
    with pytest.raises(RuntimeError, match="not open"):
        s.exec_stream(["true"])
    for method, args in (("write_file", ("/a", b"")), ("read_file", ("/a",)), ("info", ())):
        with pytest.raises(RuntimeError, match="not open"):
            await getattr(s, method)(*args)
    assert fake.seen == []


async def test_a_cancelled_task_still_deletes_its_session():
    fake = Fake()
    c = make("async", fake)
    entered = asyncio.Event()

    async def work():
        async with c.session(IMAGE) as s:
            entered.set()
            await asyncio.sleep(60)
        return s

    task = asyncio.create_task(work())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [m for m, _ in fake.requests()] == ["POST", "DELETE"]
    assert fake.sessions == {}


async def test_two_sessions_have_their_own_ids_and_files(mode):
    fake = Fake()
    c = make(mode, fake)
    async with c.session(IMAGE) as a, c.session(IMAGE) as b:
        assert a.id != b.id
        await a.write_file("/f", b"a")
        with pytest.raises(boxer.BoxerFileNotFoundError):
            await b.read_file("/f")
        assert fake.requests()[-1] == ("GET", f"/sessions/{b.id}/files/f")
    assert fake.sessions == {}


def test_sync_session_methods_return_plain_values():
    """Without the wrapper: the sync Session's own return values."""
    fake = Fake()
    with boxer.BoxerClient("http://boxer.test",
                           http_client=httpx.Client(transport=httpx.MockTransport(fake))) as c:
        with c.session(IMAGE) as s:
            assert isinstance(s, boxer.Session) and s.open() is s
            assert s.write_file("/a", "x") is None
            assert s.read_file("/a") == b"x"
            with s.exec_stream(["echo"]) as events:
                assert isinstance(events, boxer.RunStream)
                assert [type(e) for e in events][-1] is boxer.ResultEvent
    assert fake.sessions == {}


async def test_async_session_types():
    fake = Fake()
    async with boxer.AsyncBoxerClient(
            "http://boxer.test",
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(fake))) as c:
        s = c.session(IMAGE)
        assert isinstance(s, boxer.AsyncSession)
        async with s:
            assert await s.open() is s
            stream = s.exec_stream(["echo"])
            assert isinstance(stream, boxer.AsyncRunStream)
            await stream.close()
    assert fake.sessions == {}
