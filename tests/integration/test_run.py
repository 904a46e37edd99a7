"""POST /run and GET /health through nginx -> FastCGI -> runsc."""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import BUSYBOX, PYTHON, SERVER_SECRET, WARM, settled


def sh(script, **kw):
    return dict(image=BUSYBOX, cmd=["/bin/sh", "-c", script], **kw)


def test_health(api):
    status, body, resp, _ = api.request("GET", "/health")
    assert status == 200
    assert body["status"] == "ok"
    assert body["platform"] == "systrap"
    cg = Path("/sys/fs/cgroup")
    assert body["cgroup"] == ("v2" if (cg / "cgroup.controllers").exists() else
                              "hybrid" if (cg / "unified/cgroup.controllers").exists() else "v1")
    assert body["runsc_version"]
    assert resp.getheader("Content-Type") == "application/json; charset=utf-8"


def test_echo(api):
    r = api.run(image=BUSYBOX, cmd=["echo", "hello", "world"])
    assert r["stdout"] == "hello world\n"
    assert r["stderr"] == ""
    assert r["exit_code"] == 0
    assert r["signal"] is None
    assert r["timed_out"] is False and r["oom_killed"] is False
    assert r["id"].startswith("r_") and len(r["id"]) > 20
    assert r["image"] == BUSYBOX
    assert r["image_digest"].startswith("sha256:")
    assert r["wall_ms"] > 0
    assert r["started_at"].endswith("Z") and r["finished_at"].endswith("Z")


def test_python(api):
    r = api.run(image=PYTHON, cmd=["python3", "-c", "print(6 * 7)"])
    assert (r["exit_code"], r["stdout"]) == (0, "42\n")


@pytest.mark.parametrize("code", [0, 3])
def test_exit_codes(api, code):
    r = api.run(**sh(f"exit {code}"))
    assert r["exit_code"] == code
    assert r["signal"] is None


def test_killed_by_signal(api):
    r = api.run(**sh("kill -9 $$"))
    assert r["exit_code"] == 137
    assert r["signal"] == 9
    assert r["timed_out"] is False


def test_stderr(api):
    r = api.run(**sh("echo out; echo err >&2"))
    assert (r["stdout"], r["stderr"]) == ("out\n", "err\n")


def test_stdin(api):
    r = api.run(image=BUSYBOX, cmd=["cat"], stdin="line one\nline two\n")
    assert r["stdout"] == "line one\nline two\n"


def test_stdin_absent_is_empty(api):
    r = api.run(image=BUSYBOX, cmd=["cat"])
    assert r["stdout"] == "" and r["exit_code"] == 0


def test_large_stdin_and_stdout_together(api):
    # Both directions at once, larger than a pipe buffer: no deadlock.
    data = "x" * 60000 + "\n"
    r = api.run(image=BUSYBOX, cmd=["cat"], stdin=data)
    assert r["stdout"] == data


def test_env(api):
    r = api.run(image=PYTHON, cmd=["python3", "-c",
                                   "import os, json; print(json.dumps(dict(os.environ)))"],
                env={"GREETING": "hi", "LANG": "C"})
    env = json.loads(r["stdout"])
    assert env["GREETING"] == "hi"
    assert env["LANG"] == "C"           # the request overrides the image
    assert env["PATH"].startswith("/usr/local/sbin")   # from the image
    assert SERVER_SECRET not in env
    for cgi in ("REQUEST_METHOD", "CONTENT_TYPE", "QUERY_STRING", "HTTP_HOST", "SCRIPT_NAME",
                "SERVER_SOFTWARE", "REMOTE_ADDR", "DOCUMENT_ROOT", "FCGI_ROLE"):
        assert cgi not in env


def test_workdir(api):
    r = api.run(**sh("pwd"), workdir="/tmp")
    assert r["stdout"] == "/tmp\n"
    r = api.run(**sh("pwd"))
    assert r["stdout"] == "/\n"


def test_runs_unprivileged_with_own_hostname(api):
    r = api.run(**sh("id -u; hostname"))
    assert r["stdout"] == "65534\nboxer\n"


def test_writes_stay_private(api):
    r = api.run(**sh("echo private > /tmp/f && cat /tmp/f && echo x > /newfile; echo $?"))
    assert r["stdout"].startswith("private\n")
    # The next run sees a pristine image.
    r = api.run(**sh("ls /tmp /newfile 2>&1; true"))
    assert "private" not in r["stdout"] and "f\n" not in r["stdout"]


