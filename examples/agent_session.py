#!/usr/bin/env python3
"""A coding agent's tool loop in one Boxer session: write files, run them,
read what they wrote, fix a bug, run the tests again; every step in the
same sandbox, whose files stay from one step to the next.

    python3 examples/agent_session.py [--url http://localhost:8080] [--image REF]
    OPENAI_API_KEY=... python3 examples/agent_session.py --model MODEL

Without $OPENAI_API_KEY the agent is a fixed script (no model): it writes
a small project with a buggy median(), runs its report and its tests (two
fail), writes the fix, and runs them again (all pass). With
$OPENAI_API_KEY, an OpenAI-compatible chat model ($OPENAI_BASE_URL, default
OpenAI's; --model or $OPENAI_MODEL) gets the same buggy project and three
tools (write_file, read_file, exec) and must make the tests pass itself.
Either way the example then runs the tests once more and exits 0 only if
they pass: 1 if they do not (or Boxer failed), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import httpx

import boxer

DEFAULT_IMAGE = "localhost:5000/boxer/python:3.11"
OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"
WORKDIR = "/workspace"

# --- the project the agent works on ---------------------------------------------

BUGGY_STATS = '''\
def median(xs):
    """The median of a non-empty list of numbers."""
    xs = sorted(xs)
    return xs[len(xs) // 2]
'''

FIXED_STATS = '''\
def median(xs):
    """The median of a non-empty list of numbers."""
    xs = sorted(xs)
    mid = len(xs) // 2
    if len(xs) % 2:
        return xs[mid]
    return (xs[mid - 1] + xs[mid]) / 2
'''

# A test script without pytest: prints each case, exits 1 if any failed.
TESTS = '''\
import sys
from stats import median

CASES = [([3, 1, 2], 2), ([4, 1, 3, 2], 2.5), ([5], 5), ([1, 2], 1.5)]
failed = 0
for xs, want in CASES:
    got = median(xs)
    ok = got == want
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} median({xs}) = {got!r}, want {want!r}")
print(f"{len(CASES) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
'''

REPORT = '''\
from stats import median

numbers = [float(x) for x in open("data.txt").read().split()]
with open("report.txt", "w") as f:
    f.write(f"count: {len(numbers)}\\nmedian: {median(numbers):g}\\n")
print(f"wrote report.txt for {len(numbers)} numbers")
'''

DATA = "7 3 9 1 4 8\n"

PROJECT = {
    f"{WORKDIR}/stats.py": BUGGY_STATS,
    f"{WORKDIR}/test_stats.py": TESTS,
    f"{WORKDIR}/report.py": REPORT,
    f"{WORKDIR}/data.txt": DATA,
}
TEST_CMD = ["python3", "test_stats.py"]


# --- the tools ------------------------------------------------------------------


class Tools:
    """The agent's tools on one session; each call prints what it does."""

    def __init__(self, session: boxer.Session) -> None:
        self.s = session

    @staticmethod
    def _show(text: str, prefix: str = "    | ") -> None:
        for line in text.splitlines():
            print(prefix + line)

    def write_file(self, path: str, content: str) -> str:
        data = content.encode("utf-8")
        print(f"> write_file {path} ({len(data)} bytes)")
        self.s.write_file(path, data)
        return f"wrote {len(data)} bytes to {path}"

    def read_file(self, path: str) -> str:
        print(f"> read_file {path}")
        text = self.s.read_file(path).decode("utf-8", "replace")
        self._show(text)
        return text

    def exec(self, cmd: list[str], timeout_secs: int | None = None) -> boxer.RunResult:
        """Runs cmd in the project's directory, its output shown as it comes."""
        print(f"> exec {' '.join(cmd)}")
        at_line_start = True
        result = None
        with self.s.exec_stream(cmd, workdir=WORKDIR, timeout_secs=timeout_secs,
                                env={"PYTHONDONTWRITEBYTECODE": "1"}) as events:
            for event in events:
                if isinstance(event, boxer.ResultEvent):
                    result = event.result
                    continue
                for piece in event.data.splitlines(keepends=True):
                    print(("    | " if at_line_start else "") + piece, end="", flush=True)
                    at_line_start = piece.endswith("\n")
        if not at_line_start:
            print()
        assert result is not None  # a stream ends with its result, or raises
        how = "timed out" if result.timed_out else f"exit {result.exit_code}"
        print(f"  {how} ({result.wall_ms} ms, {result.id})")
        return result


