"""Streaming without a Boxer server: the SSE parser, and client.stream()
of both clients against httpx.MockTransport (plus two tests over a real
loopback socket, for what a mock cannot show: delivery as bytes arrive,
and a close reaching the server). test_stream.py runs the real stack."""

import asyncio
import gc
import json
import time

import httpx
import pytest

import boxer
from boxer import _core as core
from stream_helpers import (
    RESULT, SSE, Body, LoopbackServer, Server, bytewise, err, error_event, event, out, result,
    stream_response,
)


# --- the parser ----------------------------------------------------------------


def parse(*chunks):
    p = core.SSEParser()
    msgs = []
    for c in chunks:
        msgs += p.feed(c)
    return msgs + p.end()


def pairs(msgs):
    return [(m.event, m.data) for m in msgs]


WIRE = (b": hello\n\n"
        b"event: stdout\ndata: {\"data\": \"h\xc3\xa9\xe2\x98\x83\\n\"}\n\n"
        b"event: stderr\r\ndata: one\r\ndata: two\r\n\r\n"
        b"event: x\rdata:\rdata:  lead\r\r"
        b"data: no type\n\n")
EXPECTED = [("stdout", '{"data": "h\u00e9\u2603\\n"}'), ("stderr", "one\ntwo"),
            ("x", "\n lead"), ("message", "no type")]


def test_parser_reads_the_format():
    assert pairs(parse(WIRE)) == EXPECTED


def test_parser_takes_any_cut():
    """Chunks cut anywhere: in a line, in a UTF-8 character, between CR and LF."""
    assert pairs(parse(*bytewise(WIRE))) == EXPECTED
    for cut in range(1, len(WIRE)):
        assert pairs(parse(WIRE[:cut], WIRE[cut:])) == EXPECTED, cut


def test_parser_pairs_a_cr_with_the_lf_of_the_next_chunk():
    # Read as two line ends, the CR LF would be a blank line that dispatches
    # nothing and forgets the event's type.
    assert pairs(parse(b"event: stdout\r", b"\ndata: x\r", b"\n\r", b"\n")) == [("stdout", "x")]


def test_parser_skips_comments_unknown_fields_and_empty_events():
    wire = (b":keep-alive\n\n: another\n"
            b"id: 7\nretry: 1000\nfoo: bar\nevent: stdout\ndata: x\n\n"
            b"event: lonely\n\n"             # no data: not dispatched, type forgotten
            b"data\n\n"                       # a field name alone: empty data
            b"data: y\nevent\n\n")            # an empty type is the default
    assert pairs(parse(wire)) == [("stdout", "x"), ("message", ""), ("message", "y")]


def test_parser_drops_a_bom_and_an_unfinished_event():
    assert pairs(parse(b"\xef\xbb", b"\xbfdata: a\n\n", b"event: result\ndata: {\"id\"")) == \
        [("message", "a")]
    # Only at the very start.
    assert pairs(parse(b"data: \xef\xbb\xbfa\n\n")) == [("message", "\ufeffa")]


def test_parser_replaces_invalid_utf8():
    assert pairs(parse(b"data: a\xffb\n\n")) == [("message", "a\ufffdb")]


def test_parser_is_linear_in_a_long_line():
    line = b"data: " + b"x" * 2_000_000 + b"\n\n"
    t0 = time.monotonic()
    msgs = parse(*[line[i:i + 100] for i in range(0, len(line), 100)])
    assert len(msgs[0].data) == 2_000_000 and time.monotonic() - t0 < 5


# --- client.stream() ------------------------------------------------------------


@pytest.fixture(params=["sync", "async"])
def mode(request):
    return request.param


def make(mode, server, **kw):
    transport = httpx.MockTransport(server)
    if mode == "sync":
        return boxer.BoxerClient("http://boxer.test", http_client=httpx.Client(transport=transport),
                                 **kw)
    return boxer.AsyncBoxerClient("http://boxer.test",
                                  http_client=httpx.AsyncClient(transport=transport), **kw)


def collect(mode, stream, take=None):
    """The stream's events (the first take of them, then close it), inside
    its context manager; an exception propagates with those before it in
    `got`."""
    got = []
    if mode == "sync":
        with stream as s:
            for e in s:
                got.append(e)
                if take is not None and len(got) == take:
                    break
        return got

    async def go():
        async with stream as s:
            async for e in s:
                got.append(e)
                if take is not None and len(got) == take:
                    break
        return got
    return asyncio.run(go())


