"""POST /batch without a server: the request the SDK builds from batch()'s
arguments, the answer it reads, and the upload-then-batch exchange over
httpx.MockTransport (what goes over the wire, in which order). Retries of
a batch are in test_retries.py; the real server's batches in test_batch.py."""

import asyncio
import dataclasses
import json

import httpx
import pytest

import boxer
from boxer import _core as core
from boxer.grading import prepare


def opts(**kw):
    base = dict(timeout=30.0, run_timeout_margin=300.0, default_wall_clock_secs=30,
                pull_timeout=900.0, max_retries=2, max_retry_after=60.0, headers=None,
                api_key=None)
    base.update(kw)
    return core.make_options("http://127.0.0.1:1", **base)


def plan(runs, o=None, **kw):
    args = dict(network=None, limits=None, parallelism=None, timeout=None)
    args.update(kw)
    return core.plan_batch(o or opts(), "img", runs, **args)


def result(i, batch="b_" + "a" * 32, **kw):
    r = {"id": f"{batch}/{i}", "image": "img", "image_digest": "sha256:" + "0" * 64,
         "exit_code": 0, "signal": None, "timed_out": False, "oom_killed": False,
         "stdout": f"{i}\n", "stderr": "", "stdout_truncated": False, "stderr_truncated": False,
         "wall_ms": 5, "outputs": [], "outputs_truncated": False,
         "started_at": "2026-11-22T10:00:00Z", "finished_at": "2026-11-22T10:00:01Z",
         "index": i}
    r.update(kw)
    return r


def answer(n, batch="b_" + "a" * 32, changes=None):
    """A batch's answer of n results; changes: {index: fields to change}."""
    changes = changes or {}
    return {"id": batch, "image": "img", "image_digest": "sha256:" + "0" * 64,
            "results": [result(i, batch, **changes.get(i, {})) for i in range(n)]}


def test_batch_request_body(tmp_path):
    (tmp_path / "m.py").write_text("print(1)")
    up = boxer.UploadedFile("f_9", "table.csv", 3, "0" * 64)
    p = plan([
        boxer.BatchRun(cmd=("python3", "/w/m.py"), stdin=b"h\xc3\xa9", env={"A": "1"},
                       workdir="/w", files={"/w/m.py": tmp_path / "m.py", "/w/t.csv": up},
                       limits=boxer.Limits(wall_clock_secs=5, memory_mb=64)),
        {"cmd": ["cat"], "stdin": "x", "files": {"/w/copy.py": "print(1)", "/w/b.bin": b"\x00"}},
        {},
    ], network="sandbox", limits=boxer.Limits(memory_mb=512, cpu_cores=2), parallelism=2)
    # Each distinct content is uploaded once, named after its first path.
    assert [(part.name, part.filename, part.content) for part in p.uploads] == [
        ("file", "m.py", b"print(1)"), ("file", "b.bin", b"\x00")]
    upload = core.batch_upload(p)
    assert (upload.method, upload.path, upload.parts) == ("POST", "/files", p.uploads)
    stored = (boxer.UploadedFile("f_1", "m.py", 8, "1" * 64),
              boxer.UploadedFile("f_2", "b.bin", 1, "2" * 64))
    req = core.build_batch(p, stored)
    assert (req.method, req.path, req.parts, req.repeatable) == ("POST", "/batch", (), False)
    assert req.json == {
        "image": "img", "parallelism": 2, "limits": {"memory_mb": 512, "cpu_cores": 2},
        "network": "sandbox",
        "runs": [
            {"cmd": ["python3", "/w/m.py"], "env": {"A": "1"}, "workdir": "/w",
             "stdin": "h\u00e9", "limits": {"wall_clock_secs": 5, "memory_mb": 64},
             "files": [{"id": "f_1", "path": "/w/m.py"}, {"id": "f_9", "path": "/w/t.csv"}]},
            {"cmd": ["cat"], "stdin": "x",
             "files": [{"id": "f_1", "path": "/w/copy.py"}, {"id": "f_2", "path": "/w/b.bin"}]},
            {},
        ]}
    # Plain JSON: no multipart.
    args = core.httpx_args(opts(), req)
    assert "files" not in args and args["headers"]["Content-Type"] == "application/json"
    assert json.loads(args["content"]) == req.json
    # Without local contents there is nothing to upload first.
    p = plan([{"cmd": ["true"], "files": {"/w/t.csv": up}}])
    assert core.batch_upload(p) is None
    assert core.build_batch(p, ()).json["runs"] == [
        {"cmd": ["true"], "files": [{"id": "f_9", "path": "/w/t.csv"}]}]


