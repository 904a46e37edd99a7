"""The SDK's shape, without a server: sync and async clients match, the
results are frozen, the exception classes follow the error codes, and the
package type-checks."""

import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import boxer
from boxer import _core as core
from boxer import _errors


def public_methods(cls):
    return {name: member for name, member in inspect.getmembers(cls)
            if not name.startswith("_") and callable(member)}


#: Methods whose async twin is not awaited either: it returns an async
#: iterator (a stream) or an async context manager (a session).
ITERATORS = {"stream", "exec_stream", "session"}


def test_streams_match():
    """RunStream and AsyncRunStream: an iterator and an async iterator,
    each a context manager of its kind, with close()."""
    assert hasattr(boxer.RunStream, "__next__") and hasattr(boxer.RunStream, "__enter__")
    assert not inspect.iscoroutinefunction(boxer.RunStream.close)
    for name in ("__anext__", "__aenter__", "__aexit__", "close", "aclose"):
        assert inspect.iscoroutinefunction(getattr(boxer.AsyncRunStream, name)), name
    s = inspect.signature(boxer.BoxerClient.stream)
    assert list(s.parameters) == list(inspect.signature(boxer.BoxerClient.run).parameters)
    assert s.return_annotation == "RunStream"
    assert inspect.signature(boxer.AsyncBoxerClient.stream).return_annotation == "AsyncRunStream"


@pytest.mark.parametrize("sync_cls, async_cls", [
    (boxer.BoxerClient, boxer.AsyncBoxerClient),
    (boxer.Images, boxer.AsyncImages),
    (boxer.Session, boxer.AsyncSession),
])
def test_sync_and_async_public_methods_match(sync_cls, async_cls):
    sync, asyn = public_methods(sync_cls), public_methods(async_cls)
    assert sorted(sync) == sorted(asyn)
    for name in sync:
        s, a = inspect.signature(sync[name]), inspect.signature(asyn[name])
        # Same parameters, kinds and defaults; the async ones are coroutines.
        assert [(p.name, p.kind, p.default) for p in s.parameters.values()] == \
               [(p.name, p.kind, p.default) for p in a.parameters.values()], name
        assert not inspect.iscoroutinefunction(sync[name]), name
        if name in ITERATORS:
            # Not awaited: it returns an async iterator, for `async for`.
            assert not inspect.iscoroutinefunction(asyn[name]), name
        else:
            assert inspect.iscoroutinefunction(asyn[name]), name
    # Constructors too; only the type of the httpx client differs.
    s = inspect.signature(sync_cls.__init__).parameters
    a = inspect.signature(async_cls.__init__).parameters
    assert [(p.name, p.kind, p.default) for p in s.values()] == \
           [(p.name, p.kind, p.default) for p in a.values()]
    # Context managers of their kind.
    if sync_cls in (boxer.BoxerClient, boxer.Session):
        assert hasattr(sync_cls, "__enter__") and hasattr(sync_cls, "__exit__")
        assert inspect.iscoroutinefunction(async_cls.__aenter__)
        assert inspect.iscoroutinefunction(async_cls.__aexit__)


def test_sessions_match():
    """client.session() takes the same arguments in both clients and is
    not awaited; exec and exec_stream take the same ones, and return what
    run() and stream() return."""
    s = inspect.signature(boxer.BoxerClient.session)
    assert list(s.parameters) == ["self", "image", "limits", "network", "env", "workdir",
                                  "idle_timeout_secs", "ttl_secs"]
    assert s.return_annotation == "Session"
    assert inspect.signature(boxer.AsyncBoxerClient.session).return_annotation == "AsyncSession"
    e = inspect.signature(boxer.Session.exec)
    assert list(e.parameters) == ["self", "cmd", "env", "workdir", "stdin", "timeout_secs",
                                  "timeout"]
    assert list(inspect.signature(boxer.Session.exec_stream).parameters) == list(e.parameters)
    assert e.return_annotation == "RunResult"
    assert inspect.signature(boxer.AsyncSession.exec).return_annotation == "AsyncRunResult"
    assert inspect.signature(boxer.Session.exec_stream).return_annotation == "RunStream"
    assert inspect.signature(boxer.AsyncSession.exec_stream).return_annotation == \
        "AsyncRunStream"
    assert isinstance(inspect.getattr_static(boxer.Session, "id"), property)
    assert isinstance(inspect.getattr_static(boxer.AsyncSession, "id"), property)