def stream(mode, client, **kw):
    return client.stream("img", ["python3", "-c", "print(1)"], **kw)


def test_events_in_order_and_the_result_as_run_reads_it(mode):
    resp, body = stream_response(chunks=bytewise(b": keep-alive\n\n", out("a\n"), err("oops\n"),
                                                 out("b\n"), event("later", {"x": 1}), result()))
    s = Server(resp)
    events = collect(mode, stream(mode, make(mode, s)))
    assert events[:3] == [boxer.StdoutEvent("a\n"), boxer.StderrEvent("oops\n"),
                          boxer.StdoutEvent("b\n")]
    assert isinstance(events[3], boxer.ResultEvent) and len(events) == 4
    r = events[3].result
    cls = boxer.RunResult if mode == "sync" else boxer.AsyncRunResult
    assert type(r) is cls and r == core.parse_run_result(RESULT, cls, None)
    assert r.raw == RESULT and r._client is not None  # r.download() works
    assert body.closed


def test_request_is_runs_with_accept_event_stream(mode, tmp_path):
    """stream() sends what run() sends (body, uploads), asking for events."""
    (tmp_path / "m.py").write_text("print(1)")
    kw = dict(files={"/w/m.py": tmp_path / "m.py"}, limits={"wall_clock_secs": 5},
              network="none", env={"A": "1"}, workdir="/w", stdin="in")
    s = Server(stream_response(result())[0])
    collect(mode, stream(mode, make(mode, s, headers={"accept": "text/html"}), **kw))
    method, path, headers, content = s.seen[0]
    assert (method, path) == ("POST", "/run")
    assert headers.get_list("accept") == ["text/event-stream"]
    assert headers["content-type"].startswith("multipart/form-data")
    request = json.dumps({"image": "img", "cmd": ["python3", "-c", "print(1)"], "env": {"A": "1"},
                          "workdir": "/w", "stdin": "in", "limits": {"wall_clock_secs": 5},
                          "network": "none"}, separators=(",", ":")).encode()
    assert request in content and b'name="/w/m.py"' in content and b"print(1)" in content
    # Without files, the JSON body of run().
    s = Server(stream_response(result())[0])
    collect(mode, client_stream := stream(mode, make(mode, s)))
    assert json.loads(s.seen[0][3]) == {"image": "img", "cmd": ["python3", "-c", "print(1)"]}
    assert s.seen[0][2]["content-type"] == "application/json"
    assert "not sent" not in repr(client_stream)


def test_nothing_is_sent_until_the_first_event_is_asked_for(mode):
    s = Server(stream_response(result())[0])
    st = stream(mode, make(mode, s))
    assert s.seen == [] and "not sent" in repr(st)
    collect(mode, st)
    assert len(s.seen) == 1 and "closed" in repr(st)


def test_argument_mistakes_raise_at_once(mode):
    with pytest.raises(TypeError, match="cmd must be a list"):
        make(mode, Server(None)).stream("img", "echo hi")


@pytest.mark.parametrize("code, cls", [
    ("internal", boxer.InternalServerError),
    ("busy", boxer.BusyError),
    ("image_not_found", boxer.ImageNotFoundError),
    ("something_new", boxer.InternalServerError),
])
def test_error_event_raises_the_typed_exception(mode, code, cls):
    resp, body = stream_response(chunks=bytewise(out("a\n"), error_event(code, "it broke"),
                                                 out("never read\n")))
    s = Server(resp)
    events = []
    with pytest.raises(cls) as e:
        if mode == "sync":
            with make(mode, s).stream("img", ["x"]) as st:
                for ev in st:
                    events.append(ev)
        else:
            async def go():
                async with make(mode, s).stream("img", ["x"]) as st:
                    async for ev in st:
                        events.append(ev)
            asyncio.run(go())
    assert type(e.value) is cls
    assert events == [boxer.StdoutEvent("a\n")]
    assert (e.value.code, e.value.message, e.value.status_code) == (code, "it broke", cls.status)
    assert (e.value.method, e.value.path) == ("POST", "/run")
    assert body.closed and len(s.seen) == 1  # never sent again


