"""The examples, run as a user would (a process with --url and --image)
against the real stack."""

import gzip
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import EXAMPLES, HUMANEVAL, PYTHON, PYTHON_PYTEST, need

EVALUATE = EXAMPLES / "humaneval" / "evaluate.py"


def example(env, *args, timeout=300):
    """Run an example with this venv's python, as a user would."""
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def problems():
    with gzip.open(HUMANEVAL, "rt") as f:
        return [json.loads(line) for line in f]


@pytest.fixture
def data():
    need(HUMANEVAL.exists(), f"{HUMANEVAL} (the project's shared data) is missing")
    return HUMANEVAL


def test_hello_world(url, example_env):
    p = example(example_env, EXAMPLES / "hello_world.py", "--url", url, "--image", PYTHON)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "stdout: hello world"
    assert lines[1] == "exit code: 0"
    assert re.fullmatch(r"wall time: \d+ ms", lines[2])


def test_hello_world_reports_errors(url, example_env):
    p = example(example_env, EXAMPLES / "hello_world.py", "--url", url, "--image",
                "localhost:5000/nope/missing:1")
    assert p.returncode == 1 and "image_not_found" in p.stderr and not p.stdout


def test_agent_session(url, example_env):
    """The scripted agent (no OPENAI_API_KEY): one session, a failing test
    fixed, exit 0 only if the final tests pass."""
    p = example(example_env, EXAMPLES / "agent_session.py", "--url", url, "--image", PYTHON)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    lines = p.stdout.splitlines()
    assert re.fullmatch(r"# session s_[0-9a-f]{32}: \S+ \(sha256:[0-9a-f]{12}\), "
                        r"idle timeout \d+ s", lines[0]), lines[0]
    assert lines[-1] == "tests pass" and p.stderr == ""
    assert re.fullmatch(r"# session s_[0-9a-f]{32} deleted", lines[-2])
    # The tests failed before the fix and passed after it, in the same sandbox.
    assert "    | FAIL median([4, 1, 3, 2]) = 3, want 2.5" in lines
    assert "    | 2 passed, 2 failed" in lines
    assert lines.count("    | 4 passed, 0 failed") == 2
    assert any(re.fullmatch(r"  exit 1 \(\d+ ms, s_[0-9a-f]{32}/2\)", line) for line in lines)
    # report.py wrote its file, read back before and after the fix.
    assert "# report before the fix: median: 7; after: median: 5.5" in lines


def test_humaneval_canonical(url, example_env, data):
    p = example(example_env, EVALUATE, "--url", url, "--image", PYTHON, "--canonical",
                "--concurrency", "4", "--data", data)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.splitlines()[-1] == "pass@1: 164/164 (100.0%)"


def test_humaneval_broken_samples(url, example_env, data, tmp_path):
    samples = tmp_path / "broken.jsonl"
    with open(samples, "w") as f:
        for i, pr in enumerate(problems()):
            # Wrong answers and code that does not even parse.
            completion = "    return None\n" if i % 2 else "    return (\n"
            f.write(json.dumps({"task_id": pr["task_id"], "completion": completion}) + "\n")
    results = tmp_path / "results.jsonl"
    p = example(example_env, EVALUATE, "--url", url, "--image", PYTHON, "--samples", samples,
                "--concurrency", "4", "--results", results, "--data", data)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.splitlines()[-1] == "pass@1: 0/164 (0.0%)"
    recs = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(recs) == 164 and not any(r["passed"] for r in recs)
    assert [r["index"] for r in recs] == list(range(164))
    assert all(r["verified"] and r["result"].startswith("failed: ") for r in recs)
    assert recs[0]["exception"] == "SyntaxError" and "was never closed" in recs[0]["result"]
    assert {r["exception"] for r in recs[1::2]} <= {"AssertionError", "TypeError"}


