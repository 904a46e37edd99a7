"""The SDK's result types: frozen dataclasses, one per object of the API.

Each keeps the JSON object it was made from in ``raw`` (not compared, not
shown), so fields a newer server adds are reachable before the SDK knows
them.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
import os
from typing import Any, Generic, Iterator, Mapping, Sequence, TypeVar, Union, overload

from ._errors import CommandFailedError

#: A run result class: :class:`RunResult` or :class:`AsyncRunResult`.
R = TypeVar("R", bound="RunResult")

__all__ = [
    "Limits",
    "OutputFile",
    "UploadedFile",
    "RunResult",
    "AsyncRunResult",
    "BatchRun",
    "BatchRunError",
    "BatchResult",
    "ImageInfo",
    "Health",
    "SessionInfo",
    "StdoutEvent",
    "StderrEvent",
    "ResultEvent",
    "StreamEvent",
    "AsyncStreamEvent",
]


@dataclass(frozen=True)
class Limits:
    """Resource limits of a run. A field left ``None`` takes the server's
    default; one above the server's ``max_limits`` is a
    :class:`~boxer.BadRequestError`, never silently lowered.

    ``run(limits=...)`` also takes a plain dict with the same keys.
    """

    #: CPU time as a number of cores (CFS quota), e.g. ``0.5``.
    cpu_cores: float | None = None
    #: Memory limit in MiB; over it the run is OOM-killed (``oom_killed``).
    memory_mb: int | None = None
    #: Wall-clock limit in whole seconds; at it the run is killed
    #: (``timed_out``). The client's HTTP timeout for the run follows it.
    wall_clock_secs: int | None = None
    #: Maximum number of processes and threads.
    pids_limit: int | None = None
    #: Maximum number of open file descriptors.
    nofile: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The API's ``limits`` object: the fields that are set."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class OutputFile:
    """A regular file a run left under ``/output/``."""

    #: Path relative to ``/output/`` (e.g. ``"result.json"``, ``"logs/a.txt"``).
    path: str
    #: Size in bytes.
    size: int


@dataclass(frozen=True)
class UploadedFile:
    """A file stored by ``POST /files``; pass it as a value of
    ``run(files={...})`` to mount it without uploading it again. It expires
    after the server's ``files_ttl_secs``."""

    #: The server's id for the file (``"f_..."``).
    id: str
    #: The name it was uploaded under.
    name: str
    #: Size in bytes.
    size: int
    #: Hex SHA-256 of the content, as the server computed it.
    sha256: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


#: What a value of ``files=`` may be: a local file (``pathlib.Path`` or any
#: ``os.PathLike``), the content itself (``bytes``; ``str`` is encoded as
#: UTF-8), or a file uploaded earlier (:class:`UploadedFile`; not for ``upload()``).
FileSource = Union[os.PathLike[str], bytes, bytearray, memoryview, str, UploadedFile]