def write_project(tools: Tools) -> None:
    for path, content in PROJECT.items():
        tools.write_file(path, content)


# --- without a model: a fixed script ----------------------------------------------


def scripted(tools: Tools) -> bool:
    """The steps a model would take, fixed. True if it went as it should:
    the tests fail before the fix and pass after it."""
    print("# a small project: stats.median, its tests, and a report")
    write_project(tools)
    print("# run the report and read the file it wrote")
    tools.exec(["python3", "report.py"]).check()
    before = tools.read_file(f"{WORKDIR}/report.txt")
    print("# run the tests")
    first = tools.exec(TEST_CMD)
    if first.ok:
        print("agent_session: the tests passed before the fix; expected two failures",
              file=sys.stderr)
        return False
    print("# median() is wrong for even lengths: write the fix, and run the tests again")
    tools.write_file(f"{WORKDIR}/stats.py", FIXED_STATS)
    tools.exec(TEST_CMD)
    print("# run the report again")
    tools.exec(["python3", "report.py"]).check()
    after = tools.read_file(f"{WORKDIR}/report.txt")
    print(f"# report before the fix: {before.splitlines()[-1]}; "
          f"after: {after.splitlines()[-1]}")
    return True


# --- with a model: an OpenAI-compatible chat API with tool calls ------------------------

TASK = (
    f"You work in a Linux sandbox with python3, through tools. The project in {WORKDIR} "
    f"has stats.py (a median function), test_stats.py (its tests, run with "
    f"`python3 test_stats.py` in {WORKDIR}; exit status 0 means they pass), report.py "
    f"and data.txt. The tests fail. Find the bug, fix stats.py (not the tests), run the "
    f"tests until they pass, then run report.py and tell me the median it wrote to "
    f"{WORKDIR}/report.txt.")

TOOL_SPECS = [
    {"type": "function", "function": {
        "name": "write_file",
        "description": "Write a text file in the sandbox, replacing it if it exists.",
        "parameters": {"type": "object", "properties": {
            "path": {"type": "string", "description": "absolute path, e.g. /workspace/a.py"},
            "content": {"type": "string"}},
            "required": ["path", "content"]}}},
    {"type": "function", "function": {
        "name": "read_file",
        "description": "Read a text file from the sandbox.",
        "parameters": {"type": "object", "properties": {
            "path": {"type": "string", "description": "absolute path"}},
            "required": ["path"]}}},
    {"type": "function", "function": {
        "name": "exec",
        "description": f"Run a command in {WORKDIR} (no network); returns its exit status, "
                       f"stdout and stderr.",
        "parameters": {"type": "object", "properties": {
            "cmd": {"type": "array", "items": {"type": "string"},
                    "description": "the argv, e.g. [\"python3\", \"test_stats.py\"]"}},
            "required": ["cmd"]}}},
]

#: How much of a tool's answer goes back to the model.
MAX_TOOL_TEXT = 8000


def call_tool(tools: Tools, name: str, arguments: str) -> str:
    """A tool call's answer for the model; mistakes are answers too."""
    try:
        args = json.loads(arguments or "{}")
        if name == "write_file":
            return tools.write_file(str(args["path"]), str(args["content"]))
        if name == "read_file":
            return tools.read_file(str(args["path"]))[:MAX_TOOL_TEXT]
        if name == "exec":
            cmd = args["cmd"]
            if isinstance(cmd, str):
                cmd = ["sh", "-c", cmd]
            r = tools.exec([str(a) for a in cmd])
            return json.dumps({"exit_code": r.exit_code, "timed_out": r.timed_out,
                               "stdout": r.stdout[-MAX_TOOL_TEXT:],
                               "stderr": r.stderr[-MAX_TOOL_TEXT:]})
        return f"error: no tool named {name!r}"
    except (ValueError, KeyError, TypeError) as e:
        return f"error: bad arguments for {name}: {e}"
    except (boxer.BoxerFileNotFoundError, boxer.BadRequestError,
            boxer.PayloadTooLargeError) as e:
        print(f"    ! {e}")
        return f"error: {e.message}"


