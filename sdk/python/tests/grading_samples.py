"""A mixed set of HumanEval samples for the grading agreement test: correct,
wrong, crashing, looping, and every way we know for a program to leave with
status 0 (or otherwise look done) before or while its check runs.

Each trick is applied to a wrong solution (it must not turn into a pass) and
to the canonical one (where the check still runs to its end, it must still
pass). Every sample is harmless when the reference grader runs it on the
host, unsandboxed: it touches only its own process, its own children and its
own temporary directory; nothing signals another process, nothing is
deleted, nothing talks to the network. Tricks that would reach beyond the
grader's own process on the host (killing its parent, writing to
/proc/1/fd/1) are tested against Boxer only, in test_grading.py.
"""

from __future__ import annotations

import textwrap

WRONG = "    return None\n"
CRASH = "    raise ValueError('boom')\n"

# A forged harness report and verdict line, written wherever a program can.
FORGED = (b"0" * 64 + b' ["done", "passed", null]',
          b"boxer-grading-v1 " + b"0" * 64
          + b' {"exception": null, "passed": true, "result": "passed", "status": 0}\n')

# (name, where, code): "body" code runs first in the function, "module" code
# at import time, after the function.
TRICKS: list[tuple[str, str, str]] = [
    # Leaving early with status 0, every way.
    ("sys_exit_in_function", "body", "import sys\nsys.exit(0)"),
    ("raise_systemexit", "body", "raise SystemExit(0)"),
    ("exit_builtin", "body", "exit(0)"),
    ("quit_builtin", "body", "quit()"),
    ("os_exit_in_function", "body", "import os\nos._exit(0)"),
    ("posix_exit_in_function", "body", "import posix\nposix._exit(0)"),
    ("os_exit_at_import", "module", "import os\nos._exit(0)"),
    ("sys_exit_at_import", "module", "import sys\nsys.exit(0)"),
    ("systemexit_subclass", "body",
     "class Done(SystemExit):\n    pass\nraise Done(0)"),
    ("exit_from_thread", "module",
     "import os, threading, time\nthreading.Thread(target=os._exit, args=(0,)).start()\n"
     "time.sleep(1)"),
    ("exec_replaces_process", "module",
     "import os, sys\nos.execv(sys.executable, [sys.executable, '-c', 'pass'])"),
    ("keyboard_interrupt", "body", "raise KeyboardInterrupt"),
    # atexit handlers.
    ("atexit_os_exit", "module", "import atexit, os\natexit.register(os._exit, 0)"),
    ("atexit_print_passed", "module", "import atexit\natexit.register(print, 'passed')"),
    ("atexit_then_exit", "body", "import atexit, sys\natexit.register(print, 'ok')\nsys.exit(0)"),
    # Signals to itself.
    ("sigkill_self", "body", "import signal\nsignal.raise_signal(signal.SIGKILL)"),
    ("sigterm_self", "body", "import signal\nsignal.raise_signal(signal.SIGTERM)"),
    ("sigalrm_self", "body", "import signal\nsignal.raise_signal(signal.SIGALRM)"),
    ("sigint_self", "body", "import signal\nsignal.raise_signal(signal.SIGINT)"),
    ("posix_kill_self", "body",
     "import posix, signal\nposix.kill(posix.getpid(), signal.SIGKILL)"),
    ("os_kill_self", "body", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
    ("alarm_handler_swapped", "module",
     "import signal\nsignal.signal(signal.SIGALRM, lambda *a: None)"),
    # Standard streams: closed, flooded, printing what a harness prints.
    ("close_stdio", "module", "import os\nos.close(1)\nos.close(2)"),
    ("close_sys_streams", "module", "import sys\nsys.stdout.close()\nsys.stderr.close()"),
    ("flood_stdout", "module",
     "import os, sys\nos.write(1, b'x' * (1 << 20))\nprint('y' * (1 << 20))\n"
     "sys.__stdout__.write('z' * (1 << 16))"),
    ("flood_stderr", "module", "import os\nos.write(2, b'e' * (1 << 20))"),
    ("print_passed", "module",
     "import os, sys\nprint('passed')\nsys.__stdout__.write('passed\\n')\nsys.__stdout__.flush()\n"
     "os.write(1, b'passed\\npass@1: 1/1 (100.0%)\\n')\nos.write(2, b'passed\\n')"),
    ("forge_verdict_on_stdio", "module",
     f"import os\nos.write(1, {FORGED[1]!r})\nos.write(2, {FORGED[1]!r})\nos._exit(0)"),
    ("forge_report_on_every_fd", "module",
     "import os\nfor fd in range(3, 64):\n    for msg in (" + repr(FORGED[0]) + ", "
     + repr(FORGED[1]) + "):\n        try:\n            os.write(fd, msg)\n"
     "        except OSError:\n            pass\nos._exit(0)"),
    ("reopen_fds_and_replay", "module",
     "import os\nseen = []\nfor name in os.listdir('/proc/self/fd'):\n"
     "    try:\n        fd = os.open('/proc/self/fd/' + name, os.O_RDONLY | os.O_NONBLOCK)\n"
     "        seen.append(os.read(fd, 65536))\n    except OSError:\n        pass\n"
     "for fd in range(3, 64):\n    for msg in seen:\n        try:\n"
     "            os.write(fd, msg.replace(b'ready', b'done').replace(b'\"\"', b'\"passed\"'))\n"
     "        except OSError:\n            pass\nos._exit(0)"),
    ("read_stdin", "body", "import sys\nsys.stdin.read()"),
    # Processes that outlive the program, or leave in its place.
    ("fork_outlives", "module",
     "import posix, time\nif posix.fork() == 0:\n    time.sleep(2)\n    posix._exit(0)"),
    ("fork_then_exit", "module",
     "import posix\nif posix.fork() != 0:\n    posix._exit(0)\nimport time\ntime.sleep(5)"),
    ("os_fork", "module", "import os\nos.fork()"),
    ("thread_outlives", "module",
     "import threading, time\nthreading.Thread(target=time.sleep, args=(30,)).start()"),
    # Time: sleeping or looping past the limit, the timer defused.
    ("infinite_loop", "body", "while True:\n    pass"),
    ("sleep_past_limit", "body", "import time\ntime.sleep(30)"),
    ("alarm_ignored_sleep", "body",
     "import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\ntime.sleep(30)"),
    ("timer_cancelled_loop", "body",
     "import signal\nsignal.setitimer(signal.ITIMER_REAL, 0)\nwhile True:\n    pass"),
    ("stop_self", "body", "import signal\nsignal.raise_signal(signal.SIGSTOP)"),
    # In-interpreter tampering: a value equal to everything. Out of reach of
    # any grader running the check in the program's interpreter: it passes
    # the reference wherever the check only compares with ==, and here too.
    ("always_equal", "body",
     "class Anything:\n    def __eq__(self, other):\n        return True\n"
     "    def __ne__(self, other):\n        return False\nreturn Anything()"),
]

# Tricks that take the whole time limit (plus a second) in both graders:
# on fewer problems, to keep the test short.
SLOW = {"infinite_loop", "sleep_past_limit", "alarm_ignored_sleep", "timer_cancelled_loop",
        "stop_self", "thread_outlives"}


def apply(trick: tuple[str, str, str], body: str) -> str:
    _, where, code = trick
    if where == "body":
        return textwrap.indent(code, "    ") + "\n" + body
    return body + "\n" + code + "\n"


def samples(problems: list[dict], n_problems: int = 40) -> list[dict]:
    """The set: for each of ``n_problems`` problems spread over HumanEval,
    the canonical solution, a wrong one and a crashing one; then every trick
    on a wrong and on a correct solution, three problems each (one for the
    slow ones), round robin. Each sample names its kind."""
    step = max(1, len(problems) // n_problems)
    chosen = problems[::step][:n_problems]
    out = []
    for pr in chosen:
        for kind, completion in (("canonical", pr["canonical_solution"]), ("wrong", WRONG),
                                 ("crash", CRASH)):
            out.append({"task_id": pr["task_id"], "completion": completion, "kind": kind})
    i = 0
    for trick in TRICKS:
        for base_name, correct in (("wrong", False), ("correct", True)):
            for _ in range(1 if trick[0] in SLOW else 3):
                pr = chosen[i % len(chosen)]
                i += 1
                body = pr["canonical_solution"] if correct else WRONG
                out.append({"task_id": pr["task_id"], "completion": apply(trick, body),
                            "kind": f"{trick[0]}+{base_name}"})
    return out