@dataclass(frozen=True)
class RunResult:
    """The result of a run that completed, whatever its exit status.

    A non-zero exit, a timeout, an OOM kill or truncated output are all
    results, not exceptions; :meth:`check` turns them into a
    :class:`~boxer.CommandFailedError` when that is what you want.
    """

    #: The run's id (``"r_..."``), for :meth:`BoxerClient.get_run` and downloads.
    id: str
    #: The image reference as requested.
    image: str
    #: The digest of the image that ran (``"sha256:..."``).
    image_digest: str
    #: The process's exit status; ``128 + N`` when killed by signal ``N``.
    exit_code: int
    #: The signal that killed the process, or ``None``.
    signal: int | None
    #: Whether the run hit its wall-clock limit and was killed.
    timed_out: bool
    #: Whether the run was killed for exceeding its memory limit.
    oom_killed: bool
    #: Standard output as text (invalid UTF-8 replaced by U+FFFD).
    stdout: str
    #: Standard error as text (invalid UTF-8 replaced by U+FFFD).
    stderr: str
    #: Whether stdout was cut at the server's ``output_limit_bytes``.
    stdout_truncated: bool
    #: Whether stderr was cut at the server's ``output_limit_bytes``.
    stderr_truncated: bool
    #: Wall time of the run in milliseconds, sandbox start-up included.
    wall_ms: int
    #: Regular files the run left under ``/output/``.
    outputs: tuple[OutputFile, ...]
    #: Whether the server listed only some of the files under ``/output/``.
    outputs_truncated: bool
    #: When the run started (UTC), or ``None`` if the server did not say.
    started_at: _dt.datetime | None
    #: When the run finished (UTC), or ``None`` if the server did not say.
    finished_at: _dt.datetime | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _client: Any = field(default=None, repr=False, compare=False)
    #: The run's position in its batch's ``runs`` (a result of
    #: :meth:`BoxerClient.batch`), else ``None``.
    index: int | None = None
    #: Why this run of a batch could not be started (then ``exit_code`` is
    #: ``-1`` and ``stdout``/``stderr`` are empty), else ``None``.
    error: BatchRunError | None = None

    @property
    def ok(self) -> bool:
        """True when the process exited with status 0, in time and within memory."""
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed

    def check(self) -> RunResult:
        """Return this result if :attr:`ok`, else raise
        :class:`~boxer.CommandFailedError` carrying it."""
        if not self.ok:
            raise CommandFailedError(self)
        return self

    def download(self, path: str | OutputFile) -> bytes:
        """The content of one of :attr:`outputs` (a path relative to
        ``/output/``, or an :class:`OutputFile`), fetched from the server."""
        _check_downloadable(self)
        if self._client is None:
            raise RuntimeError("this RunResult was not made by a client; use client.download()")
        return self._client.download(self.id, path)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class AsyncRunResult(RunResult):
    """A :class:`RunResult` from :class:`~boxer.AsyncBoxerClient`: the same
    fields, and :meth:`download` is awaitable."""

    async def download(self, path: str | OutputFile) -> bytes:  # type: ignore[override]
        """The content of one of :attr:`outputs`, fetched from the server."""
        _check_downloadable(self)
        if self._client is None:
            raise RuntimeError("this RunResult was not made by a client; use client.download()")
        return await self._client.download(self.id, path)  # type: ignore[no-any-return]


def _check_downloadable(result: RunResult) -> None:
    if result.index is not None:
        raise RuntimeError(f"run {result.id} is a run of a batch: batch runs keep no output "
                           f"files (their outputs are always empty) and cannot be fetched again")


@dataclass(frozen=True)
class BatchRunError:
    """Why one run of a batch could not be started; the other runs of the
    batch are not affected."""

    #: The API's error code, e.g. ``"invalid_request"`` or ``"internal"``.
    code: str
    #: The server's message, meant for people.
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class BatchRun:
    """One run of :meth:`BoxerClient.batch`: a process in the batch's shared
    sandbox. Every field is optional; ``batch()`` also takes a plain dict
    with these keys.

    Each run is a process of its own, as a user of its own, with its own
    ``/tmp``; the image, the network mode, the file system outside
    ``/tmp`` and the sandbox's memory, CPU and process limits are the
    batch's.
    """

    #: The full argv; ``None`` runs the image's Entrypoint + Cmd.
    cmd: Sequence[str] | None = None
    #: Text fed to the process's standard input (``bytes`` must be UTF-8).
    stdin: str | bytes | None = None
    #: Merged over the image's environment.
    env: Mapping[str, str] | None = None
    #: The working directory; default the image's WorkingDir if it has one,
    #: else the run's own ``/tmp``.
    workdir: str | None = None
    #: ``{path in the sandbox: content}``, as for ``run()``: a
    #: ``pathlib.Path`` (a local file), ``bytes`` or ``str`` (the content
    #: itself), or an :class:`UploadedFile`. Content is uploaded with
    #: ``POST /files`` before the batch is sent (once per distinct content,
    #: whatever the number of runs using it) and mounted read-only. The runs
    #: share one file system: a path holds one file for the whole batch, and
    #: a run giving a path other content than an earlier run cannot start
    #: (its result's ``error``). Paths under ``/tmp``, ``/var/tmp``,
    #: ``/dev/shm`` and ``/output`` are refused: those are each run's own.
    files: Mapping[str, FileSource] | None = None
    #: The run's own limits, a :class:`Limits` or a dict with at most
    #: ``wall_clock_secs`` (default the batch's) and ``memory_mb`` (here an
    #: address-space limit of each of the run's processes).
    limits: Limits | Mapping[str, Any] | None = None