def test_grading_sync_and_async_match():
    """boxer.grading's grade and agrade: the same parameters and defaults;
    only the client's type differs, and agrade is a coroutine."""
    from boxer import grading
    s, a = inspect.signature(grading.grade), inspect.signature(grading.agrade)
    assert [(p.name, p.kind, p.default) for p in s.parameters.values()] == \
           [(p.name, p.kind, p.default) for p in a.parameters.values()]
    assert inspect.iscoroutinefunction(grading.agrade)
    assert not inspect.iscoroutinefunction(grading.grade)
    assert s.parameters["client"].annotation == "BoxerClient"
    assert a.parameters["client"].annotation == "AsyncBoxerClient"
    for name in grading.__all__:
        assert hasattr(grading, name), name
    assert dataclasses.is_dataclass(grading.Verdict) and grading.Verdict.__dataclass_params__.frozen
    body = inspect.getsource(grading.Verdict)
    for f in dataclasses.fields(grading.Verdict):
        assert "#: " in body.split(f"    {f.name}:")[0].rsplit("\n", 2)[-2], f.name


def test_run_result_download_is_awaitable_for_async():
    assert not inspect.iscoroutinefunction(boxer.RunResult.download)
    assert inspect.iscoroutinefunction(boxer.AsyncRunResult.download)
    assert issubclass(boxer.AsyncRunResult, boxer.RunResult)


def test_everything_exported_exists():
    for name in boxer.__all__:
        assert hasattr(boxer, name), name
    errors = [n for n in _errors.__all__]
    assert set(errors) <= set(boxer.__all__)


RESULT = {
    "id": "r_1", "image": "img", "image_digest": "sha256:" + "0" * 64, "exit_code": 0,
    "signal": None, "timed_out": False, "oom_killed": False, "stdout": "x", "stderr": "",
    "stdout_truncated": False, "stderr_truncated": False, "wall_ms": 5,
    "outputs": [{"path": "a/b.txt", "size": 3}], "outputs_truncated": False,
    "started_at": "2026-11-22T10:00:00Z", "finished_at": "2026-11-22T10:00:01Z",
    "new_field_of_a_later_server": 1,
}


