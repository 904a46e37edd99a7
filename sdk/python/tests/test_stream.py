"""client.stream() and the boxer command against the real stack: output
arrives while the program runs, the result is run()'s, and a stream closed
early (or a Ctrl-C) ends its run. test_stream_mock.py and test_cli.py cover
the parsing and the error paths without a server."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import boxer
from conftest import BUSYBOX, PYTHON, it, url_of

# "a", then 2 s later "b": each flushed as it is written.
A_THEN_B = ["python3", "-u", "-c",
            "import sys, time; print('a'); time.sleep(2); print('b', file=sys.stderr); "
            "print('c')"]


def sync_events(client, *args, **kw):
    """[(event, seconds since the call)] of a whole stream."""
    t0 = time.monotonic()
    with client.stream(*args, **kw) as events:
        return [(e, time.monotonic() - t0) for e in events]


async def async_events(client, *args, **kw):
    t0 = time.monotonic()
    async with client.stream(*args, **kw) as events:
        return [(e, time.monotonic() - t0) async for e in events]


@pytest.fixture(params=["sync", "async"])
async def collect(request, url):
    """await collect(image, cmd, **kw) -> [(event, time)]: with the sync
    client, then with the async one."""
    if request.param == "sync":
        with boxer.BoxerClient(url) as c:
            async def go(*a, **kw):
                return sync_events(c, *a, **kw)
            yield go
    else:
        async with boxer.AsyncBoxerClient(url) as c:
            async def go(*a, **kw):
                return await async_events(c, *a, **kw)
            yield go


def first_time(timed, cls, text):
    """When the joined data of cls events first held text."""
    seen = ""
    for e, t in timed:
        if isinstance(e, cls):
            seen += e.data
            if text in seen:
                return t
    raise AssertionError(f"{text!r} never came in {cls.__name__} events: {timed}")


def joined(timed, cls):
    return "".join(e.data for e, _ in timed if isinstance(e, cls))


def test_output_arrives_while_the_program_runs(client):
    timed = sync_events(client, PYTHON, A_THEN_B)
    a = first_time(timed, boxer.StdoutEvent, "a\n")
    b = first_time(timed, boxer.StderrEvent, "b\n")
    assert b - a >= 1.5, timed
    assert isinstance(timed[-1][0], boxer.ResultEvent)
    assert sum(isinstance(e, boxer.ResultEvent) for e, _ in timed) == 1


async def test_output_arrives_while_the_program_runs_async(aclient):
    timed = await async_events(aclient, PYTHON, A_THEN_B)
    a = first_time(timed, boxer.StdoutEvent, "a\n")
    b = first_time(timed, boxer.StderrEvent, "b\n")
    assert b - a >= 1.5, timed
    r = timed[-1][0].result
    assert isinstance(r, boxer.AsyncRunResult) and r.stdout == "a\nc\n"


def result_fields(r):
    """What a run's result says of the program (not of its one run)."""
    return (r.image, r.image_digest, r.exit_code, r.signal, r.timed_out, r.oom_killed, r.stdout,
            r.stderr, r.stdout_truncated, r.stderr_truncated, r.outputs, r.outputs_truncated)


def test_stream_result_is_runs(client):
    kw = dict(files={"/w/m.py": "import os, sys\nprint(sys.stdin.read(), os.environ['A'])\n"
                                "open('/output/o.txt', 'w').write('x')\nsys.exit(3)\n"},
              env={"A": "env"}, workdir="/w", stdin="in", limits={"wall_clock_secs": 20})
    cmd = ["python3", "/w/m.py"]
    ran = client.run(PYTHON, cmd, **kw)
    timed = sync_events(client, PYTHON, cmd, **kw)
    streamed = timed[-1][0].result
    assert type(streamed) is boxer.RunResult
    assert result_fields(streamed) == result_fields(ran)
    assert (streamed.exit_code, streamed.stdout) == (3, "in env\n")
    assert joined(timed, boxer.StdoutEvent) == streamed.stdout
    assert joined(timed, boxer.StderrEvent) == streamed.stderr
    # The streamed run is a run like any other: kept, with its outputs.
    assert client.get_run(streamed.id).stdout == streamed.stdout
    assert streamed.download("o.txt") == b"x"


async def test_stream_of_a_run_that_ends_badly(collect):
    timed = await collect(BUSYBOX, ["sleep", "30"], limits={"wall_clock_secs": 1})
    r = timed[-1][0].result
    assert r.timed_out and not r.ok
    timed = await collect(BUSYBOX, ["sh", "-c", "echo out; kill -9 $$"])
    r = timed[-1][0].result
    assert (r.exit_code, r.signal, joined(timed, boxer.StdoutEvent)) == (137, 9, "out\n")


def test_streamed_output_keeps_to_the_output_limit(client, api):
    limit = api.config["output_limit_bytes"]
    flood = f"head -c {limit * 2} /dev/zero | tr '\\0' x"
    timed = sync_events(client, BUSYBOX, ["sh", "-c", flood])
    r = timed[-1][0].result
    assert r.stdout_truncated and len(r.stdout) == limit
    assert joined(timed, boxer.StdoutEvent) == r.stdout


async def test_refusal_before_the_run_raises_as_run_does(collect):
    with pytest.raises(boxer.ImageNotFoundError):
        await collect("localhost:5000/boxer/no-such-image:1", ["true"])
    with pytest.raises(boxer.BadRequestError, match="memory_mb"):
        await collect(BUSYBOX, ["true"], limits={"memory_mb": 1})


def wait_run_gone(api, since, within=10):
    while api.run_processes():
        assert time.monotonic() - since < within, "the executor still runs the abandoned run"
        time.sleep(0.1)
    assert it.settled(api) == []


