"""client.batch() through the real stack (POST /batch), each test with the
sync client and with the async one: results in the order of the runs,
stdin, env and workdir per run, a run's own wall clock, a crash or an
unstartable run hiding nothing, files uploaded first or by the SDK, and
what the server refuses."""

import hashlib
import time

import pytest

import boxer
from conftest import BUSYBOX, NOCMD, PYTHON


def py(code, **fields):
    return {"cmd": ["python3", "-c", code], **fields}


async def test_results_in_order_with_parallelism(both):
    # Earlier runs sleep longer: two at a time, they end out of order.
    runs = [boxer.BatchRun(cmd=["python3", "-c", f"import time; time.sleep({0.5 + 0.2 * (5 - i)}); "
                                                 f"print({i})"]) for i in range(6)]
    t0 = time.monotonic()
    b = await both.batch(PYTHON, runs, parallelism=2)
    elapsed = time.monotonic() - t0
    assert isinstance(b, boxer.BatchResult) and len(b) == 6
    assert b.id.startswith("b_") and len(b.id) == 2 + 32
    assert b.image == PYTHON and b.image_digest.startswith("sha256:")
    assert [r.stdout for r in b] == [f"{i}\n" for i in range(6)]
    assert [r.index for r in b] == list(range(6))
    assert [r.id for r in b] == [f"{b.id}/{i}" for i in range(6)]
    for r in b:
        assert r.ok and r.check() is r and r.error is None and r.outputs == ()
        assert r.image_digest == b.image_digest and r.wall_ms > 0
    assert b.ok
    # Two at a time: the runs' wall times overlapped (one after another,
    # the batch would take at least their sum).
    assert elapsed < sum(r.wall_ms for r in b) / 1000, (elapsed, [r.wall_ms for r in b])


async def test_stdin_per_run(both):
    rev = ["python3", "-c", "import sys; print(sys.stdin.read()[::-1])"]
    b = await both.batch(PYTHON, [
        {"cmd": rev, "stdin": "abc"},
        boxer.BatchRun(cmd=rev, stdin="h\u00e9\u2603".encode()),   # bytes: UTF-8 text
        {"cmd": rev},                                              # no stdin: end of file
    ], parallelism=3)
    assert [r.stdout for r in b] == ["cba\n", "\u2603\u00e9h\n", "\n"]


async def test_wall_clock_per_run(both):
    t0 = time.monotonic()
    b = await both.batch(BUSYBOX, [
        {"cmd": ["echo", "before"]},
        {"cmd": ["sleep", "30"], "limits": {"wall_clock_secs": 1}},
        boxer.BatchRun(cmd=["echo", "after"], limits=boxer.Limits(wall_clock_secs=5)),
    ], parallelism=2, limits={"wall_clock_secs": 10})
    assert time.monotonic() - t0 < 9
    before, slow, after = b
    assert slow.timed_out and slow.exit_code == 137 and not slow.ok and slow.error is None
    with pytest.raises(boxer.CommandFailedError, match="timed out"):
        slow.check()
    assert (before.stdout, after.stdout) == ("before\n", "after\n")
    assert before.ok and after.ok and not b.ok


async def test_a_crash_hides_nothing(both):
    b = await both.batch(BUSYBOX, [
        {"cmd": ["echo", "first"]},
        {"cmd": ["sh", "-c", "echo out; echo boom >&2; exit 3"]},
        {"cmd": ["echo", "last"]},
    ], parallelism=2)
    first, crash, last = b
    assert (crash.exit_code, crash.stdout, crash.stderr) == (3, "out\n", "boom\n")
    with pytest.raises(boxer.CommandFailedError, match=r"run b_\w+/1 exited with status 3"):
        crash.check()
    assert (first.stdout, first.exit_code, last.stdout, last.exit_code) == \
        ("first\n", 0, "last\n", 0)


async def test_env_and_workdir(both):
    show = ["python3", "-c", "import os; print(os.getcwd(), os.environ.get('GREETING'))"]
    b = await both.batch(PYTHON, [
        {"cmd": show, "env": {"GREETING": "hi"}, "workdir": "/usr"},
        {"cmd": show},
        boxer.BatchRun(cmd=show, env={"GREETING": "yo"}, workdir="/tmp"),
    ])
    assert b[0].stdout == "/usr hi\n"
    assert b[1].stdout.endswith(" None\n")      # env is the run's own
    assert b[2].stdout == "/tmp yo\n"
    # An image without a WorkingDir: the run's own /tmp.
    b = await both.batch(NOCMD, [{"cmd": ["/bin/busybox", "pwd"]}] * 2)
    assert [r.stdout for r in b] == ["/tmp\n", "/tmp\n"]