def test_error_event_without_the_api_body(mode):
    s = Server(stream_response(event("error", "worker died"))[0])
    with pytest.raises(boxer.InternalServerError, match="worker died"):
        collect(mode, stream(mode, make(mode, s)))


def test_stream_that_ends_early_is_a_connection_error(mode):
    # Ended in the middle of the result event: it is not read half.
    resp, body = stream_response(out("a\n"), result()[:40])
    s = Server(resp)
    got = []
    with pytest.raises(boxer.BoxerConnectionError, match="ended before the run's result") as e:
        if mode == "sync":
            with stream(mode, make(mode, s)) as st:
                got += st
        else:
            async def go():
                async with stream(mode, make(mode, s)) as st:
                    got.extend([ev async for ev in st])
            asyncio.run(go())
    assert not isinstance(e.value, boxer.BoxerTimeoutError)
    assert "http://boxer.test/run" in str(e.value)
    assert body.closed and len(s.seen) == 1


def test_empty_stream_is_a_connection_error(mode):
    s = Server(stream_response(b"")[0])
    with pytest.raises(boxer.BoxerConnectionError, match="ended before"):
        collect(mode, stream(mode, make(mode, s)))


def test_cut_stream_is_a_connection_error_and_never_resent(mode):
    resp, body = stream_response(chunks=[out("a\n"), httpx.RemoteProtocolError("peer closed")])
    s = Server(resp, stream_response(result())[0])
    with pytest.raises(boxer.BoxerConnectionError, match="connection failed") as e:
        collect(mode, stream(mode, make(mode, s)))
    assert isinstance(e.value.__cause__, httpx.RemoteProtocolError)
    assert body.closed and len(s.seen) == 1


def test_silent_stream_times_out(mode):
    resp, body = stream_response(chunks=[out("a\n"), httpx.ReadTimeout("slow")])
    s = Server(resp)
    with pytest.raises(boxer.BoxerTimeoutError, match="nothing from the server's event stream "
                                                      "for 2 s"):
        collect(mode, stream(mode, make(mode, s), timeout=2))
    assert body.closed


def test_json_error_before_the_stream_raises_as_run_does(mode):
    s = Server(httpx.Response(404, json={"error": {"code": "image_not_found",
                                                   "message": "no image img"}}))
    with pytest.raises(boxer.ImageNotFoundError, match="no image img") as e:
        collect(mode, stream(mode, make(mode, s)))
    assert e.value.status_code == 404 and len(s.seen) == 1


def test_busy_before_the_stream_is_retried(mode):
    busy, busy_body = stream_response(
        chunks=[json.dumps({"error": {"code": "busy", "message": "full"}}).encode()],
        headers={"content-type": "application/json", "retry-after": "0"}, status=503)
    s = Server((busy, busy_body), httpx.ConnectError("refused"), stream_response(result())[0])
    events = collect(mode, stream(mode, make(mode, s)))
    assert isinstance(events[-1], boxer.ResultEvent)
    assert len(s.seen) == 3 and busy_body.closed


def test_a_server_that_does_not_stream_gives_its_result_at_once(mode):
    """200 with the JSON result (a server without streaming): the output in
    one piece per stream, then the result."""
    s = Server(httpx.Response(200, json=RESULT))
    events = collect(mode, stream(mode, make(mode, s)))
    assert events[:2] == [boxer.StdoutEvent("a\nb\n"), boxer.StderrEvent("oops\n")]
    assert events[2].result.id == "r_1" and len(events) == 3


def test_not_the_api(mode):
    s = Server(httpx.Response(200, html="<html>hi</html>"))
    with pytest.raises(boxer.InvalidResponseError, match="is the base URL a Boxer server"):
        collect(mode, stream(mode, make(mode, s)))


def test_bad_event_data_is_an_invalid_response(mode):
    for bad, needle in ((event("stdout", "not json"), "stdout event is not JSON"),
                        (event("stderr", {"text": "x"}), "lacks a valid 'data'"),
                        (event("result", {"id": "r_1"}), "run result lacks")):
        resp, body = stream_response(bad, result())
        with pytest.raises(boxer.InvalidResponseError, match=needle):
            collect(mode, stream(mode, make(mode, Server(resp))))
        assert body.closed


