"""examples/agent_session.py without a Boxer server or a model: its main()
in this process, against the sessions API in memory (httpx.MockTransport)
whose execs answer as the example's two programs would from the files the
example wrote, and an OpenAI-compatible chat API scripted the same way.
test_examples.py runs the example against the real stack."""

import importlib.util
import json
import re
import sys

import httpx
import pytest

import boxer
from conftest import EXAMPLES
from session_helpers import Fake, error

_spec = importlib.util.spec_from_file_location("agent_session", EXAMPLES / "agent_session.py")
agent = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(agent)

STATS = "/workspace/stats.py"


class Project(Fake):
    """Execs of the example's programs, answered from the session's
    stats.py as it is: buggy, fixed, or (`fixes_ignored`) always buggy,
    or (`always_passing`) never failing."""

    def __init__(self, *script, fixes_ignored=False, always_passing=False):
        super().__init__(*script)
        self.fixes_ignored = fixes_ignored
        self.always_passing = always_passing
        self.cmds = []

    def run(self, session, body):
        assert body["workdir"] == "/workspace"
        assert body["env"] == {"PYTHONDONTWRITEBYTECODE": "1"}
        files, cmd = session["files"], body["cmd"]
        self.cmds.append(cmd)
        fixed = self.always_passing or (files[STATS].decode() != agent.BUGGY_STATS
                                         and not self.fixes_ignored)
        if cmd == ["python3", "report.py"]:
            files["/workspace/report.txt"] = f"count: 6\nmedian: {5.5 if fixed else 7:g}\n".encode()
            return {"stdout": "wrote report.txt for 6 numbers\n"}
        if cmd == ["python3", "test_stats.py"]:
            if fixed:
                return {"stdout": "ok   median([4, 1, 3, 2]) = 2.5, want 2.5\n4 passed, 0 failed\n"}
            return {"stdout": "FAIL median([4, 1, 3, 2]) = 3, want 2.5\n2 passed, 2 failed\n",
                    "exit_code": 1}
        return {"stdout": "", "stderr": f"{cmd[0]}: not found\n", "exit_code": 127}


@pytest.fixture
def run_example(monkeypatch, capsys):
    """run_example(fake, *args, model=None) -> (exit status, stdout, stderr):
    main() with its BoxerClient on fake, and its chat API on model."""
    real_client, real_boxer = httpx.Client, boxer.BoxerClient
    for var in ("OPENAI_API_KEY", "OPENAI_MODEL", "OPENAI_BASE_URL", "BOXER_API_KEY"):
        monkeypatch.delenv(var, raising=False)

    def go(fake, *args, model=None):
        monkeypatch.setattr(boxer, "BoxerClient", lambda url: real_boxer(
            url, http_client=real_client(transport=httpx.MockTransport(fake))))
        if model is not None:
            monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
            monkeypatch.setenv("OPENAI_BASE_URL", "http://model.test/v1/")
            monkeypatch.setattr(httpx, "Client", lambda **kw: real_client(
                transport=httpx.MockTransport(model), **kw))
        monkeypatch.setattr(sys, "argv", ["agent_session.py", "--url", "http://boxer.test",
                                          *args])
        try:
            code = agent.main()
        except SystemExit as e:
            code = e.code
        out, err = capsys.readouterr()
        return code, out, err
    return go


def test_scripted_run_fixes_the_failing_test(run_example):
    fake = Project()
    code, out, err = run_example(fake)
    assert (code, err) == (0, ""), out
    lines = out.splitlines()
    assert re.fullmatch(r"# session s_[0-9a-f]{32}: localhost:5000/boxer/python:3\.11 "
                        r"\(sha256:d{12}\), idle timeout 300 s", lines[0])
    assert lines[-1] == "tests pass"
    assert re.fullmatch(r"# session s_[0-9a-f]{32} deleted", lines[-2])
    # Each tool call says what it does, and shows what came back.
    assert f"> write_file {STATS} ({len(agent.BUGGY_STATS)} bytes)" in lines
    assert f"> write_file {STATS} ({len(agent.FIXED_STATS)} bytes)" in lines
    assert "> read_file /workspace/report.txt" in lines
    assert lines.count("> exec python3 test_stats.py") == 3
    assert "    | 2 passed, 2 failed" in lines and "    | 4 passed, 0 failed" in lines
    assert "    | median: 7" in lines and "    | median: 5.5" in lines
    assert any(re.fullmatch(r"  exit 1 \(5 ms, s_\w+/2\)", line) for line in lines)
    assert "# report before the fix: median: 7; after: median: 5.5" in lines
    # One session, made and deleted; everything in it.
    assert fake.sessions == {}
    methods = [m for m, _ in fake.requests()]
    assert methods[:2] == ["POST", "GET"] and methods[-1] == "DELETE"
    assert fake.seen[0].json == {"image": agent.DEFAULT_IMAGE, "limits": {"wall_clock_secs": 30}}
    assert fake.cmds == [["python3", "report.py"], ["python3", "test_stats.py"],
                         ["python3", "test_stats.py"], ["python3", "report.py"],
                         ["python3", "test_stats.py"]]
    # Every exec streamed (Accept: text/event-stream).
    execs = [s for s in fake.seen if s.path.endswith("/exec")]
    assert all(s.headers["accept"] == "text/event-stream" for s in execs)