def test_upload_answer_must_match_the_upload():
    p = plan([{"files": {"/w/a": b"a", "/w/b": b"b"}}])
    with pytest.raises(boxer.InvalidResponseError, match="stored 1 files for an upload of 2"):
        core.build_batch(p, (boxer.UploadedFile("f_1", "a", 1, "0" * 64),))


def test_batch_read_timeout():
    o = opts(run_timeout_margin=5.0, default_wall_clock_secs=30)
    runs = [{"cmd": ["true"]}] * 6
    # The client's assumed default wall clock, all runs one after another.
    assert plan(runs, o).read_timeout == 6 * 30 + 5
    # ceil(6 / 4) = 2 rounds.
    assert plan(runs, o, parallelism=4).read_timeout == 2 * 30 + 5
    # The batch's wall clock is each run's default.
    assert plan(runs, o, parallelism=2, limits={"wall_clock_secs": 10}).read_timeout == 3 * 10 + 5
    # The longest of the runs' own decides.
    mixed = [{"limits": {"wall_clock_secs": 1}}] * 5 + [{"limits": boxer.Limits(wall_clock_secs=7)}]
    assert plan(mixed, o, parallelism=3, limits={"wall_clock_secs": 2}).read_timeout == 2 * 7 + 5
    assert plan(mixed[:5] + [{}], o, parallelism=3,
                limits=boxer.Limits(wall_clock_secs=4)).read_timeout == 2 * 4 + 5
    # timeout= wins.
    assert plan(runs, o, timeout=2.5).read_timeout == 2.5
    req = core.build_batch(plan(runs, o, parallelism=3), ())
    assert req.read_timeout == 2 * 30 + 5
    assert core.httpx_args(o, req)["timeout"].read == 65.0


def test_batch_argument_mistakes_are_caught_before_sending():
    with pytest.raises(ValueError, match="at least one run"):
        plan([])
    for bad in ("echo hi", {"cmd": ["true"]}, boxer.BatchRun(cmd=["true"]), 5):
        with pytest.raises(TypeError, match="list of boxer.BatchRun or dicts"):
            plan(bad)
    with pytest.raises(TypeError, match=r"runs\[1\] has the unknown key 'image'"):
        plan([{}, {"image": "other"}])
    with pytest.raises(TypeError, match=r"runs\[0\] must be a boxer.BatchRun or a dict"):
        plan([["true"]])
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(ValueError, match="parallelism must be an int >= 1"):
            plan([{}], parallelism=bad)
    with pytest.raises(ValueError, match=r"runs\[0\]\.limits\.cpu_cores.*batch\(limits=\.\.\.\)"):
        plan([{"limits": {"cpu_cores": 1}}])
    with pytest.raises(ValueError, match=r"runs\[0\]\.limits\.pids_limit"):
        plan([boxer.BatchRun(limits=boxer.Limits(pids_limit=4))])
    with pytest.raises(TypeError, match=r"runs\[0\]\.limits must be"):
        plan([{"limits": 5}])
    with pytest.raises(TypeError, match=r"\['sh', '-c', 'echo hi'\]"):
        plan([{"cmd": "echo hi"}])
    with pytest.raises(TypeError, match=r"runs\[1\]\.env must map strings to strings"):
        plan([{}, {"env": {"A": 1}}])
    with pytest.raises(TypeError, match=r"runs\[0\]\.stdin must be str or bytes"):
        plan([{"stdin": 5}])
    with pytest.raises(TypeError, match=r"runs\[0\]\.files must be a dict"):
        plan([{"files": [("/a", b"x")]}])
    with pytest.raises(TypeError, match=r"runs\[0\]\.files\['/a'\] must be a pathlib.Path"):
        plan([{"files": {"/a": 5}}])
    with pytest.raises(FileNotFoundError):
        plan([{"files": {"/a": __import__("pathlib").Path("/nonexistent/x")}}])
    with pytest.raises(TypeError, match="image"):
        core.plan_batch(opts(), "", [{}], network=None, limits=None, parallelism=None,
                        timeout=None)