def test_closing_early_closes_the_response(mode):
    chunks = [out("a\n"), out("b\n"), result()]
    resp, body = stream_response(chunks=chunks)
    events = collect(mode, stream(mode, make(mode, Server(resp))), take=1)
    assert events == [boxer.StdoutEvent("a\n")]
    assert body.closed and body.taken == 1


def test_close_twice_and_iterate_after_close(mode):
    resp, body = stream_response(chunks=[out("a\n"), result()])
    st = stream(mode, make(mode, Server(resp)))
    if mode == "sync":
        assert next(st) == boxer.StdoutEvent("a\n")
        st.close()
        st.close()
        assert list(st) == []
    else:
        async def go():
            assert await st.__anext__() == boxer.StdoutEvent("a\n")
            await st.close()
            await st.aclose()
            assert [e async for e in st] == []
        asyncio.run(go())
    assert body.closed and body.taken == 1


def test_nothing_is_read_after_the_result(mode):
    resp, body = stream_response(chunks=[result(), out("late\n"), error_event("internal")])
    events = collect(mode, stream(mode, make(mode, Server(resp))))
    assert [type(e) for e in events] == [boxer.ResultEvent]
    assert body.closed and body.taken == 1


def test_sync_stream_left_unclosed_is_closed_when_dropped():
    resp, body = stream_response(chunks=[out("a\n"), out("b\n"), result()])
    for _ in make("sync", Server(resp)).stream("img", ["x"]):
        break
    gc.collect()
    assert body.closed


def test_exception_in_the_caller_closes_the_stream(mode):
    resp, body = stream_response(chunks=[out("a\n"), out("b\n"), result()])
    st = stream(mode, make(mode, Server(resp)))
    with pytest.raises(ZeroDivisionError):
        if mode == "sync":
            with st:
                for _ in st:
                    1 / 0
        else:
            async def go():
                async with st:
                    async for _ in st:
                        1 / 0
            asyncio.run(go())
    assert body.closed


def test_async_cancellation_closes_the_stream():
    resp, body = stream_response(chunks=[out("a\n")], block=True)
    client = make("async", Server(resp))
    got = []

    async def consume():
        async with client.stream("img", ["x"]) as st:
            async for e in st:
                got.append(e)

    async def go():
        task = asyncio.create_task(consume())
        while not got:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    asyncio.run(go())
    assert got == [boxer.StdoutEvent("a\n")] and body.closed


# --- over a real socket (loopback) --------------------------------------------------


def test_events_arrive_as_the_server_sends_them(mode):
    """Nothing waits for more bytes than an event needs: "a", then 1.5 s
    later "b" arrive that far apart."""
    with LoopbackServer([out("a\n"), 1.5, out("b\n"), result()]) as srv:
        arrived = []

        def note(e):
            arrived.append((e, time.monotonic()))
        if mode == "sync":
            with boxer.BoxerClient(srv.url) as c, c.stream("img", ["x"]) as st:
                for e in st:
                    note(e)
        else:
            async def go():
                async with boxer.AsyncBoxerClient(srv.url) as c:
                    async with c.stream("img", ["x"]) as st:
                        async for e in st:
                            note(e)
            asyncio.run(go())
        assert [e for e, _ in arrived][:2] == [boxer.StdoutEvent("a\n"), boxer.StdoutEvent("b\n")]
        assert arrived[1][1] - arrived[0][1] >= 1.2
        path, headers, _ = srv.requests[0]
        assert path == "/run" and headers["Accept"] == "text/event-stream"


def test_closing_reaches_the_server(mode):
    """A stream closed early closes its connection: the server sees its
    client gone (and the real one stops the run)."""
    with LoopbackServer([out("a\n"), 30.0, result()]) as srv:
        if mode == "sync":
            with boxer.BoxerClient(srv.url) as c:
                st = c.stream("img", ["x"])
                assert next(st) == boxer.StdoutEvent("a\n")
                st.close()
        else:
            async def go():
                async with boxer.AsyncBoxerClient(srv.url) as c:
                    async with c.stream("img", ["x"]) as st:
                        assert await st.__anext__() == boxer.StdoutEvent("a\n")
            asyncio.run(go())
        assert srv.gone.wait(10) and not srv.finished.is_set()
