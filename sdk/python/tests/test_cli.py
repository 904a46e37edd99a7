"""The boxer command without a Boxer server: boxer.cli.main() in this
process against httpx.MockTransport, and the command itself (python -m
boxer) in a subprocess against a loopback server. test_stream.py runs it
against the real stack."""

import importlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import boxer
from boxer import cli
from stream_helpers import (
    RESULT, LoopbackServer, Server, bytewise, err, error_event, free_port, out, result,
    stream_response,
)


@pytest.fixture
def serve(monkeypatch):
    """serve(*script): the CLI's clients talk to a Server of that script."""
    def install(*script):
        server = Server(*script)

        def client(base_url=None, **kw):
            http = httpx.Client(transport=httpx.MockTransport(server))
            return boxer.BoxerClient(base_url or "http://boxer.test", http_client=http,
                                     max_retry_after=0, **kw)
        monkeypatch.setattr(cli, "BoxerClient", client)
        return server
    return install


def body_of(seen):
    return json.loads(seen[3])


def test_run_streams_output_and_exits_with_the_programs_status(serve, capsys):
    s = serve(stream_response(chunks=bytewise(out("a\n"), err("oops\n"), out("b"),
                                              result(exit_code=3)))[0])
    assert cli.main(["run", "img", "--", "python3", "-c", "print(1)"]) == 3
    o, e = capsys.readouterr()
    assert (o, e) == ("a\nb", "oops\n")
    method, path, headers, _ = s.seen[0]
    assert (method, path, headers["accept"]) == ("POST", "/run", "text/event-stream")
    assert body_of(s.seen[0]) == {"image": "img", "cmd": ["python3", "-c", "print(1)"]}


def test_run_output_is_written_as_it_comes(serve, monkeypatch):
    """Each event is written and flushed before the next is read."""
    resp, body = stream_response(chunks=[out("a\n"), out("b\n"), result()])
    flushed = []

    class Out(io.StringIO):
        def flush(self):
            flushed.append((self.getvalue(), body.taken))
    monkeypatch.setattr(sys, "stdout", Out())
    serve(resp)
    assert cli.main(["run", "img", "--", "x"]) == 0
    # "a" was out while the body had given one chunk only.
    assert flushed[0] == ("a\n", 1) and ("a\nb\n", 2) in flushed and body.closed


def test_run_options(serve, capsys, tmp_path, monkeypatch):
    (tmp_path / "m:1.py").write_text("print(1)")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("h\u00e9".encode())))
    s = serve(stream_response(result())[0])
    argv = ["run", "--limit", "memory_mb=256", "img", "--file", f"{tmp_path}/m:1.py:/w/m.py",
            "--limit", "cpu_cores=0.5", "--env", "A=1=2", "--workdir", "/w", "--network",
            "sandbox", "--stdin", "--url", "http://other.test", "--api-key", "k1",
            "--", "python3", "--", "m.py"]
    assert cli.main(argv) == 0
    _, path, headers, content = s.seen[0]
    assert headers["authorization"] == "Bearer k1" and headers["host"] == "other.test"
    assert headers["content-type"].startswith("multipart/form-data")
    request = {"image": "img", "cmd": ["python3", "--", "m.py"], "env": {"A": "1=2"},
               "workdir": "/w", "stdin": "h\u00e9", "limits": {"memory_mb": 256, "cpu_cores": 0.5},
               "network": "sandbox"}
    assert json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode() in content
    assert b'name="/w/m.py"' in content and b"print(1)" in content


def test_run_without_a_command_runs_the_images(serve):
    s = serve(stream_response(result())[0])
    assert cli.main(["run", "img"]) == 0
    assert body_of(s.seen[0]) == {"image": "img"}


