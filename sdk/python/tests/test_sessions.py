"""Sessions through the real stack (POST /sessions and the rest), each
API test with the sync client and with the async one: files persist from
one exec to the next and go both ways, sessions do not see each other,
output streams live, and a closed or expired session is gone (the `api`
fixture checks that nothing of it is left). test_sessions_mock.py covers
the requests and the error paths without a server."""

import asyncio
import datetime as dt
import hashlib
import re
import time

import pytest

import boxer
from conftest import BUSYBOX, PYTHON, url_of
from session_helpers import Sync

# "a", then 2 s later "b": each flushed as it is written.
A_THEN_B = ["python3", "-u", "-c",
            "import sys, time; print('a'); time.sleep(2); print('b', file=sys.stderr); "
            "print('c')"]


@pytest.fixture(params=["sync", "async"])
async def sc(request, url):
    """The sync client (seen through the async API) and the async client, in turn."""
    if request.param == "sync":
        with boxer.BoxerClient(url) as c:
            yield Sync(c)
    else:
        async with boxer.AsyncBoxerClient(url) as c:
            yield c


def result_class(sc):
    return boxer.RunResult if isinstance(sc, Sync) else boxer.AsyncRunResult


def py(code):
    return ["python3", "-c", code]


async def test_files_persist_between_execs(sc):
    async with sc.session(BUSYBOX) as s:
        r = await s.exec(["sh", "-c", "mkdir -p /tmp/w/d && echo one > /tmp/w/d/f.txt"])
        assert r.ok, r.stderr
        r = await s.exec(["sh", "-c", "echo two >> /tmp/w/d/f.txt; cat /tmp/w/d/f.txt"])
        assert (r.exit_code, r.stdout) == (0, "one\ntwo\n")
        r = await s.exec(["cat", "f.txt"], workdir="/tmp/w/d")
        assert r.stdout == "one\ntwo\n"