def test_humaneval_canonical_batch(url, example_env, data, tmp_path):
    """--batch: the same 164/164 through batches of 40 runs (the test
    stack's 2 cores: two at once), each verdict signed by its harness."""
    results = tmp_path / "results.jsonl"
    p = example(example_env, EVALUATE, "--url", url, "--image", PYTHON, "--canonical",
                "--batch", "--batch-size", "40", "--concurrency", "2", "--data", data,
                "--results", results)
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout.splitlines()
    assert out[-1] == "pass@1: 164/164 (100.0%)"
    assert re.fullmatch(r"scored 164 samples of 164 problems in [\d.]+ s at concurrency 2 "
                        r"in 5 batches, 0 graded again alone", out[-2]), out[-2]
    recs = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["index"] for r in recs] == list(range(164))
    assert all(r["passed"] and r["verified"] and r["result"] == "passed" for r in recs)
    assert all(re.fullmatch(r"b_[0-9a-f]{32}/\d+", r["run_id"]) for r in recs)
    assert len({r["run_id"].split("/")[0] for r in recs}) == 5
    assert not any("batch_result" in r for r in recs)


def test_humaneval_broken_samples_batch(url, example_env, data, tmp_path):
    """--batch with samples that all fail: each failure is graded again
    alone, and that verdict is the one reported. No --batch-size: the
    batches the test stack finds too large (its upload_limit_bytes) are
    split until they fit."""
    samples = tmp_path / "broken.jsonl"
    with open(samples, "w") as f:
        for i, pr in enumerate(problems()):
            completion = "    return None\n" if i % 2 else "    return (\n"
            f.write(json.dumps({"task_id": pr["task_id"], "completion": completion}) + "\n")
    results = tmp_path / "results.jsonl"
    p = example(example_env, EVALUATE, "--url", url, "--image", PYTHON, "--samples", samples,
                "--batch", "--concurrency", "2", "--results", results, "--data", data)
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout.splitlines()
    assert out[-1] == "pass@1: 0/164 (0.0%)"
    assert re.fullmatch(r"scored 164 samples of 164 problems in [\d.]+ s at concurrency 2 "
                        r"in \d+ batch(?:es)?, 164 graded again alone", out[-2]), out[-2]
    recs = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["index"] for r in recs] == list(range(164))
    assert not any(r["passed"] for r in recs)
    assert all(r["verified"] and r["result"].startswith("failed: ") for r in recs)
    # The batch's verdict was the same failure; the final one is a run's own.
    assert all(r["batch_result"] == r["result"] for r in recs), \
        [r for r in recs if r["batch_result"] != r["result"]][:3]
    assert all(r["run_id"].startswith("r_") for r in recs)
    assert recs[0]["exception"] == "SyntaxError" and "was never closed" in recs[0]["result"]


def test_humaneval_batch_refused(url, example_env, data):
    """A batch the server refuses as a whole: every sample of it is an
    error (exit status 1), reported once, with what --batch asked for."""
    p = example(example_env, EVALUATE, "--url", url, "--image", PYTHON, "--canonical",
                "--batch", "--limit", "3", "--concurrency", "2", "--batch-cpu-cores", "1000",
                "--data", data)
    assert p.returncode == 1
    assert p.stdout.splitlines()[-1] == "pass@1: 0/3 (0.0%)"
    assert "3 could not be run" in p.stdout
    assert "a batch of 3 samples (HumanEval/0 to HumanEval/2) could not be run" in p.stderr
    assert "cpu_cores" in p.stderr and "sandbox of 1000 cores" in p.stderr