@pytest.mark.parametrize("changes, code, notes", [
    (dict(timed_out=True, exit_code=137, signal=9), 137, ["the program timed out"]),
    (dict(oom_killed=True, exit_code=137, signal=9), 137, ["the program ran out of memory"]),
    (dict(exit_code=139, signal=11), 139, ["the program was killed by signal 11"]),
    (dict(stdout_truncated=True), 0, ["the program's stdout was truncated"]),
    (dict(stdout_truncated=True, stderr_truncated=True, exit_code=1), 1,
     ["the program's stdout was truncated", "the program's stderr was truncated"]),
])
def test_run_says_what_the_status_does_not(serve, capsys, changes, code, notes):
    serve(stream_response(out("partial line"), result(**changes))[0])
    assert cli.main(["run", "img", "--", "x"]) == code
    o, e = capsys.readouterr()
    assert o == "partial line"
    lines = e.splitlines()
    assert lines[0] == "" and len(lines) == len(notes) + 1  # a new line after the output
    for line, note in zip(lines[1:], notes):
        assert line.startswith(f"boxer: {note}")


def test_run_json(serve, capsys):
    s = serve(httpx.Response(200, json={**RESULT, "exit_code": 4}))
    assert cli.main(["run", "img", "--json", "--", "x"]) == 4
    o, e = capsys.readouterr()
    assert json.loads(o) == {**RESULT, "exit_code": 4} and e == ""
    assert s.seen[0][2]["accept"] == "application/json"


def test_run_error_event(serve, capsys):
    serve(stream_response(out("a\n"), error_event("internal", "the worker died (q_1)"))[0])
    assert cli.main(["run", "img", "--", "x"]) == 125
    o, e = capsys.readouterr()
    assert o == "a\n"
    assert e == "boxer: POST /run: 500 internal: the worker died (q_1)\n"


def test_run_refused(serve, capsys):
    serve(httpx.Response(404, json={"error": {"code": "image_not_found",
                                              "message": "image 'img' not found"}}))
    assert cli.main(["run", "img", "--", "x"]) == 125
    assert capsys.readouterr() == ("", "boxer: POST /run: 404 image_not_found: "
                                       "image 'img' not found\n")


def test_run_unauthorized_says_how_to_give_a_key(serve, capsys):
    serve(httpx.Response(401, json={"error": {"code": "unauthorized", "message": "no key"}}))
    assert cli.main(["images"]) == 125
    e = capsys.readouterr().err
    assert "401 unauthorized: no key" in e and "$BOXER_API_KEY" in e and "--api-key" in e


def test_run_stream_ended_early(serve, capsys):
    serve(stream_response(out("a\n"))[0])
    assert cli.main(["run", "img", "--", "x"]) == 125
    e = capsys.readouterr().err
    assert e.startswith("boxer: POST http://boxer.test/run: the event stream ended before")
    assert "check the Boxer server at http://boxer.test" in e


def test_connection_refused_names_the_url(serve, capsys):
    serve(httpx.ConnectError("[Errno 111] Connection refused"))
    assert cli.main(["health", "--url", "http://nowhere.test:9"]) == 125
    e = capsys.readouterr().err
    assert e.startswith("boxer: cannot connect to the Boxer server at http://nowhere.test:9 "
                        "([Errno 111] Connection refused)")
    assert "--url" in e and "$BOXER_URL" in e


def test_ctrl_c_closes_the_stream_and_exits_130(serve, capsys):
    resp, body = stream_response(chunks=[out("a\n"), KeyboardInterrupt(), result()])
    serve(resp)
    assert cli.main(["run", "img", "--", "x"]) == 130
    assert capsys.readouterr() == ("a\n", "boxer: interrupted\n")
    assert body.closed and body.taken == 2