def test_results_are_frozen_and_documented():
    r = core.parse_run_result(RESULT, boxer.RunResult, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.exit_code = 1
    assert r.outputs == (boxer.OutputFile("a/b.txt", 3),)
    assert r.started_at.year == 2026 and r.started_at.utcoffset().total_seconds() == 0
    assert r.raw["new_field_of_a_later_server"] == 1
    classes = (boxer.RunResult, boxer.OutputFile, boxer.UploadedFile, boxer.ImageInfo,
               boxer.Health, boxer.Limits, boxer.BatchRun, boxer.BatchResult,
               boxer.BatchRunError, boxer.StdoutEvent, boxer.StderrEvent, boxer.ResultEvent,
               boxer.SessionInfo)
    for cls in classes:
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, cls
        assert cls.__doc__, cls
    # Every public field has a documenting comment (#:) in the source.
    for cls in classes:
        body = inspect.getsource(cls)
        for f in dataclasses.fields(cls):
            if f.name not in ("raw", "_client"):
                assert f"#: " in body.split(f"    {f.name}:")[0].rsplit("\n", 2)[-2], \
                    f"{cls.__name__}.{f.name} has no #: comment"


def test_result_without_a_client_cannot_download():
    r = core.parse_run_result(RESULT, boxer.RunResult, None)
    with pytest.raises(RuntimeError, match="client.download"):
        r.download("a/b.txt")


@pytest.mark.parametrize("status, code, cls", [
    (400, "invalid_request", boxer.BadRequestError),
    (401, "unauthorized", boxer.UnauthorizedError),
    (403, "forbidden", boxer.ForbiddenError),
    (404, "image_not_found", boxer.ImageNotFoundError),
    (404, "run_not_found", boxer.RunNotFoundError),
    (404, "file_not_found", boxer.BoxerFileNotFoundError),
    (404, "session_not_found", boxer.SessionNotFoundError),
    (404, "not_found", boxer.NotFoundError),
    (405, "method_not_allowed", boxer.MethodNotAllowedError),
    (413, "payload_too_large", boxer.PayloadTooLargeError),
    (415, "unsupported_media_type", boxer.UnsupportedMediaTypeError),
    (429, "too_many_requests", boxer.TooManyRequestsError),
    (500, "internal", boxer.InternalServerError),
    (502, "registry_error", boxer.RegistryError),
    (502, "internal", boxer.InternalServerError),   # nginx: the pool is down
    (504, "internal", boxer.InternalServerError),   # nginx: the worker is late
    (503, "busy", boxer.BusyError),
    (503, "runtime_unavailable", boxer.RuntimeUnavailableError),
    # A code this SDK does not know yet: the status decides.
    (404, "snapshot_not_found", boxer.NotFoundError),
    (503, "draining", boxer.ServiceUnavailableError),
    (502, "bad_gateway", boxer.InternalServerError),
    (418, "teapot", boxer.APIError),
    (401, "key_expired", boxer.UnauthorizedError),
    (429, "slow_down", boxer.TooManyRequestsError),
])
def test_error_class_by_code_then_status(status, code, cls):
    req = core.Request("GET", "/x")
    body = ('{"error": {"code": "%s", "message": "m"}}' % code).encode()
    err = core.api_error(req, status, {}, body)
    assert type(err) is cls
    assert (err.status_code, err.code, err.message) == (status, code, "m")
    assert isinstance(err, boxer.APIError) and isinstance(err, boxer.BoxerError)
    assert str(err) == f"GET /x: {status} {code}: m"


def test_error_hierarchy():
    for cls in (boxer.ImageNotFoundError, boxer.RunNotFoundError, boxer.BoxerFileNotFoundError,
                boxer.SessionNotFoundError):
        assert issubclass(cls, boxer.NotFoundError)
    for cls in (boxer.BusyError, boxer.RuntimeUnavailableError):
        assert issubclass(cls, boxer.ServiceUnavailableError)
    assert issubclass(boxer.BoxerTimeoutError, boxer.BoxerConnectionError)
    for cls in (boxer.APIError, boxer.BoxerConnectionError, boxer.CommandFailedError,
                boxer.InvalidResponseError):
        assert issubclass(cls, boxer.BoxerError)
    # Not to be confused with Python's own.
    assert not issubclass(boxer.BoxerFileNotFoundError, FileNotFoundError)


def test_error_without_api_body():
    err = core.api_error(core.Request("GET", "/x"), 502, {}, b"<html>Bad Gateway</html>")
    assert type(err) is boxer.InternalServerError and err.code is None
    assert "Bad Gateway" in err.message
    err = core.api_error(core.Request("GET", "/x"), 500, {}, b"")
    assert err.message == "HTTP 500 with no body"


def test_retry_after_parsing():
    assert core.retry_after({"retry-after": "3"}) == 3.0
    assert core.retry_after({}) is None
    assert core.retry_after({"retry-after": "soon"}) is None
    import datetime as dt
    now = dt.datetime(2026, 11, 22, 10, 0, 0, tzinfo=dt.timezone.utc)
    assert core.retry_after({"retry-after": "Sun, 22 Nov 2026 10:00:07 GMT"}, now) == 7.0


def opts(**kw):
    base = dict(timeout=30.0, run_timeout_margin=300.0, default_wall_clock_secs=30,
                pull_timeout=900.0, max_retries=2, max_retry_after=60.0, headers=None,
                api_key=None)
    base.update(kw)
    return core.make_options("http://127.0.0.1:1", **base)


def test_run_timeout_follows_wall_clock():
    o = opts(run_timeout_margin=5.0)
    req = lambda **kw: core.build_run(o, "img", ["true"], **{**dict(
        files=None, limits=None, network=None, env=None, workdir=None, stdin=None,
        timeout=None), **kw})
    assert req().read_timeout == 35.0
    assert req(limits={"wall_clock_secs": 100}).read_timeout == 105.0
    assert req(limits=boxer.Limits(wall_clock_secs=2)).read_timeout == 7.0
    assert req(limits={"wall_clock_secs": 100}, timeout=1.5).read_timeout == 1.5
    assert core.httpx_args(o, req(limits={"wall_clock_secs": 7}))["timeout"].read == 12.0
    # Never re-sent once it may have reached the server.
    assert req().repeatable is False
    # Other requests use the client's timeout.
    assert core.httpx_args(o, core.build_health())["timeout"].read == 30.0


def test_base_url_from_argument_then_environment():
    kw = dict(timeout=1.0, run_timeout_margin=1.0, default_wall_clock_secs=30, pull_timeout=1.0,
              max_retries=0, max_retry_after=1.0, headers=None, api_key=None)
    assert core.make_options("http://a:1/", environ={}, **kw).base_url == "http://a:1"
    assert core.make_options(None, environ={"BOXER_URL": "http://b:2"}, **kw).base_url == "http://b:2"
    assert core.make_options("http://a:1", environ={"BOXER_URL": "http://b:2"}, **kw).base_url == "http://a:1"
    assert core.make_options(None, environ={}, **kw).base_url == "http://localhost:8080"
    # A path prefix (Boxer behind a reverse proxy) is kept.
    assert core.make_options("https://h/boxer/", environ={}, **kw).base_url == "https://h/boxer"
    for bad in ("localhost:8080", "ftp://h", "http://h/?q=1"):
        with pytest.raises(ValueError, match="base URL"):
            core.make_options(bad, environ={}, **kw)


def test_argument_mistakes_are_caught_before_sending():
    o = opts()
    kw = dict(files=None, limits=None, network=None, env=None, workdir=None, stdin=None,
              timeout=None)
    with pytest.raises(TypeError, match=r"\['sh', '-c', 'echo hi'\]"):
        core.build_run(o, "img", "echo hi", **kw)
    with pytest.raises(TypeError, match="list of strings"):
        core.build_run(o, "img", ["echo", 1], **kw)
    with pytest.raises(TypeError, match="env"):
        core.build_run(o, "img", ["true"], **{**kw, "env": {"A": 1}})
    with pytest.raises(TypeError, match="Path, bytes or str"):
        core.build_run(o, "img", ["true"], **{**kw, "files": {"/a": 5}})
    with pytest.raises(TypeError, match="limits"):
        core.build_run(o, "img", ["true"], **{**kw, "limits": 5})
    with pytest.raises(TypeError, match="image"):
        core.build_run(o, "", ["true"], **kw)
    with pytest.raises(FileNotFoundError):
        core.build_run(o, "img", ["true"], **{**kw, "files": {"/a": Path("/nonexistent/x")}})
    with pytest.raises(TypeError, match="already uploaded"):
        core.build_upload({"a": boxer.UploadedFile("f_1", "a", 1, "0" * 64)})


def test_run_request_body(tmp_path):
    o = opts()
    (tmp_path / "m.py").write_text("print(1)")
    up = boxer.UploadedFile("f_9", "data.csv", 3, "0" * 64)
    req = core.build_run(o, "img", ("python3", "/w/m.py"), files={
        "/w/m.py": tmp_path / "m.py", "/w/b.bin": b"\x00\xff", "/w/t.txt": "h\u00e9", "/w/data.csv": up},
        limits=boxer.Limits(memory_mb=64), network="none", env={"A": "1"}, workdir="/w",
        stdin=b"in", timeout=None)
    assert req.json == {"image": "img", "cmd": ["python3", "/w/m.py"], "env": {"A": "1"},
                        "workdir": "/w", "stdin": "in", "limits": {"memory_mb": 64},
                        "network": "none", "files": [{"id": "f_9", "path": "/w/data.csv"}]}
    assert [(p.name, p.filename, p.content) for p in req.parts] == [
        ("/w/m.py", "m.py", b"print(1)"), ("/w/b.bin", "b.bin", b"\x00\xff"),
        ("/w/t.txt", "t.txt", "h\u00e9".encode())]
    args = core.httpx_args(o, req)
    assert args["files"][0] == ("request", (None, core.dumps(req.json), "application/json"))
    # Without local files it is plain JSON.
    req = core.build_run(o, "img", None, files={"/w/data.csv": up}, limits=None, network=None,
                         env=None, workdir=None, stdin=None, timeout=None)
    args = core.httpx_args(o, req)
    assert "files" not in args and args["headers"]["Content-Type"] == "application/json"


def test_paths_are_encoded():
    assert core.build_delete_image("localhost:5000/boxer/python:3.11").path == \
        "/images/localhost%3A5000%2Fboxer%2Fpython%3A3.11"
    assert core.build_download("r_1", "/output/a b/c.txt").path == "/runs/r_1/outputs/a%20b/c.txt"
    assert core.build_download("r_1", boxer.OutputFile("x/y", 1)).path == "/runs/r_1/outputs/x/y"
    assert core.build_get_run("r/../x").path == "/runs/r%2F..%2Fx"
    assert core.build_read_file("s_1", "/a b/\u00e9/c?d").path == \
        "/sessions/s_1/files/a%20b/%C3%A9/c%3Fd"
    assert core.build_get_session("s/../x").path == "/sessions/s%2F..%2Fx"


def test_command_failed_error_carries_the_result():
    r = core.parse_run_result({**RESULT, "exit_code": 3, "stderr": "boom\n"}, boxer.RunResult, None)
    assert not r.ok
    with pytest.raises(boxer.CommandFailedError, match="(?s)exited with status 3.*boom") as e:
        r.check()
    assert e.value.result is r
    ok = core.parse_run_result(RESULT, boxer.RunResult, None)
    assert ok.check() is ok
    for extra, needle in (({"timed_out": True, "exit_code": 137, "signal": 9}, "timed out"),
                          ({"oom_killed": True, "exit_code": 137, "signal": 9}, "memory"),
                          ({"exit_code": 139, "signal": 11}, "signal 11")):
        with pytest.raises(boxer.CommandFailedError, match=needle):
            core.parse_run_result({**RESULT, **extra}, boxer.RunResult, None).check()
    # A timed-out run is not ok even if its exit code were 0.
    assert not core.parse_run_result({**RESULT, "timed_out": True}, boxer.RunResult, None).ok


def test_invalid_answers_are_reported():
    req = core.Request("GET", "/health")
    with pytest.raises(boxer.InvalidResponseError, match="not JSON"):
        core.parse_json(req, 200, {"content-type": "text/html"}, b"<html>")
    with pytest.raises(boxer.InvalidResponseError, match="'exit_code'"):
        core.parse_run_result({k: v for k, v in RESULT.items() if k != "exit_code"},
                              boxer.RunResult, None)


def test_package_type_checks():
    """py.typed promises types: mypy --strict on the package is clean."""
    pkg = Path(boxer.__file__).parent
    assert (pkg / "py.typed").exists()
    # No cache: nothing is written into the checkout.
    p = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir=/dev/null",
                        str(pkg)], capture_output=True, text=True, cwd=pkg.parent.parent)
    assert p.returncode == 0, p.stdout + p.stderr