def test_scripted_run_exits_1_when_the_tests_still_fail(run_example):
    code, out, err = run_example(Project(fixes_ignored=True))
    assert code == 1 and out.splitlines()[-1] == "tests FAIL"
    code, out, err = run_example(Project(always_passing=True))
    assert code == 1 and "the tests passed before the fix" in err
    assert out.splitlines()[-1] == "tests pass, but not as the script expected"


def test_boxer_errors_are_reported(run_example):
    fake = Fake(error(404, "image_not_found"))
    code, out, err = run_example(fake, "--image", "localhost:5000/nope:1")
    assert code == 1 and out == ""
    assert err.startswith("agent_session: POST /sessions: 404 image_not_found")
    assert fake.seen[0].json["image"] == "localhost:5000/nope:1"


def test_arguments(run_example):
    code, _, err = run_example(Project(), "--max-steps", "0")
    assert code == 2 and "--max-steps" in err
    code, _, err = run_example(Project(), model=lambda r: error(500, "x"))
    assert code == 2 and "--model or $OPENAI_MODEL" in err


def tool_call(n, name, arguments):
    return {"id": f"call_{n}", "type": "function",
            "function": {"name": name, "arguments": arguments if isinstance(arguments, str)
                         else json.dumps(arguments)}}


class Model:
    """An OpenAI-compatible chat API answering from a script of messages
    (after one 429); records the request bodies."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.bodies = []
        self.throttled = False

    def __call__(self, request):
        assert (request.method, request.url.path) == ("POST", "/v1/chat/completions")
        assert request.headers["authorization"] == "Bearer sk-test"
        if not self.throttled:
            self.throttled = True
            return httpx.Response(429, headers={"Retry-After": "0"})
        self.bodies.append(json.loads(request.read()))
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant",
                                                                  **reply}}]})


def test_model_drives_the_tools(run_example):
    model = Model(
        {"content": "Let me look.", "tool_calls": [
            tool_call(1, "read_file", {"path": STATS}),
            tool_call(2, "exec", {"cmd": ["python3", "test_stats.py"]})]},
        {"content": None, "tool_calls": [
            tool_call(3, "read_file", {"path": "/workspace/nope.py"}),
            tool_call(4, "write_file", "{not json"),
            tool_call(5, "write_file", {"path": STATS, "content": agent.FIXED_STATS})]},
        {"tool_calls": [tool_call(6, "exec", {"cmd": ["python3", "test_stats.py"]})]},
        {"content": "Fixed: the median is 5.5."},
    )
    fake = Project()
    code, out, err = run_example(fake, "--model", "m-1", model=model)
    assert code == 0, out + err
    lines = out.splitlines()
    assert "# m-1 takes over" in lines and "m-1: Fixed: the median is 5.5." in lines
    assert lines[-1] == "tests pass" and fake.sessions == {}
    assert len(model.bodies) == 4
    first = model.bodies[0]
    assert first["model"] == "m-1" and first["messages"][0]["role"] == "user"
    assert [t["function"]["name"] for t in first["tools"]] == ["write_file", "read_file", "exec"]
    # The tools' answers go back, one message per call.
    tools = {m["tool_call_id"]: m["content"] for m in model.bodies[-1]["messages"]
             if m["role"] == "tool"}
    assert tools["call_1"] == agent.BUGGY_STATS
    assert json.loads(tools["call_2"])["exit_code"] == 1
    assert "2 passed, 2 failed" in json.loads(tools["call_2"])["stdout"]
    assert tools["call_3"].startswith("error: file_not_found")
    assert tools["call_4"].startswith("error: bad arguments for write_file")
    assert tools["call_5"] == f"wrote {len(agent.FIXED_STATS)} bytes to {STATS}"
    assert json.loads(tools["call_6"])["exit_code"] == 0


def test_model_that_never_stops_is_stopped(run_example):
    model = Model({"tool_calls": [tool_call(1, "exec", {"cmd": "python3 test_stats.py"})]})
    fake = Project()
    code, out, _ = run_example(fake, "--model", "m", "--max-steps", "3", model=model)
    assert code == 1 and out.splitlines()[-1] == "tests FAIL"
    assert "# m still wants tools after 3 answers; stopping it" in out
    assert len(model.bodies) == 3
    # A string cmd runs through sh -c.
    assert fake.cmds[0] == ["sh", "-c", "python3 test_stats.py"]
    assert fake.sessions == {}