def test_timeout(api):
    t0 = time.monotonic()
    r = api.run(image=BUSYBOX, cmd=["sleep", "60"], limits={"wall_clock_secs": 2})
    elapsed = time.monotonic() - t0
    assert r["timed_out"] is True
    assert r["exit_code"] == 137 and r["signal"] == 9
    # Within about a second of the limit (README), answer included.
    assert 2000 <= r["wall_ms"] < 3500
    assert elapsed < 4


def test_oom(api):
    r = api.run(image=PYTHON, cmd=["python3", "-c", "x = bytearray(400 << 20); print('survived')"],
                limits={"memory_mb": 128})
    assert r["oom_killed"] is True
    assert "survived" not in r["stdout"]
    assert r["exit_code"] == 137 and r["timed_out"] is False


def test_memory_under_limit_is_fine(api):
    r = api.run(image=PYTHON, cmd=["python3", "-c", "x = bytearray(32 << 20); print('ok')"],
                limits={"memory_mb": 256})
    assert (r["stdout"], r["oom_killed"]) == ("ok\n", False)


def test_pids_limit(api):
    r = api.run(**sh("for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1 & done; wait; echo done"),
                limits={"pids_limit": 4})
    assert "can't fork" in r["stderr"] or r["exit_code"] != 0


def test_output_truncated(api):
    limit = api.config["output_limit_bytes"]
    r = api.run(**sh(f"head -c {limit * 4} /dev/zero | tr '\\0' a; echo err >&2"))
    assert r["stdout_truncated"] is True
    assert r["stdout"] == "a" * limit
    assert r["stderr_truncated"] is False and r["stderr"] == "err\n"
    assert r["exit_code"] == 0


def test_binary_output_is_valid_json(api):
    status, _, _, raw = api.request("POST", "/run", sh("head -c 4096 /dev/urandom; printf '\\377\\000ok'"))
    assert status == 200
    body = json.loads(raw)   # strict: the whole body is valid JSON
    assert "\ufffd" in body["stdout"]
    assert body["stdout"].endswith("\x00ok")


def test_missing_command_is_127(api):
    r = api.run(image=BUSYBOX, cmd=["/no/such/program"])
    assert r["exit_code"] == 127
    assert "not found" in r["stderr"]
    # A bare name looked up on the image's PATH.
    r = api.run(image=BUSYBOX, cmd=["no-such-program"])
    assert r["exit_code"] == 127
    assert "'no-such-program': not found in the image" in r["stderr"]


def test_image_default_cmd(api):
    # The python image's Cmd is ["python3"]: with stdin it runs a script.
    r = api.run(image=PYTHON, stdin="print('from stdin')\n")
    assert r["stdout"] == "from stdin\n"


def test_concurrent_runs(api):
    results, errors = {}, []

    def one(i):
        try:
            results[i] = api.run(**sh(f"echo run-{i}"))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert {i: r["stdout"] for i, r in results.items()} == {i: f"run-{i}\n" for i in range(20)}
    assert len({r["id"] for r in results.values()}) == 20


def test_worker_killed_mid_run(api):
    """A worker that dies mid-run closes its connection to the executor,
    which cancels the run: nothing of it is left within seconds, and the
    pool's master starts new workers."""
    before = api.worker_pids()
    assert len(before) == 4
    result = {}

    def long_run():
        result["status"] = api.request("POST", "/run", sh("sleep 30"))[0]

    t = threading.Thread(target=long_run)
    t.start()
    # The run is going once its sandbox is up (in a warm sandbox: once the
    # executor's run process took one, with boxer-init starting it).
    deadline = time.monotonic() + 10
    while not api.run_processes() or not (WARM or api.sandboxes()):
        assert time.monotonic() < deadline, "the executor started no sandbox"
        time.sleep(0.1)
    time.sleep(1.0 if WARM else 0.5)
    # Every worker: the one waiting for the run is among them.
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    t.join(timeout=60)
    assert result["status"] == 502  # nginx: the upstream went away

    # Cancelled and cleaned up by the executor: sandbox, cgroups, bundle.
    assert settled(api) == []
    assert api.run_processes() == []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = api.worker_pids()
        if len(after) == 4 and not set(before) & set(after):
            break
        time.sleep(0.2)
    assert len(after) == 4 and not set(before) & set(after)
    assert api.run(**sh("echo alive"))["stdout"] == "alive\n"


def test_memory_too_small_to_start(api):
    """At 16 MiB the sandbox itself is killed for memory as it starts: the
    run ran out of memory (a result), not a server error."""
    r = api.run(image=PYTHON, cmd=["python3", "-c", "print(1)"], limits={"memory_mb": 16})
    assert r["oom_killed"] is True and r["exit_code"] == 137 and r["signal"] == 9
    assert api.run(**sh("echo fine"))["stdout"] == "fine\n"