async def test_each_run_has_its_own_tmp(both):
    b = await both.batch(BUSYBOX, [
        {"cmd": ["sh", "-c", "echo mine > /tmp/f; cat /tmp/f"]},
        {"cmd": ["sh", "-c", "cat /tmp/f 2>/dev/null || echo absent"]},
    ])
    assert [r.stdout for r in b] == ["mine\n", "absent\n"]


async def test_uploads(both, tmp_path):
    content = b"a,b\n1,2\n"
    (up,) = await both.upload({"table.csv": content})
    (tmp_path / "main.py").write_text("import sys; print(open(sys.argv[1]).read().upper(), end='')")
    b = await both.batch(PYTHON, [
        # Uploaded before, mounted by id.
        {"cmd": ["cat", "/data/table.csv"], "files": {"/data/table.csv": up}},
        # Local contents: the SDK uploads them first, the same bytes once,
        # so that runs giving the same path the same content agree (the
        # runs of a batch share one file system: a path holds one file).
        boxer.BatchRun(cmd=["python3", "/w/main.py", "/w/in.txt"],
                       files={"/w/main.py": tmp_path / "main.py", "/w/in.txt": "shout\n"}),
        {"cmd": ["python3", "/w/main.py", "/w/table.csv"],
         "files": {"/w/main.py": tmp_path / "main.py", "/w/table.csv": content}},
        {"cmd": ["sh", "-c", "sha256sum /w/main.py; echo x >> /w/main.py || echo read-only"],
         "files": {"/w/main.py": (tmp_path / "main.py").read_bytes()}},
    ], parallelism=2)
    assert b[0].check().stdout == content.decode()
    assert b[1].check().stdout == "SHOUT\n"
    assert b[2].check().stdout == "A,B\n1,2\n"
    digest = hashlib.sha256((tmp_path / "main.py").read_bytes()).hexdigest()
    assert b[3].stdout.startswith(digest) and "read-only" in b[3].stdout
    assert all(r.error is None for r in b)


async def test_one_path_one_file_per_batch(both):
    """Two runs giving one path different contents: the later run cannot
    start (a result with an error), the earlier one has its file."""
    b = await both.batch(BUSYBOX, [
        {"cmd": ["cat", "/w/f"], "files": {"/w/f": "one\n"}},
        {"cmd": ["cat", "/w/f"], "files": {"/w/f": "two\n"}},
    ])
    assert b[0].check().stdout == "one\n"
    assert b[1].error is not None and b[1].error.code == "invalid_request"
    assert "/w/f" in b[1].error.message and b[1].exit_code == -1


async def test_a_run_that_cannot_start(both):
    """An upload id the server does not know fails that run alone: it is a
    result with an error, not an exception, and the others ran."""
    gone = boxer.UploadedFile("f_" + "0" * 32, "gone.txt", 1, "0" * 64)
    b = await both.batch(BUSYBOX, [
        {"cmd": ["echo", "fine"]},
        {"cmd": ["cat", "/w/gone.txt"], "files": {"/w/gone.txt": gone}},
        {"cmd": ["echo", "also fine"]},
    ])
    fine, missing, also = b
    assert isinstance(missing.error, boxer.BatchRunError) and missing.error.code == "file_not_found"
    assert missing.error.message
    assert (missing.exit_code, missing.stdout, missing.stderr, missing.ok) == (-1, "", "", False)
    with pytest.raises(boxer.CommandFailedError, match="could not be started"):
        missing.check()
    assert (fine.stdout, also.stdout) == ("fine\n", "also fine\n")
    assert fine.error is None and also.error is None


async def test_refusals_of_the_whole_batch(both):
    with pytest.raises(boxer.ImageNotFoundError):
        await both.batch("localhost:5000/boxer/no-such-image:1", [{"cmd": ["true"]}])
    with pytest.raises(boxer.BadRequestError, match="parallelism"):
        await both.batch(BUSYBOX, [{"cmd": ["true"]}], parallelism=1_000_000)
    # /tmp is each run's own: nothing can be mounted there.
    with pytest.raises(boxer.BadRequestError, match="/tmp"):
        await both.batch(BUSYBOX, [{"cmd": ["true"], "files": {"/tmp/x": b"x"}}])
    # Caught before anything is sent.
    with pytest.raises(ValueError, match="at least one run"):
        await both.batch(BUSYBOX, [])
    with pytest.raises(ValueError, match=r"runs\[0\]\.limits\.cpu_cores"):
        await both.batch(BUSYBOX, [{"cmd": ["true"], "limits": {"cpu_cores": 1}}])