def test_humaneval_bad_input(url, example_env, data, tmp_path):
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/9999", "completion": ""}) + "\n")
    p = example(example_env, EVALUATE, "--url", url, "--samples", samples, "--data", data)
    assert p.returncode == 2 and "HumanEval/9999" in p.stderr
    samples.write_text(json.dumps({"task_id": "HumanEval/0"}) + "\n")
    p = example(example_env, EVALUATE, "--url", url, "--samples", samples, "--data", data)
    assert p.returncode == 2 and "completion" in p.stderr
    p = example(example_env, EVALUATE, "--url", url, "--canonical", "--data", data,
                "--timeout", "0")
    assert p.returncode == 2 and "--timeout" in p.stderr
    for flag, value in (("--batch-size", "0"), ("--batch-cpu-cores", "0")):
        p = example(example_env, EVALUATE, "--url", url, "--canonical", "--data", data,
                    "--batch", flag, value)
        assert p.returncode == 2 and flag in p.stderr
    p = example(example_env, EVALUATE, "--url", url, "--generate", "m", "--limit", "1",
                "--data", data)
    assert p.returncode != 0 and "OPENAI_API_KEY" in p.stderr


class FakeModel(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint on loopback that answers with the
    canonical solution in a code block, except for one task, and asks for a
    retry once: the --generate path without a real model."""

    problems = {}
    seen = []
    throttled = False

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeModel.seen.append((self.path, self.headers["Authorization"], body["model"]))
        if not FakeModel.throttled:
            FakeModel.throttled = True
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        text = body["messages"][0]["content"]
        pr = next(p for p in self.problems.values() if p["prompt"] in text)
        code = pr["prompt"] + pr["canonical_solution"]
        if pr["task_id"] == "HumanEval/1":
            code = f"def {pr['entry_point']}(*args):\n    return 42\n"
        reply = {"choices": [{"message": {"role": "assistant",
                                          "content": f"Here it is:\n```python\n{code}```\n"}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_humaneval_generate(url, example_env, data, tmp_path):
    FakeModel.problems = {p["task_id"]: p for p in problems()[:5]}
    port = int(os.environ.get("BOXER_TEST_PORT", "18080")) + 18
    server = ThreadingHTTPServer(("127.0.0.1", port), FakeModel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = dict(example_env, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1")
        saved = tmp_path / "samples.jsonl"
        p = example(env, EVALUATE, "--url", url, "--image", PYTHON, "--generate", "o3-mini",
                    "--limit", "5", "--save-samples", saved, "-v", "--data", data)
    finally:
        server.shutdown()
        server.server_close()
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout.splitlines()
    assert out[-1] == "pass@1: 4/5 (80.0%)"
    assert any(line.startswith("FAIL HumanEval/1 (sample 1): failed: ") for line in out)
    assert FakeModel.seen[0] == ("/v1/chat/completions", "Bearer sk-test", "o3-mini")
    assert len(FakeModel.seen) == 6  # five problems and one retry after the 429
    samples = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [s["task_id"] for s in samples] == [f"HumanEval/{i}" for i in range(5)]
    assert samples[0]["completion"].startswith("from typing import List")


def test_upload_and_run(url, example_env):
    """Waits on the server side of issue 4 (multipart POST /run, outputs)."""
    p = example(example_env, EXAMPLES / "upload_and_run" / "upload_and_run.py", "--url", url,
                "--image", PYTHON_PYTEST)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert "/workspace/project/tests/test_core.py" in p.stdout
    assert re.search(r"7 passed", p.stdout)
    assert "junit.xml from the sandbox: 7 tests, 0 failures, 0 errors" in p.stdout
    assert p.stdout.splitlines()[-1].startswith("pytest exit code 0 (run r_")


def test_upload_and_run_reports_failures(url, example_env, tmp_path):
    """A failing test in the project makes the example exit with pytest's status.
    Waits on issue 4 too."""
    proj = tmp_path / "proj"
    (proj / "tests").mkdir(parents=True)
    (proj / "tests" / "test_x.py").write_text("def test_fails():\n    assert 1 + 1 == 3\n")
    p = example(example_env, EXAMPLES / "upload_and_run" / "upload_and_run.py", "--url", url,
                "--image", PYTHON_PYTEST, "--project", proj)
    assert p.returncode == 1, p.stdout[-2000:] + p.stderr[-2000:]
    assert "1 failed" in p.stdout and "1 failures" in p.stdout