def test_closing_the_stream_ends_the_run(client, api):
    with client.stream(BUSYBOX, ["sh", "-c", "echo begun; sleep 60"],
                       limits={"wall_clock_secs": 60}) as events:
        first = next(events)
        assert first == boxer.StdoutEvent("begun\n")
    wait_run_gone(api, time.monotonic())


async def test_closing_the_async_stream_ends_the_run(aclient, api):
    async with aclient.stream(BUSYBOX, ["sh", "-c", "echo begun; sleep 60"],
                              limits={"wall_clock_secs": 60}) as events:
        async for e in events:
            assert e == boxer.StdoutEvent("begun\n")
            break
    wait_run_gone(api, time.monotonic())


def test_executor_gone_mid_stream_raises(make_stack):
    """Once the stream began, a failure is its error event: the typed
    exception, after the events before it."""
    s = make_stack().start()
    with boxer.BoxerClient(url_of(s)) as c:
        events = c.stream(BUSYBOX, ["sh", "-c", "echo begun; sleep 60"])
        assert next(events) == boxer.StdoutEvent("begun\n")
        os.kill(s.executor_server_pid(), signal.SIGKILL)
        with pytest.raises(boxer.RuntimeUnavailableError):
            next(events)
        assert list(events) == []


# --- the boxer command ---------------------------------------------------------------


def boxer_argv():
    """The installed boxer script when the venv has it, else python -m boxer."""
    script = Path(sys.executable).parent / "boxer"
    return [str(script)] if script.exists() else [sys.executable, "-m", "boxer"]


def boxer_env():
    return {k: v for k, v in os.environ.items() if k not in ("BOXER_URL", "BOXER_API_KEY")}


def boxer_cmd(url, *args, **kw):
    return subprocess.run([*boxer_argv(), *args[:1], "--url", url, *args[1:]],
                          capture_output=True, encoding="utf-8", timeout=120, env=boxer_env(),
                          **kw)


def test_command_runs_a_program(url, tmp_path):
    (tmp_path / "m.py").write_text("import sys\nprint(sys.stdin.read().upper())\n"
                                   "print('to stderr', file=sys.stderr)\nsys.exit(5)\n")
    p = boxer_cmd(url, "run", PYTHON, "--file", f"{tmp_path}/m.py:/w/m.py", "--workdir", "/w",
                  "--stdin", "--limit", "wall_clock_secs=20", "--", "python3", "m.py",
                  input="hello")
    assert (p.returncode, p.stdout, p.stderr) == (5, "HELLO\n", "to stderr\n")


def test_command_streams_live(url):
    proc = subprocess.Popen([*boxer_argv(), "run", "--url", url, PYTHON, "--", *A_THEN_B],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8",
                            env=boxer_env())
    try:
        t0 = time.monotonic()
        assert proc.stdout.readline() == "a\n"
        a = time.monotonic() - t0
        assert proc.stderr.readline() == "b\n"
        b = time.monotonic() - t0
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b - a >= 1.5 and rest == "c\n" and proc.returncode == 0


def test_command_says_what_the_status_does_not(url):
    p = boxer_cmd(url, "run", BUSYBOX, "--limit", "wall_clock_secs=1", "--", "sleep", "30")
    assert p.returncode >= 128 and "boxer: the program timed out" in p.stderr
    p = boxer_cmd(url, "run", BUSYBOX, "--", "sh", "-c", "kill -9 $$")
    assert p.returncode == 137 and "killed by signal 9" in p.stderr


def test_command_json_is_the_result(url, client):
    p = boxer_cmd(url, "run", BUSYBOX, "--json", "--", "sh", "-c", "echo hi; exit 2")
    assert p.returncode == 2
    r = json.loads(p.stdout)
    assert (r["stdout"], r["exit_code"]) == ("hi\n", 2)
    assert client.get_run(r["id"]).stdout == "hi\n"


def test_command_refused(url):
    p = boxer_cmd(url, "run", "localhost:5000/boxer/no-such-image:1", "--", "true")
    assert p.returncode == 125 and p.stdout == ""
    assert p.stderr.startswith("boxer: POST /run: 404 image_not_found")


def test_command_ctrl_c_ends_the_run(url, api):
    proc = subprocess.Popen([*boxer_argv(), "run", "--url", url, BUSYBOX, "--limit",
                             "wall_clock_secs=60", "--", "sh", "-c", "echo begun; sleep 60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8",
                            env=boxer_env())
    try:
        assert proc.stdout.readline() == "begun\n"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and err == "boxer: interrupted\n"
    wait_run_gone(api, time.monotonic())


def test_command_batch_images_health(url, tmp_path):
    runs = tmp_path / "runs.jsonl"
    runs.write_text('{"cmd": ["sh", "-c", "echo one"]}\n'
                    '{"cmd": ["sh", "-c", "cat; exit 4"], "stdin": "two"}\n')
    p = boxer_cmd(url, "batch", str(runs), "--image", BUSYBOX, "--parallelism", "2")
    assert p.returncode == 0, p.stderr
    results = [json.loads(line) for line in p.stdout.splitlines()]
    assert [(r["index"], r["stdout"], r["exit_code"]) for r in results] == \
        [(0, "one\n", 0), (1, "two", 4)]
    p = boxer_cmd(url, "images")
    assert p.returncode == 0
    refs = {line.split()[0]: line.split()[1] for line in p.stdout.splitlines()}
    assert BUSYBOX in refs and refs[BUSYBOX].startswith("sha256:")
    p = boxer_cmd(url, "health")
    assert p.returncode == 0 and json.loads(p.stdout)["status"] == "ok"