def test_broken_pipe_closes_the_stream(serve, monkeypatch):
    class Closed(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")
    monkeypatch.setattr(sys, "stdout", Closed())
    resp, body = stream_response(chunks=[out("a\n"), out("b\n"), result()])
    serve(resp)
    assert cli.main(["run", "img", "--", "x"]) == 141
    assert body.closed and body.taken == 1


@pytest.mark.parametrize("argv, needle", [
    (["run"], "the following arguments are required: IMAGE"),
    (["run", "img", "--limit", "memory_mb"], "'memory_mb' is not KEY=VALUE"),
    (["run", "img", "--limit", "memory_mb=lots"], "'lots' is not a number"),
    (["run", "img", "--file", "main.py"], "LOCAL:DEST"),
    (["run", "img", "--file", "main.py:w/main.py"], "absolute path"),
    (["run", "img", "--env", "=1"], "is not KEY=VALUE"),
    (["run", "img", "--network", "wide"], "invalid choice: 'wide'"),
    (["run", "img", "ls", "-l"], "unrecognized arguments: -l"),
    (["batch", "f.jsonl"], "the following arguments are required: --image"),
    (["images", "--", "ls"], "only 'boxer run' takes a command"),
    (["health", "--url", "localhost:8080"], "must be http:// or https://"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_usage_errors_exit_2(serve, capsys, argv, needle):
    serve(httpx.Response(500))
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    assert needle in capsys.readouterr().err


def test_no_command_prints_the_help(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_unreadable_file_and_bad_stdin(serve, capsys, tmp_path, monkeypatch):
    s = serve(stream_response(result())[0])
    assert cli.main(["run", "img", "--file", f"{tmp_path}/none.py:/w/m.py", "--", "x"]) == 2
    assert "cannot read" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff")))
    assert cli.main(["run", "img", "--stdin", "--", "x"]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert s.seen == []


@pytest.mark.parametrize("command", ["run", "batch", "images", "health"])
def test_help_of_every_command(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--help"])
    assert e.value.code == 0
    o = capsys.readouterr().out
    assert o.startswith(f"usage: boxer {command}") and "--url" in o


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"boxer {boxer.__version__}\n"


BATCH_ID = "b_" + "0" * 32


def batch_answer(n, **changes):
    return {"id": BATCH_ID, "image": "img", "image_digest": "sha256:" + "0" * 64,
            "results": [{**RESULT, "id": f"{BATCH_ID}/{i}", "index": i, "stdout": f"{i}\n",
                         **changes} for i in range(n)]}


def test_batch(serve, capsys, tmp_path):
    runs = [{"cmd": ["python3", "-c", "print(0)"]},
            {"cmd": ["python3", "-"], "stdin": "print(1)", "limits": {"wall_clock_secs": 3}}]
    f = tmp_path / "runs.jsonl"
    f.write_text("".join(json.dumps(r) + "\n\n" for r in runs))
    s = serve(httpx.Response(200, json=batch_answer(2, exit_code=1)))
    assert cli.main(["batch", str(f), "--image", "img", "--parallelism", "2",
                     "--limit", "memory_mb=512", "--network", "none"]) == 0
    assert body_of(s.seen[0]) == {"image": "img", "parallelism": 2, "limits": {"memory_mb": 512},
                                  "network": "none", "runs": runs}
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["stdout"] for x in lines] == ["0\n", "1\n"]
    assert json.loads(lines[1]) == batch_answer(2, exit_code=1)["results"][1]


def test_batch_from_stdin_with_files(serve, capsys, monkeypatch):
    line = {"cmd": ["cat", "/w/a"], "files": {"/w/a": "hello"}}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(line) + "\n"))
    files = {"files": [{"id": "f_1", "name": "a", "size": 5, "sha256": "0" * 64}]}
    s = serve(httpx.Response(201, json=files), httpx.Response(200, json=batch_answer(1)))
    assert cli.main(["batch", "-", "--image", "img"]) == 0
    assert [x[:2] for x in s.seen] == [("POST", "/files"), ("POST", "/batch")]
    assert body_of(s.seen[1])["runs"] == [{"cmd": ["cat", "/w/a"],
                                           "files": [{"id": "f_1", "path": "/w/a"}]}]
    assert len(capsys.readouterr().out.splitlines()) == 1


@pytest.mark.parametrize("text, needle", [
    ('{"cmd": ["true"]}\nnot json\n', "runs.jsonl:2: not JSON"),
    ('["true"]\n', "runs.jsonl:1: a run is a JSON object"),
    ('{"cmd": ["true"], "image": "x"}\n', "runs.jsonl:1: unknown key 'image'"),
    ('\n\n', "holds no runs"),
    ('{"cmd": "echo hi"}\n', "cmd must be a list of strings"),
])
def test_batch_bad_input(serve, capsys, tmp_path, text, needle):
    f = tmp_path / "runs.jsonl"
    f.write_text(text)
    s = serve(httpx.Response(500))
    assert cli.main(["batch", str(f), "--image", "img"]) == 2
    assert needle in capsys.readouterr().err and s.seen == []


def test_batch_refused(serve, capsys, tmp_path):
    f = tmp_path / "runs.jsonl"
    f.write_text('{"cmd": ["true"]}\n')
    serve(httpx.Response(400, json={"error": {"code": "invalid_request",
                                              "message": "parallelism"}}))
    assert cli.main(["batch", str(f), "--image", "img"]) == 125
    assert capsys.readouterr().err == "boxer: POST /batch: 400 invalid_request: parallelism\n"


def test_images(serve, capsys):
    serve(httpx.Response(200, json={"images": [
        {"reference": "localhost:5000/boxer/python:3.11", "digest": "sha256:aa", "size": 1,
         "last_used": None},
        {"reference": "busybox", "digest": "sha256:bb", "size": 2, "last_used": None}]}))
    assert cli.main(["images"]) == 0
    assert capsys.readouterr().out == ("localhost:5000/boxer/python:3.11  sha256:aa\n"
                                       "busybox                           sha256:bb\n")


def test_health(serve, capsys):
    health = {"status": "ok", "runsc_version": "runsc version release-1", "platform": "systrap"}
    serve(httpx.Response(200, json=health))
    assert cli.main(["health"]) == 0
    o = capsys.readouterr().out
    assert json.loads(o) == health and o.startswith("{\n  ")


def test_health_unavailable(serve, capsys):
    serve(httpx.Response(503, json={"error": {"code": "runtime_unavailable",
                                              "message": "runsc is broken"}}))
    assert cli.main(["health"]) == 125
    assert "runtime_unavailable: runsc is broken" in capsys.readouterr().err


# --- the command itself, in a subprocess ----------------------------------------------


def boxer_cmd(*args, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("BOXER_URL", "BOXER_API_KEY")}
    return subprocess.run([sys.executable, "-m", "boxer", *args], capture_output=True,
                          encoding="utf-8", timeout=60, env=env, **kw)


def test_script_entry_point():
    """pyproject.toml installs `boxer` as boxer.cli:main, whose return value
    the script exits with."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    module, _, name = project["project"]["scripts"]["boxer"].partition(":")
    assert getattr(importlib.import_module(module), name) is cli.main


def test_command_help():
    p = boxer_cmd("--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: boxer ")
    assert "run" in p.stdout and "batch" in p.stdout


def test_command_with_no_server():
    url = f"http://127.0.0.1:{free_port()}"
    p = boxer_cmd("run", "--url", url, "img", "--", "true")
    assert p.returncode == 125 and p.stdout == ""
    assert f"cannot connect to the Boxer server at {url}" in p.stderr


def test_command_streams_from_a_server():
    with LoopbackServer([out("h\u00e9\n"), 0.2, err("e\n"), result(exit_code=7)]) as srv:
        p = boxer_cmd("run", "--url", srv.url, "img", "--", "true")
    assert (p.returncode, p.stdout, p.stderr) == (7, "h\u00e9\n", "e\n")


def test_command_ctrl_c_stops_the_run():
    """SIGINT while streaming: the connection is closed (the server sees its
    client go, and stops the run) and boxer exits 130."""
    with LoopbackServer([out("a\n"), 30.0, result()]) as srv:
        env = {k: v for k, v in os.environ.items() if k not in ("BOXER_URL", "BOXER_API_KEY")}
        proc = subprocess.Popen([sys.executable, "-m", "boxer", "run", "--url", srv.url, "img",
                                 "--", "sleep", "30"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, encoding="utf-8", env=env)
        try:
            assert proc.stdout.readline() == "a\n"
            proc.send_signal(signal.SIGINT)
            _, e = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130 and e == "boxer: interrupted\n"
        assert srv.gone.wait(10) and not srv.finished.is_set()