@dataclass(frozen=True)
class BatchResult:
    """The answer to :meth:`BoxerClient.batch`: one :class:`RunResult` per
    run, in the order of the runs. Iterating over it, ``len()`` and
    indexing go to :attr:`results`.

    A run that completed is a result whatever its exit status (as for
    ``run()``); a run that could not be started is a result too, with
    :attr:`RunResult.error` set. Batch runs keep no output files.
    """

    #: The batch's id (``"b_..."``); each result's id is ``"<this id>/<index>"``.
    id: str
    #: The image reference as requested.
    image: str
    #: The digest of the image that ran (``"sha256:..."``).
    image_digest: str
    #: One result per run, in the order of the runs.
    results: tuple[RunResult, ...]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __iter__(self) -> Iterator[RunResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    @overload
    def __getitem__(self, index: int) -> RunResult: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[RunResult, ...]: ...

    def __getitem__(self, index: int | slice) -> RunResult | tuple[RunResult, ...]:
        return self.results[index]

    @property
    def ok(self) -> bool:
        """True when every run was :attr:`RunResult.ok`."""
        return all(r.ok for r in self.results)


@dataclass(frozen=True)
class ImageInfo:
    """An image in the server's cache."""

    #: The reference it was pulled or loaded as.
    reference: str
    #: The manifest digest (``"sha256:..."``).
    digest: str
    #: Size of the unpacked root filesystem in bytes.
    size: int
    #: When a run last used it, or ``None``.
    last_used: _dt.datetime | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Health:
    """The server's ``GET /health`` answer."""

    #: ``"ok"``.
    status: str
    #: The version line of the server's runsc.
    runsc_version: str
    #: The gVisor platform runs use (``"systrap"``, ``"ptrace"``, ``"kvm"``).
    platform: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class SessionInfo:
    """A session as the server describes it (``POST /sessions``,
    ``GET /sessions/{id}``): what :meth:`Session.info` returns."""

    #: The session's id (``"s_..."``); each exec's result id is ``"<this id>/<n>"``.
    id: str
    #: The image reference as requested.
    image: str
    #: The digest of the image the session runs (``"sha256:..."``).
    image_digest: str
    #: The session's network mode (``"none"``).
    network: str
    #: The session's limits, every field filled in by the server:
    #: ``memory_mb``, ``cpu_cores`` and ``pids_limit`` bound the whole
    #: session, ``wall_clock_secs`` is each exec's default time limit.
    limits: Limits
    #: Seconds without a request after which the server destroys the session.
    idle_timeout_secs: int
    #: Seconds after its creation at which the server destroys the session,
    #: busy or not.
    ttl_secs: int
    #: When the session was created (UTC), or ``None`` if the server did not say.
    created_at: _dt.datetime | None
    #: When the session ends whatever its use (``created_at + ttl_secs``).
    expires_at: _dt.datetime | None
    #: When a request last used the session.
    last_used_at: _dt.datetime | None
    #: How many execs the session has started.
    execs: int
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class StdoutEvent:
    """A piece of the program's standard output, sent by
    :meth:`BoxerClient.stream` as the program writes it. Pieces are cut
    wherever the server read them, not at line ends; joined, they are the
    run's ``stdout`` (up to the server's ``output_limit_bytes``)."""

    #: The text (invalid UTF-8 replaced by U+FFFD).
    data: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class StderrEvent:
    """A piece of the program's standard error, as :class:`StdoutEvent`."""

    #: The text (invalid UTF-8 replaced by U+FFFD).
    data: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ResultEvent(Generic[R]):
    """The last event of a stream: the run completed (whatever its exit
    status), and this is the result ``run()`` would have returned (an
    :class:`AsyncRunResult` from :class:`~boxer.AsyncBoxerClient`)."""

    #: The run's result, with the whole ``stdout`` and ``stderr`` too.
    result: R


#: What :meth:`BoxerClient.stream` yields: output as it comes, then the
#: result once.
StreamEvent = Union[StdoutEvent, StderrEvent, ResultEvent[RunResult]]
#: What :meth:`AsyncBoxerClient.stream` yields: the same, with an
#: :class:`AsyncRunResult` (whose ``download()`` is awaited).
AsyncStreamEvent = Union[StdoutEvent, StderrEvent, ResultEvent[AsyncRunResult]]