def test_batch_answer_is_read_in_order():
    p = plan([{}] * 3)
    err = {"code": "internal", "message": "cannot start the run (request id q_1)"}
    data = answer(3, changes={1: {"exit_code": -1, "stdout": "", "error": err}})
    b = core.parse_batch_result(data, p)
    assert isinstance(b, boxer.BatchResult) and b.id == "b_" + "a" * 32
    assert (b.image, b.image_digest) == ("img", "sha256:" + "0" * 64)
    assert len(b) == 3 and list(b) == list(b.results) and b[2] is b.results[2]
    assert b[1:] == b.results[1:] and b[-1] is b.results[2]
    assert [r.index for r in b] == [0, 1, 2]
    assert [r.id for r in b] == [f"b_{'a' * 32}/{i}" for i in range(3)]
    assert b[0].ok and b[0].error is None and b[0].stdout == "0\n"
    assert b[1].error == boxer.BatchRunError("internal", err["message"])
    assert str(b[1].error) == f"internal: {err['message']}"
    assert not b[1].ok and not b.ok
    with pytest.raises(boxer.CommandFailedError, match="could not be started.*q_1"):
        b[1].check()
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.id = "x"
    # A batch run keeps no outputs and cannot be fetched again.
    with pytest.raises(RuntimeError, match="run of a batch"):
        b[0].download("x.txt")
    assert b.raw is data and b[2].raw is data["results"][2]
    assert core.parse_batch_result(answer(3), p).ok


def test_a_run_result_of_post_run_has_no_batch_fields():
    r = core.parse_run_result({k: v for k, v in result(0).items() if k != "index"},
                              boxer.RunResult, None)
    assert r.index is None and r.error is None


@pytest.mark.parametrize("mangle, message", [
    (lambda d: d["results"].pop(), "has 2 results for 3 runs"),
    (lambda d: d["results"].reverse(), "the result of run 2 at position 0"),
    (lambda d: d["results"][1].pop("index"), "valid 'index'"),
    (lambda d: d["results"][1].update(index="1"), "valid 'index'"),
    (lambda d: d["results"][1].update(error={"code": 5}), "valid 'code'"),
    (lambda d: d["results"][1].update(error="broken"), "valid 'code'"),
    (lambda d: d.pop("results"), "valid 'results'"),
    (lambda d: d.pop("id"), "valid 'id'"),
])
def test_batch_answer_that_is_not_the_api(mangle, message):
    data = answer(3)
    mangle(data)
    with pytest.raises(boxer.InvalidResponseError, match=message):
        core.parse_batch_result(data, plan([{}] * 3))


@pytest.fixture(params=["sync", "async"])
def mode(request):
    return request.param


def call(mode, fn, *args, **kw):
    if mode == "sync":
        return fn(*args, **kw)
    return asyncio.run(fn(*args, **kw))