def chat(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    for attempt in range(5):
        resp = http.post("/chat/completions", json=body)
        # Rate limits and overload are worth waiting for; the rest is not.
        if resp.status_code not in (429, 500, 502, 503, 504) or attempt == 4:
            break
        time.sleep(float(resp.headers.get("retry-after", 2 ** attempt)))
    if resp.status_code != 200:
        raise SystemExit(f"agent_session: the model API answered {resp.status_code}: "
                         f"{resp.text[:500]}")
    message: dict[str, Any] = resp.json()["choices"][0]["message"]
    return message


def with_model(tools: Tools, model: str, key: str, max_steps: int) -> None:
    """Let the model work on the project until it answers without a tool
    call, or max_steps answers."""
    print("# a small project: stats.median, its tests, and a report")
    write_project(tools)
    print(f"# {model} takes over")
    base = os.environ.get("OPENAI_BASE_URL", OPENAI_DEFAULT_BASE).rstrip("/")
    messages: list[dict[str, Any]] = [{"role": "user", "content": TASK}]
    with httpx.Client(base_url=base, timeout=httpx.Timeout(600.0, connect=10.0),
                      headers={"Authorization": f"Bearer {key}"}) as http:
        for _ in range(max_steps):
            message = chat(http, {"model": model, "messages": messages, "tools": TOOL_SPECS})
            messages.append(message)
            if message.get("content"):
                print(f"{model}: {message['content'].strip()}")
            calls = message.get("tool_calls") or []
            if not calls:
                return
            for call in calls:
                fn = call["function"]
                answer = call_tool(tools, fn["name"], fn.get("arguments", ""))
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": answer})
        print(f"# {model} still wants tools after {max_steps} answers; stopping it")


# --- main ---------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=os.environ.get("BOXER_URL", "http://localhost:8080"),
                   help="Boxer's base URL (default $BOXER_URL, else %(default)s)")
    p.add_argument("--image", default=DEFAULT_IMAGE,
                   help="an image with python3 (default %(default)s)")
    p.add_argument("--model", default=os.environ.get("OPENAI_MODEL"),
                   help="the chat model, when $OPENAI_API_KEY is set (default $OPENAI_MODEL)")
    p.add_argument("--max-steps", type=int, default=20,
                   help="most model answers before it is stopped (default %(default)s)")
    args = p.parse_args()
    key = os.environ.get("OPENAI_API_KEY")
    if key and not args.model:
        p.error("with OPENAI_API_KEY set, name the model: --model or $OPENAI_MODEL")
    if args.max_steps < 1:
        p.error("--max-steps must be at least 1")

    try:
        with boxer.BoxerClient(args.url) as client:
            with client.session(args.image, limits={"wall_clock_secs": 30}) as s:
                info = s.info()
                print(f"# session {s.id}: {info.image} ({info.image_digest[:19]}), "
                      f"idle timeout {info.idle_timeout_secs} s")
                tools = Tools(s)
                if key:
                    as_expected = True
                    with_model(tools, args.model, key, args.max_steps)
                else:
                    as_expected = scripted(tools)
                print("# the final check: the tests, once more")
                final = tools.exec(TEST_CMD)
            print(f"# session {s.id} deleted")
    except boxer.BoxerError as e:
        print(f"agent_session: {e}", file=sys.stderr)
        return 1
    if final.ok and as_expected:
        print("tests pass")
        return 0
    print("tests FAIL" if not final.ok else "tests pass, but not as the script expected")
    return 1


if __name__ == "__main__":
    sys.exit(main())