async def test_exec_result(sc):
    async with sc.session(BUSYBOX, env={"A": "session", "B": "session"}) as s:
        r1 = await s.exec(["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert type(r1) is result_class(sc)
        assert re.fullmatch(r"s_[0-9a-f]{32}", s.id)
        assert r1.id == f"{s.id}/1"
        assert (r1.exit_code, r1.stdout, r1.stderr, r1.ok) == (3, "out\n", "err\n", False)
        assert r1.image == BUSYBOX and r1.image_digest.startswith("sha256:")
        assert r1.outputs == () and r1.signal is None and not r1.timed_out
        with pytest.raises(boxer.CommandFailedError, match="exited with status 3"):
            r1.check()
        # stdin, and the exec's env merged over the session's.
        r2 = await s.exec(["sh", "-c", "cat; echo \" $A $B\""], stdin="in", env={"B": "exec"})
        assert (r2.id, r2.stdout) == (f"{s.id}/2", "in session exec\n")
        r3 = await s.exec(["pwd"], workdir="/tmp")
        assert (r3.id, r3.stdout) == (f"{s.id}/3", "/tmp\n")
        # Killed by a signal: data, as for run().
        r4 = await s.exec(["sh", "-c", "kill -9 $$"])
        assert (r4.exit_code, r4.signal) == (137, 9)


async def test_exec_time_limits(sc):
    """timeout_secs, else the session's limits.wall_clock_secs."""
    async with sc.session(BUSYBOX, limits={"wall_clock_secs": 2}) as s:
        t0 = time.monotonic()
        r = await s.exec(["sleep", "30"])
        assert r.timed_out and not r.ok and time.monotonic() - t0 < 15
        t0 = time.monotonic()
        r = await s.exec(["sleep", "30"], timeout_secs=1)
        assert r.timed_out and time.monotonic() - t0 < 10
        r = await s.exec(["sh", "-c", "sleep 3; echo late"], timeout_secs=10)
        assert r.ok and r.stdout == "late\n"
        # The session outlives an exec that timed out.
        assert (await s.exec(["echo", "alive"])).stdout == "alive\n"


async def test_write_file_then_exec_reads_it(sc, tmp_path):
    data = bytes(range(256)) * 4
    (tmp_path / "local.py").write_text("print('from a local file')\n")
    async with sc.session(PYTHON) as s:
        await s.write_file("/workspace/deep/er/data.bin", data)          # parents made
        await s.write_file("/workspace/t\u00e9xt file.txt", "h\u00e9llo\n")  # str: UTF-8
        await s.write_file("/workspace/local.py", tmp_path / "local.py")  # a local file
        r = await s.exec(py("import hashlib; "
                            "print(hashlib.sha256(open('/workspace/deep/er/data.bin', 'rb')"
                            ".read()).hexdigest()); "
                            "print(open('/workspace/t\u00e9xt file.txt', encoding='utf-8')"
                            ".read(), end='')"))
        assert r.stdout == hashlib.sha256(data).hexdigest() + "\nh\u00e9llo\n", r.stderr
        assert (await s.exec(["python3", "/workspace/local.py"])).stdout == \
            "from a local file\n"
        # Replacing a file.
        await s.write_file("/workspace/deep/er/data.bin", b"short")
        r = await s.exec(["cat", "/workspace/deep/er/data.bin"])
        assert r.stdout == "short"
        # An empty file.
        await s.write_file("/workspace/empty", b"")
        assert (await s.exec(["wc", "-c", "/workspace/empty"])).stdout.split()[0] == "0"


async def test_written_files_and_their_directories_belong_to_the_execs_user(sc):
    """A later exec may change an uploaded file, and create files next to
    it in the directories the upload made."""
    async with sc.session(PYTHON) as s:
        await s.write_file("/workspace/proj/main.py", "print(1)\n")
        r = await s.exec(["sh", "-c", "echo 'print(2)' >> /workspace/proj/main.py && "
                                      "echo new > /workspace/proj/new.txt && "
                                      "mkdir /workspace/proj/sub && python3 main.py"],
                         workdir="/workspace/proj")
        assert (r.exit_code, r.stdout) == (0, "1\n2\n"), r.stderr
        assert await s.read_file("/workspace/proj/new.txt") == b"new\n"


async def test_exec_writes_a_file_then_read_file(sc):
    async with sc.session(PYTHON) as s:
        r = await s.exec(py("import os; os.makedirs('/tmp/out/sub', exist_ok=True); "
                            "open('/tmp/out/sub/r.bin', 'wb').write(bytes(range(256)))"))
        assert r.ok, r.stderr
        assert await s.read_file("/tmp/out/sub/r.bin") == bytes(range(256))
        r = await s.exec(["sh", "-c", "printf 'a b' > '/tmp/out/x y#1.txt'"])
        assert await s.read_file("/tmp/out/x y#1.txt") == b"a b"


async def test_read_file_of_what_is_not_a_file_raises(sc):
    async with sc.session(BUSYBOX) as s:
        with pytest.raises(boxer.BoxerFileNotFoundError) as e:
            await s.read_file("/no/such/file")
        assert (e.value.status_code, e.value.code) == (404, "file_not_found")
        await s.exec(["mkdir", "-p", "/tmp/dir"])
        with pytest.raises(boxer.BoxerFileNotFoundError):
            await s.read_file("/tmp/dir")
        # The session is still fine.
        assert (await s.exec(["echo", "ok"])).stdout == "ok\n"


async def test_symlinks_made_in_the_session_do_not_reach_the_host(sc, tmp_path):
    """An exec may plant links to host paths (they mean nothing inside the
    sandbox); reading or writing through them must never touch the host."""
    canary = tmp_path / "canary.txt"
    canary.write_bytes(b"host secret\n")
    host_dir = tmp_path / "dir"
    host_dir.mkdir()
    refused = (boxer.BoxerFileNotFoundError, boxer.BadRequestError, boxer.ForbiddenError)
    async with sc.session(BUSYBOX) as s:
        r = await s.exec(["sh", "-c", f"ln -s {canary} /tmp/file-link && "
                                      f"ln -s {host_dir} /tmp/dir-link"])
        assert r.ok, r.stderr
        try:
            assert await s.read_file("/tmp/file-link") != b"host secret\n"
        except refused:
            pass
        for path in ("/tmp/file-link", "/tmp/dir-link/planted", f"{host_dir}/planted"):
            try:
                await s.write_file(path, b"from the sandbox")
            except refused:
                pass
        assert canary.read_bytes() == b"host secret\n"
        assert list(host_dir.iterdir()) == []
        assert (await s.exec(["echo", "ok"])).stdout == "ok\n"


async def test_upload_limit(sc, api):
    limit = api.config["upload_limit_bytes"]
    async with sc.session(BUSYBOX) as s:
        with pytest.raises(boxer.PayloadTooLargeError):
            await s.write_file("/tmp/big", b"x" * (limit + 1))
        await s.write_file("/tmp/fits", b"y" * limit)
        assert (await s.exec(["wc", "-c", "/tmp/fits"])).stdout.split()[0] == str(limit)


async def test_info(sc):
    async with sc.session(BUSYBOX, limits={"memory_mb": 128, "wall_clock_secs": 5},
                          idle_timeout_secs=120, ttl_secs=600) as s:
        info = await s.info()
        assert isinstance(info, boxer.SessionInfo)
        assert (info.id, info.image, info.network) == (s.id, BUSYBOX, "none")
        assert info.image_digest.startswith("sha256:")
        assert (info.limits.memory_mb, info.limits.wall_clock_secs) == (128, 5)
        # Complete: the server's defaults filled in.
        assert None not in (info.limits.cpu_cores, info.limits.pids_limit, info.limits.nofile)
        assert (info.idle_timeout_secs, info.ttl_secs, info.execs) == (120, 600, 0)
        assert info.expires_at - info.created_at == dt.timedelta(seconds=600)
        assert info.created_at <= info.last_used_at
        await s.exec(["true"])
        await s.exec(["true"])
        again = await s.info()
        assert again.execs == 2 and again.last_used_at >= info.last_used_at
        assert again.expires_at == info.expires_at
    async with sc.session(BUSYBOX) as s:
        info = await s.info()
        assert (info.idle_timeout_secs, info.ttl_secs) == (300, 3600)


async def test_session_is_deleted_on_exit(sc, api):
    async with sc.session(BUSYBOX) as s:
        await s.write_file("/tmp/f", b"1")
        assert api.request("GET", "/health")[1]["sessions"] == 1
    with pytest.raises(boxer.SessionNotFoundError) as e:
        await s.info()
    assert isinstance(e.value, boxer.NotFoundError) and e.value.code == "session_not_found"
    with pytest.raises(boxer.SessionNotFoundError):
        await s.exec(["true"])
    with pytest.raises(boxer.SessionNotFoundError):
        await s.read_file("/tmp/f")
    with pytest.raises(boxer.SessionNotFoundError):
        await s.write_file("/tmp/f", b"2")
    await s.close()        # again: harmless
    assert api.request("GET", "/health")[1]["sessions"] == 0


async def test_an_exception_in_the_body_still_deletes_the_session(sc, api):
    with pytest.raises(ZeroDivisionError):
        async with sc.session(BUSYBOX) as s:
            await s.exec(["true"])
            1 / 0
    with pytest.raises(boxer.SessionNotFoundError):
        await s.info()
    assert api.request("GET", "/health")[1]["sessions"] == 0


async def test_sessions_do_not_see_each_other(sc):
    async with sc.session(BUSYBOX) as a, sc.session(BUSYBOX) as b:
        assert a.id != b.id
        await a.write_file("/tmp/secret", b"a's")
        await a.exec(["sh", "-c", "echo mine > /tmp/made"])
        for path in ("/tmp/secret", "/tmp/made"):
            with pytest.raises(boxer.BoxerFileNotFoundError):
                await b.read_file(path)
        r = await b.exec(["sh", "-c", "ls /tmp/secret /tmp/made"])
        assert r.exit_code != 0
        await b.write_file("/tmp/secret", b"b's")
        assert await a.read_file("/tmp/secret") == b"a's"
        assert await b.read_file("/tmp/secret") == b"b's"
        # Execs are numbered per session.
        assert (await b.exec(["true"])).id == f"{b.id}/2"


async def test_unknown_image_makes_no_session(sc, api):
    with pytest.raises(boxer.ImageNotFoundError):
        async with sc.session("localhost:5000/boxer/no-such-image:1"):
            raise AssertionError("never entered")
    with pytest.raises(boxer.BadRequestError):
        async with sc.session(BUSYBOX, limits={"memory_mb": 1}):
            raise AssertionError("never entered")
    assert api.request("GET", "/health")[1]["sessions"] == 0


async def test_open_and_close_without_with(sc):
    s = sc.session(BUSYBOX)
    with pytest.raises(RuntimeError, match="not open"):
        s.id
    await s.open()
    try:
        assert (await s.exec(["echo", "hi"])).stdout == "hi\n"
    finally:
        await s.close()
    with pytest.raises(boxer.SessionNotFoundError):
        await s.info()


# --- exec_stream -------------------------------------------------------------------------


def first_time(timed, cls, text):
    seen = ""
    for e, t in timed:
        if isinstance(e, cls):
            seen += e.data
            if text in seen:
                return t
    raise AssertionError(f"{text!r} never came in {cls.__name__} events: {timed}")


async def timed_events(stream):
    t0 = time.monotonic()
    async with stream as events:
        return [(e, time.monotonic() - t0) async for e in events]


async def test_exec_stream_delivers_output_live(sc):
    async with sc.session(PYTHON) as s:
        await s.write_file("/tmp/in.txt", "state from before\n")
        timed = await timed_events(s.exec_stream(A_THEN_B))
        a = first_time(timed, boxer.StdoutEvent, "a\n")
        b = first_time(timed, boxer.StderrEvent, "b\n")
        assert b - a >= 1.5, timed
        last = timed[-1][0]
        assert isinstance(last, boxer.ResultEvent)
        assert sum(isinstance(e, boxer.ResultEvent) for e, _ in timed) == 1
        r = last.result
        assert type(r) is result_class(sc) and r.id == f"{s.id}/1"
        assert r.stdout == "a\nc\n" and r.stderr == "b\n"
        assert "".join(e.data for e, _ in timed if isinstance(e, boxer.StdoutEvent)) == r.stdout
        # The same session's files, and its numbering, go on.
        timed = await timed_events(s.exec_stream(["cat", "/tmp/in.txt"]))
        assert timed[-1][0].result.stdout == "state from before\n"
        assert timed[-1][0].result.id == f"{s.id}/2"
        assert (await s.exec(["true"])).id == f"{s.id}/3"


async def test_closing_an_exec_stream_stops_the_command(sc):
    """The next exec of the session would wait for the first: it starts at
    once, so the abandoned command was stopped."""
    async with sc.session(BUSYBOX, limits={"wall_clock_secs": 60}) as s:
        async with s.exec_stream(["sh", "-c", "echo begun; sleep 60; echo never > /tmp/f"]) \
                as events:
            async for e in events:
                assert e == boxer.StdoutEvent("begun\n")
                break
        t0 = time.monotonic()
        r = await s.exec(["echo", "next"], timeout_secs=20)
        assert r.stdout == "next\n" and time.monotonic() - t0 < 15
        with pytest.raises(boxer.BoxerFileNotFoundError):
            await s.read_file("/tmp/f")


async def test_execs_of_one_session_run_one_at_a_time(aclient):
    async with aclient.session(BUSYBOX) as s:
        cmd = ["sh", "-c", "if [ -e /tmp/lock ]; then echo overlap; fi; touch /tmp/lock; "
                           "sleep 1; rm /tmp/lock; echo done"]
        results = await asyncio.gather(*(s.exec(cmd) for _ in range(3)))
        assert [r.stdout for r in results] == ["done\n"] * 3
        assert sorted(r.id for r in results) == [f"{s.id}/{n}" for n in (1, 2, 3)]


# --- the server's limits on sessions -------------------------------------------------------


def test_idle_session_expires(client, api):
    with client.session(BUSYBOX, idle_timeout_secs=1) as s:
        s.write_file("/tmp/f", b"1")
        # No request in between: any request may count as use.
        time.sleep(4)
        deadline = time.monotonic() + 10
        while True:
            try:
                s.info()
            except boxer.SessionNotFoundError:
                break
            assert time.monotonic() < deadline, "an idle session was not destroyed"
            time.sleep(3)
    assert api.request("GET", "/health")[1]["sessions"] == 0


def test_over_max_sessions_is_busy(make_stack):
    s = make_stack({"max_sessions": 1}).start()
    with boxer.BoxerClient(url_of(s), max_retries=0) as c:
        with c.session(BUSYBOX) as first:
            with pytest.raises(boxer.BusyError) as e:
                with c.session(BUSYBOX):
                    raise AssertionError("never entered")
            assert e.value.status_code == 503 and e.value.retry_after is not None
            first.exec(["true"])
        # Room again once the first is gone.
        with c.session(BUSYBOX) as second:
            assert second.exec(["echo", "ok"]).stdout == "ok\n"