def make(mode, handler, **kw):
    transport = httpx.MockTransport(handler)
    if mode == "sync":
        return boxer.BoxerClient("http://boxer.test", http_client=httpx.Client(transport=transport), **kw)
    return boxer.AsyncBoxerClient("http://boxer.test",
                                  http_client=httpx.AsyncClient(transport=transport), **kw)


def test_batch_uploads_local_contents_first(mode):
    seen = []

    def handler(request):
        seen.append(request)
        if request.url.path == "/files":
            body = request.read()
            assert body.count(b'name="file"') == 2
            assert b'filename="in.txt"' in body and b'filename="c.txt"' in body
            return httpx.Response(201, json={"files": [
                {"id": "f_1", "name": "in.txt", "size": 5, "sha256": "0" * 64},
                {"id": "f_2", "name": "c.txt", "size": 1, "sha256": "0" * 64}]})
        return httpx.Response(200, json=answer(len(json.loads(request.content)["runs"])))

    c = make(mode, handler)
    b = call(mode, c.batch, "img", [
        {"cmd": ["cat", "/w/in.txt"], "files": {"/w/in.txt": "hello"}},
        boxer.BatchRun(cmd=["cat", "/w/in.txt"], files={"/w/in.txt": b"hello", "/w/c.txt": "c"}),
    ], parallelism=2, limits={"wall_clock_secs": 4})
    assert [(r.method, r.url.path) for r in seen] == [("POST", "/files"), ("POST", "/batch")]
    assert json.loads(seen[1].content)["runs"] == [
        {"cmd": ["cat", "/w/in.txt"], "files": [{"id": "f_1", "path": "/w/in.txt"}]},
        {"cmd": ["cat", "/w/in.txt"], "files": [{"id": "f_1", "path": "/w/in.txt"},
                                                {"id": "f_2", "path": "/w/c.txt"}]}]
    # The batch's answer is awaited for its rounds of wall clock.
    assert seen[1].extensions["timeout"]["read"] == 1 * 4 + 300.0
    # The upload's, for the client's timeout.
    assert seen[0].extensions["timeout"]["read"] == 30.0
    assert [r.stdout for r in b] == ["0\n", "1\n"]
    # Results of the async client are plain RunResults: nothing to download.
    assert all(type(r) is boxer.RunResult for r in b)


def test_batch_error_of_the_whole_batch(mode):
    def handler(request):
        return httpx.Response(404, json={"error": {"code": "image_not_found",
                                                   "message": "image 'img' not found"}})

    with pytest.raises(boxer.ImageNotFoundError, match="POST /batch: 404 image_not_found"):
        call(mode, make(mode, handler).batch, "img", [{}])


def test_grading_run_as_a_batch_run():
    g = prepare("pass", timeout=2.5, limits={"memory_mb": 64})
    r = g.batch_run()
    assert r.cmd == g.cmd and r.stdin == g.stdin and r.workdir == "/tmp" and r.env is None
    assert r.limits == {"wall_clock_secs": g.limits.wall_clock_secs, "memory_mb": 64}
    assert prepare("pass").batch_run(env={"A": "1"}).limits == {"wall_clock_secs": 19}
    assert prepare("pass").batch_run(env={"A": "1"}).env == {"A": "1"}
    with pytest.raises(ValueError, match="cpu_cores bounds a batch's sandbox"):
        prepare("pass", limits={"cpu_cores": 1}).batch_run()
    with pytest.raises(ValueError, match="nofile"):
        prepare("pass", limits={"nofile": 64}).batch_run()
    # A run of the batch that could not be started is no verdict.
    p = plan([r])
    err = {"code": "internal", "message": "fork failed"}
    b = core.parse_batch_result(answer(1, changes={0: {"exit_code": -1, "stdout": "",
                                                       "error": err}}), p)
    v = g.verdict(b[0])
    assert not v.passed and not v.verified
    assert v.result == ("failed: no verdict from the grading harness (the run could not be "
                        "started: internal: fork failed)")
