"""The part of the client that does no network I/O, shared by
:class:`~boxer.BoxerClient` and :class:`~boxer.AsyncBoxerClient`.

It turns method arguments into :class:`Request` values, HTTP answers into
result objects or exceptions, and failures into retry decisions. The two
clients only send requests, sleep and loop; anything that could differ
between them lives here, so it cannot differ. The one kind of I/O here is
reading the local files a caller names in ``files=`` (once, when the request
is built, so that a retry sends the same bytes).
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as _dt
import email.utils
import hashlib
import json
import math
import os
import posixpath
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Generic, Iterable, Mapping, Sequence, TypeVar
from urllib.parse import quote

import httpx

from ._errors import (
    APIError,
    BoxerConnectionError,
    BoxerError,
    BoxerTimeoutError,
    InvalidResponseError,
    error_class,
)
from ._types import (
    BatchResult,
    BatchRun,
    BatchRunError,
    FileSource as FileSource,  # re-exported: it was defined here first
    Health,
    ImageInfo,
    Limits,
    OutputFile,
    ResultEvent,
    RunResult,
    SessionInfo,
    StderrEvent,
    StdoutEvent,
    UploadedFile,
)
from ._version import __version__

DEFAULT_BASE_URL = "http://localhost:8080"
OCTET_STREAM = "application/octet-stream"
EVENT_STREAM = "text/event-stream"
BASE_URL_ENV = "BOXER_URL"
API_KEY_ENV = "BOXER_API_KEY"

R = TypeVar("R", bound=RunResult)


@dataclass(frozen=True)
class Options:
    """A client's settings; see :class:`~boxer.BoxerClient` for each."""

    base_url: str
    timeout: float = 30.0
    connect_timeout: float = 10.0
    run_timeout_margin: float = 300.0
    default_wall_clock_secs: int = 30
    pull_timeout: float = 900.0
    max_retries: int = 2
    max_retry_after: float = 60.0
    #: Out of the repr: ``Authorization`` holds a secret (the API key's, or
    #: the caller's own).
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


def make_options(
    base_url: str | None,
    *,
    timeout: float,
    run_timeout_margin: float,
    default_wall_clock_secs: int,
    pull_timeout: float,
    max_retries: int,
    max_retry_after: float,
    headers: Mapping[str, str] | None,
    api_key: str | None,
    environ: Mapping[str, str] = os.environ,
) -> Options:
    """Validate a client's arguments; the base URL comes from the argument,
    else ``$BOXER_URL``, else ``http://localhost:8080``. The API key comes
    from the argument, else from an ``Authorization`` in ``headers`` (sent
    as given), else ``$BOXER_API_KEY`` (empty counts as unset)."""
    url = base_url or environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"base URL {url!r} must be http:// or https:// with a host, "
                         f"e.g. {DEFAULT_BASE_URL}")
    if parsed.query or parsed.fragment:
        raise ValueError(f"base URL {url!r} must not have a query or fragment")
    for name, value in (("timeout", timeout), ("run_timeout_margin", run_timeout_margin),
                        ("pull_timeout", pull_timeout), ("max_retry_after", max_retry_after)):
        if not value >= 0:
            raise ValueError(f"{name} must be a number of seconds >= 0, not {value!r}")
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, not {max_retries!r}")
    if default_wall_clock_secs < 1:
        raise ValueError(f"default_wall_clock_secs must be >= 1, not {default_wall_clock_secs!r}")
    hdrs = {"User-Agent": f"boxer-sdk-python/{__version__}", "Accept": "application/json"}
    hdrs.update(headers or {})
    own_auth = any(k.lower() == "authorization" for k in hdrs)
    if api_key is not None:
        key: str | None = check_api_key(api_key, "api_key")
    elif not own_auth and environ.get(API_KEY_ENV):
        key = check_api_key(environ[API_KEY_ENV], f"${API_KEY_ENV}")
    else:
        key = None
    if key is not None:
        # Whatever its case: two Authorization lines would reach the server.
        hdrs = {k: v for k, v in hdrs.items() if k.lower() != "authorization"}
        hdrs["Authorization"] = f"Bearer {key}"
    return Options(
        base_url=url.rstrip("/"),
        timeout=timeout,
        run_timeout_margin=run_timeout_margin,
        default_wall_clock_secs=default_wall_clock_secs,
        pull_timeout=pull_timeout,
        max_retries=max_retries,
        max_retry_after=max_retry_after,
        headers=hdrs,
    )


def check_api_key(key: object, where: str) -> str:
    """The key, if it can go into an ``Authorization: Bearer`` header as it is.
    The messages say where the key came from and what is wrong with it, never
    what it is."""
    if not isinstance(key, str):
        raise TypeError(f"{where} must be a string (the key itself), not {type(key).__name__}")
    if not key:
        raise ValueError(f"{where} is empty; pass the key the server's operator gave you, "
                         f"or None for a server without API keys")
    if key[:7].lower() == "bearer ":
        raise ValueError(f"{where} must be the key alone, without 'Bearer ': the client adds it")
    for i, c in enumerate(key):
        if c.isspace() or not c.isprintable():
            raise ValueError(f"{where} has whitespace or a control character at position {i} "
                             f"of {len(key)}; strip it (a key read from a file often ends "
                             f"with a newline)")
        if not c.isascii():
            raise ValueError(f"{where} has a non-ASCII character at position {i}; API keys are "
                             f"printable ASCII (e.g. made by `openssl rand -hex 32`)")
    return key


@dataclass(frozen=True)
class Part:
    """One file part of a multipart body."""

    name: str
    filename: str | None
    content: bytes
    content_type: str


@dataclass(frozen=True)
class Request:
    """One HTTP request, ready to send as many times as retries allow."""

    method: str
    #: Path and query below the base URL, already percent-encoded.
    path: str
    json: Any = None
    parts: tuple[Part, ...] = ()
    #: A raw body (``application/octet-stream``), for a file's bytes.
    content: bytes | None = None
    #: Seconds to wait for the answer; ``None``: the client's ``timeout``.
    read_timeout: float | None = None
    #: Whether the request may be sent again after it may have reached the
    #: server (a reset after sending, say). Never for ``POST /run``: the run
    #: could have started, and running it twice is not ours to decide.
    repeatable: bool = True
    #: Whether the answer is server-sent events (``Accept:
    #: text/event-stream``), read as they come rather than whole.
    stream: bool = False


def seg(value: str) -> str:
    """One path segment, percent-encoded (``/`` included)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, not {value!r}")
    return quote(value, safe="")


def url(opts: Options, req: Request) -> str:
    return opts.base_url + req.path


def httpx_args(opts: Options, req: Request) -> dict[str, Any]:
    """Keyword arguments for ``httpx.Client.request`` / ``AsyncClient.request``."""
    read = opts.timeout if req.read_timeout is None else req.read_timeout
    args: dict[str, Any] = {
        "method": req.method,
        "url": url(opts, req),
        "headers": dict(opts.headers),
        # No pool timeout: with more concurrent calls than connections a call
        # waits its turn, and its own timeouts start once it has a connection.
        "timeout": httpx.Timeout(connect=opts.connect_timeout, read=read, write=max(read, 60.0),
                                 pool=None),
    }
    if req.stream:
        # Whatever its case: two Accept lines would reach the server.
        args["headers"] = {k: v for k, v in args["headers"].items() if k.lower() != "accept"}
        args["headers"]["Accept"] = EVENT_STREAM
    if req.parts:
        files: list[tuple[str, tuple[str | None, bytes, str]]] = []
        if req.json is not None:
            files.append(("request", (None, dumps(req.json), "application/json")))
        files += [(p.name, (p.filename, p.content, p.content_type)) for p in req.parts]
        args["files"] = files
    elif req.json is not None:
        args["content"] = dumps(req.json)
        args["headers"]["Content-Type"] = "application/json"
    elif req.content is not None:
        args["content"] = req.content
        args["headers"]["Content-Type"] = OCTET_STREAM
    return args


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- building requests --------------------------------------------------------


def _content(where: str, source: object) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, str):
        return source.encode("utf-8")
    if isinstance(source, os.PathLike):
        with open(source, "rb") as f:
            return f.read()
    raise TypeError(f"{where} must be a pathlib.Path, bytes or str (the content), "
                    f"not {type(source).__name__}")


def _cmd(cmd: Sequence[str] | None) -> list[str] | None:
    if cmd is None:
        return None
    if isinstance(cmd, (str, bytes)):
        raise TypeError(f"cmd must be a list of strings (the argv), not a string; "
                        f"for a shell line use ['sh', '-c', {cmd!r}]")
    out = list(cmd)
    for a in out:
        if not isinstance(a, str):
            raise TypeError(f"cmd must be a list of strings, and {a!r} is a {type(a).__name__}")
    return out


def _limits(limits: Limits | Mapping[str, Any] | None, where: str = "") -> dict[str, Any] | None:
    if limits is None:
        return None
    if isinstance(limits, Limits):
        return limits.to_dict()
    if isinstance(limits, Mapping):
        return dict(limits)
    raise TypeError(f"{where}limits must be a boxer.Limits or a dict, not {type(limits).__name__}")


def _wall(limits: Mapping[str, Any] | None) -> float | None:
    """The wall-clock limit a limits object sets, if it sets a number."""
    wall = (limits or {}).get("wall_clock_secs")
    if not isinstance(wall, (int, float)) or isinstance(wall, bool):
        return None
    return float(wall)


def run_read_timeout(opts: Options, limits: Mapping[str, Any] | None,
                     timeout: float | None) -> float:
    """How long to wait for a run's answer: its wall-clock limit (else the
    server's default, as the client assumes it) plus the margin for an image
    pull, sandbox start-up and waiting for a free worker."""
    if timeout is not None:
        return timeout
    wall = _wall(limits)
    return (opts.default_wall_clock_secs if wall is None else wall) + opts.run_timeout_margin


def _image(image: object) -> str:
    if not isinstance(image, str) or not image:
        raise TypeError(f"image must be a non-empty string (an image reference), not {image!r}")
    return image


def _process(body: dict[str, Any], cmd: Sequence[str] | None, env: Mapping[str, str] | None,
             workdir: str | None, stdin: str | bytes | None, where: str = "") -> None:
    """The fields of one process (a run, or a run of a batch) into body."""
    argv = _cmd(cmd)
    if argv is not None:
        body["cmd"] = argv
    if env is not None:
        if not isinstance(env, Mapping):
            raise TypeError(f"{where}env must be a dict of strings, not {type(env).__name__}")
        for k, v in env.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"{where}env must map strings to strings; {k!r}: {v!r} does not")
        body["env"] = dict(env)
    if workdir is not None:
        if not isinstance(workdir, str):
            raise TypeError(f"{where}workdir must be a string, not {type(workdir).__name__}")
        body["workdir"] = workdir
    if stdin is not None:
        if isinstance(stdin, (bytes, bytearray)):
            body["stdin"] = bytes(stdin).decode("utf-8")
        elif isinstance(stdin, str):
            body["stdin"] = stdin
        else:
            raise TypeError(f"{where}stdin must be str or bytes, not {type(stdin).__name__}")


def build_run(
    opts: Options,
    image: str,
    cmd: Sequence[str] | None,
    *,
    files: Mapping[str, FileSource] | None,
    limits: Limits | Mapping[str, Any] | None,
    network: str | None,
    env: Mapping[str, str] | None,
    workdir: str | None,
    stdin: str | bytes | None,
    timeout: float | None,
) -> Request:
    body: dict[str, Any] = {"image": _image(image)}
    _process(body, cmd, env, workdir, stdin)
    lim = _limits(limits)
    if lim is not None:
        body["limits"] = lim
    if network is not None:
        body["network"] = network
    parts: list[Part] = []
    mounted: list[dict[str, str]] = []
    for dest, source in (files or {}).items():
        if not isinstance(dest, str):
            raise TypeError(f"files must be keyed by the path in the sandbox (a str), not {dest!r}")
        if isinstance(source, UploadedFile):
            mounted.append({"id": source.id, "path": dest})
        else:
            data = _content(f"files[{dest!r}]", source)
            parts.append(Part(dest, posixpath.basename(dest) or "file", data, OCTET_STREAM))
    if mounted:
        body["files"] = mounted
    return Request("POST", "/run", json=body, parts=tuple(parts),
                   read_timeout=run_read_timeout(opts, lim, timeout), repeatable=False)


def build_stream(
    opts: Options,
    image: str,
    cmd: Sequence[str] | None,
    *,
    files: Mapping[str, FileSource] | None,
    limits: Limits | Mapping[str, Any] | None,
    network: str | None,
    env: Mapping[str, str] | None,
    workdir: str | None,
    stdin: str | bytes | None,
    timeout: float | None,
) -> Request:
    """``POST /run`` asking for its answer as server-sent events: the very
    request of :func:`build_run` (body, uploads, timeout), so that a stream
    runs exactly what ``run()`` would. Its read timeout bounds each wait:
    for the answer to begin, then for each next piece of it."""
    req = build_run(opts, image, cmd, files=files, limits=limits, network=network, env=env,
                    workdir=workdir, stdin=stdin, timeout=timeout)
    return dataclasses.replace(req, stream=True)


# --- POST /batch ------------------------------------------------------------------

#: The keys of one run of a batch: :class:`BatchRun`'s fields.
BATCH_RUN_KEYS = ("cmd", "stdin", "env", "workdir", "files", "limits")
# Limits of the batch's sandbox as a whole, which no single run can have.
_SANDBOX_LIMITS = ("cpu_cores", "pids_limit")


def _batch_run(item: object, i: int) -> BatchRun:
    if isinstance(item, BatchRun):
        return item
    if isinstance(item, Mapping):
        for key in item:
            if key not in BATCH_RUN_KEYS:
                raise TypeError(f"runs[{i}] has the unknown key {key!r}; a run of a batch has "
                                f"{', '.join(BATCH_RUN_KEYS)} (image, network and the sandbox's "
                                f"limits are the batch's own arguments)")
        return BatchRun(**item)
    raise TypeError(f"runs[{i}] must be a boxer.BatchRun or a dict, not {type(item).__name__}")


@dataclass(frozen=True)
class BatchPlan:
    """A ``POST /batch`` before the contents named in its runs' ``files``
    are uploaded: :func:`batch_upload` is the upload to send first (if
    any), :func:`build_batch` the batch request once its answer is in."""

    #: The request's fields but ``runs``.
    head: Mapping[str, Any]
    #: Each run's fields but ``files``.
    runs: tuple[Mapping[str, Any], ...]
    #: Each run's files: (path in the sandbox, an uploaded file's id, or the
    #: position of its content in ``uploads``).
    files: tuple[tuple[tuple[str, str | int], ...], ...]
    #: Distinct contents to store with ``POST /files`` first, in order.
    uploads: tuple[Part, ...]
    read_timeout: float


def batch_read_timeout(opts: Options, limits: Mapping[str, Any] | None,
                       run_limits: Sequence[Mapping[str, Any] | None], parallelism: int | None,
                       timeout: float | None) -> float:
    """How long to wait for a batch's answer: its runs go ``parallelism`` at
    a time in their order, so they all end within ceil(runs / parallelism)
    times the longest wall-clock limit among them (each run's own, else the
    batch's, else the server's default as the client assumes it); plus the
    margin, as for a run."""
    if timeout is not None:
        return timeout
    default = _wall(limits)
    if default is None:
        default = float(opts.default_wall_clock_secs)
    longest = max((w if (w := _wall(r)) is not None else default) for r in run_limits)
    rounds = math.ceil(len(run_limits) / (parallelism or 1))
    return rounds * longest + opts.run_timeout_margin


def plan_batch(
    opts: Options,
    image: str,
    runs: Iterable[BatchRun | Mapping[str, Any]],
    *,
    network: str | None,
    limits: Limits | Mapping[str, Any] | None,
    parallelism: int | None,
    timeout: float | None,
) -> BatchPlan:
    head: dict[str, Any] = {"image": _image(image)}
    if isinstance(runs, (str, bytes, bytearray, Mapping, BatchRun)) \
            or not isinstance(runs, Iterable):
        raise TypeError(f"runs must be a list of boxer.BatchRun or dicts, one per run, "
                        f"not {type(runs).__name__}")
    items = [_batch_run(r, i) for i, r in enumerate(runs)]
    if not items:
        raise ValueError("runs is empty: a batch needs at least one run")
    if parallelism is not None:
        if not isinstance(parallelism, int) or isinstance(parallelism, bool) or parallelism < 1:
            raise ValueError(f"parallelism must be an int >= 1, not {parallelism!r}")
        head["parallelism"] = parallelism
    lim = _limits(limits)
    if lim is not None:
        head["limits"] = lim
    if network is not None:
        head["network"] = network

    wire: list[dict[str, Any]] = []
    files: list[tuple[tuple[str, str | int], ...]] = []
    uploads: list[Part] = []
    seen: dict[bytes, int] = {}
    run_limits: list[dict[str, Any] | None] = []
    for i, run in enumerate(items):
        where = f"runs[{i}]."
        body: dict[str, Any] = {}
        _process(body, run.cmd, run.env, run.workdir, run.stdin, where)
        rl = _limits(run.limits, where)
        for name in _SANDBOX_LIMITS:
            if rl is not None and rl.get(name) is not None:
                raise ValueError(f"{where}limits.{name}: a run of a batch has only its own "
                                 f"wall_clock_secs and memory_mb; {name} bounds the batch's "
                                 f"sandbox as a whole: pass it as batch(limits=...)")
        if rl is not None:
            body["limits"] = rl
        run_limits.append(rl)
        mounted: list[tuple[str, str | int]] = []
        if run.files is not None:
            if not isinstance(run.files, Mapping):
                raise TypeError(f"{where}files must be a dict of {{path in the sandbox: "
                                f"content}}, not {type(run.files).__name__}")
            for dest, source in run.files.items():
                if not isinstance(dest, str):
                    raise TypeError(f"{where}files must be keyed by the path in the sandbox "
                                    f"(a str), not {dest!r}")
                if isinstance(source, UploadedFile):
                    mounted.append((dest, source.id))
                    continue
                data = _content(f"{where}files[{dest!r}]", source)
                # The same content for many runs is stored once.
                digest = hashlib.sha256(data).digest()
                if digest not in seen:
                    seen[digest] = len(uploads)
                    uploads.append(Part("file", posixpath.basename(dest) or "file", data,
                                        OCTET_STREAM))
                mounted.append((dest, seen[digest]))
        wire.append(body)
        files.append(tuple(mounted))
    return BatchPlan(head=head, runs=tuple(wire), files=tuple(files), uploads=tuple(uploads),
                     read_timeout=batch_read_timeout(opts, lim, run_limits, parallelism, timeout))


def batch_upload(plan: BatchPlan) -> Request | None:
    """The ``POST /files`` of the plan's local contents, or None."""
    if not plan.uploads:
        return None
    # Sending it twice stores a second copy that expires like the first.
    return Request("POST", "/files", parts=plan.uploads)


def build_batch(plan: BatchPlan, uploaded: Sequence[UploadedFile]) -> Request:
    """The ``POST /batch``, with the ids the upload of the plan's contents got."""
    if len(uploaded) != len(plan.uploads):
        raise InvalidResponseError(f"the server stored {len(uploaded)} files for an upload of "
                                   f"{len(plan.uploads)}")
    runs: list[Mapping[str, Any]] = []
    for run, mounted in zip(plan.runs, plan.files):
        if mounted:
            run = {**run, "files": [
                {"id": ref if isinstance(ref, str) else uploaded[ref].id, "path": dest}
                for dest, ref in mounted]}
        runs.append(run)
    return Request("POST", "/batch", json={**plan.head, "runs": runs},
                   read_timeout=plan.read_timeout, repeatable=False)


def build_upload(files: Mapping[str, FileSource]) -> Request:
    if not isinstance(files, Mapping) or not files:
        raise TypeError("upload() takes a non-empty dict of {name: Path | bytes | str}")
    parts = []
    for name, source in files.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"upload() names must be non-empty strings, not {name!r}")
        if isinstance(source, UploadedFile):
            raise TypeError(f"files[{name!r}] is already uploaded")
        parts.append(Part("file", name, _content(f"files[{name!r}]", source), OCTET_STREAM))
    # Sending it twice stores a second copy that expires like the first.
    return Request("POST", "/files", parts=tuple(parts))


def build_get_run(run_id: str) -> Request:
    return Request("GET", f"/runs/{seg(run_id)}")


def build_list_outputs(run_id: str) -> Request:
    return Request("GET", f"/runs/{seg(run_id)}/outputs")


def output_path(path: str | OutputFile) -> str:
    """An output's path relative to /output/, also accepted with that prefix."""
    p = path.path if isinstance(path, OutputFile) else path
    if not isinstance(p, str) or not p:
        raise TypeError(f"an output path must be a non-empty string, not {p!r}")
    if p.startswith("/output/"):
        p = p[len("/output/"):]
    return p


def build_download(run_id: str, path: str | OutputFile) -> Request:
    p = output_path(path)
    return Request("GET", f"/runs/{seg(run_id)}/outputs/{quote(p, safe='/')}")


def build_list_images() -> Request:
    return Request("GET", "/images")


def build_pull_image(opts: Options, reference: str, timeout: float | None) -> Request:
    if not isinstance(reference, str) or not reference:
        raise TypeError(f"reference must be a non-empty string, not {reference!r}")
    return Request("POST", "/images/pull", json={"image": reference},
                   read_timeout=opts.pull_timeout if timeout is None else timeout)


def build_delete_image(reference: str) -> Request:
    # Encoded slashes: the server routes on the path exactly as sent.
    return Request("DELETE", f"/images/{seg(reference)}")


def build_health() -> Request:
    return Request("GET", "/health")


# --- sessions -------------------------------------------------------------------


def _seconds(name: str, value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be a whole number of seconds (an int), not {value!r}")
    return value


def build_create_session(
    opts: Options,
    image: str,
    *,
    limits: Limits | Mapping[str, Any] | None,
    network: str | None,
    env: Mapping[str, str] | None,
    workdir: str | None,
    idle_timeout_secs: int | None,
    ttl_secs: int | None,
) -> Request:
    """``POST /sessions``. Never sent again once it may have reached the
    server (a second session would be made, and left to its idle timeout);
    awaited for ``run_timeout_margin`` (at least ``timeout``): the server
    may pull the image and starts the sandbox before it answers."""
    body: dict[str, Any] = {"image": _image(image)}
    lim = _limits(limits)
    if lim is not None:
        body["limits"] = lim
    if network is not None:
        if not isinstance(network, str):
            raise TypeError(f"network must be a string, not {type(network).__name__}")
        body["network"] = network
    _process(body, None, env, workdir, None)
    for name, value in (("idle_timeout_secs", idle_timeout_secs), ("ttl_secs", ttl_secs)):
        secs = _seconds(name, value)
        if secs is not None:
            body[name] = secs
    return Request("POST", "/sessions", json=body,
                   read_timeout=max(opts.timeout, opts.run_timeout_margin), repeatable=False)


def session_path(session_id: str) -> str:
    return f"/sessions/{seg(session_id)}"


def build_get_session(session_id: str) -> Request:
    return Request("GET", session_path(session_id))


def build_delete_session(session_id: str) -> Request:
    # Repeatable: a second DELETE finds no session, which close() ignores.
    return Request("DELETE", session_path(session_id))


def session_wall(create: Request, info: SessionInfo) -> float | None:
    """The wall-clock limit of a session's execs: the one in the server's
    answer (its limits are complete, its defaults filled in), else the one
    ``create`` asked for."""
    if info.limits.wall_clock_secs is not None:
        return float(info.limits.wall_clock_secs)
    return _wall(create.json.get("limits") if isinstance(create.json, dict) else None)


def exec_read_timeout(opts: Options, session_wall: float | None, timeout_secs: int | None,
                      timeout: float | None) -> float:
    """How long to wait for an exec's answer: its ``timeout_secs``, else the
    session's wall-clock limit, else the server's default as the client
    assumes it; plus ``run_timeout_margin``, as for a run."""
    if timeout is not None:
        return timeout
    if timeout_secs is not None:
        wall: float = timeout_secs
    elif session_wall is not None:
        wall = session_wall
    else:
        wall = opts.default_wall_clock_secs
    return wall + opts.run_timeout_margin


def build_exec(
    opts: Options,
    session_id: str,
    session_wall: float | None,
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    workdir: str | None,
    stdin: str | bytes | None,
    timeout_secs: int | None,
    timeout: float | None,
    stream: bool = False,
) -> Request:
    """``POST /sessions/{id}/exec`` (as server-sent events with
    ``stream``). Never sent again once it may have reached the server: the
    command may have run, and its effects on the session's files stay."""
    if cmd is None:
        raise TypeError("cmd is required: the full argv of the command to run in the session")
    body: dict[str, Any] = {}
    _process(body, cmd, env, workdir, stdin)
    if not body["cmd"]:
        raise ValueError("cmd is empty: pass the full argv, e.g. ['python3', 'main.py']")
    secs = _seconds("timeout_secs", timeout_secs)
    if secs is not None:
        body["timeout_secs"] = secs
    return Request("POST", f"{session_path(session_id)}/exec", json=body,
                   read_timeout=exec_read_timeout(opts, session_wall, secs, timeout),
                   repeatable=False, stream=stream)


def sandbox_path(path: str) -> str:
    """A file's absolute path in a session's sandbox as the URL path below
    ``/sessions/{id}/files/``: without its leading slash, each segment
    percent-encoded. ``.``, ``..`` and empty segments are refused here:
    httpx would fold the dot segments into another path before sending."""
    if not isinstance(path, str):
        raise TypeError(f"path must be a string (an absolute path in the sandbox), "
                        f"not {type(path).__name__}")
    if not path.startswith("/"):
        raise ValueError(f"path {path!r} must be absolute (start with '/'): a path in the "
                         f"session's sandbox, e.g. '/workspace/main.py'")
    if "\0" in path:
        raise ValueError(f"path {path!r} has a NUL character")
    segments = path[1:].split("/")
    for s in segments:
        if s in ("", ".", ".."):
            raise ValueError(f"path {path!r} has an empty, '.' or '..' segment; name the "
                             f"file by its plain absolute path")
    return "/".join(quote(s, safe="") for s in segments)


def build_write_file(session_id: str, path: str, data: object) -> Request:
    """``PUT /sessions/{id}/files/{path}`` with the raw bytes (read now from
    a local file), repeatable: a second PUT replaces the file with the same
    bytes."""
    where = sandbox_path(path)
    content = _content("data", data)
    return Request("PUT", f"{session_path(session_id)}/files/{where}", content=content)


def build_read_file(session_id: str, path: str) -> Request:
    return Request("GET", f"{session_path(session_id)}/files/{sandbox_path(path)}")


class ExecOutputs:
    """What the results of a session's execs hold in place of a client:
    execs keep no output files (``outputs`` is always empty), so their
    ``download()`` says where the files are instead of asking the server
    for a run that does not exist."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id

    def download(self, run_id: str, path: str | OutputFile) -> bytes:
        raise RuntimeError(
            f"{run_id} is an exec of session {self.session_id}: execs keep no output files; "
            f"the files it wrote are in the session, read them with session.read_file(path)")


# --- reading answers ------------------------------------------------------------


def retry_after(headers: Mapping[str, str], now: _dt.datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def api_error(req: Request, status: int, headers: Mapping[str, str], content: bytes) -> APIError:
    """The exception for an error answer, chosen by its code, else its status."""
    body: Any = None
    code: str | None = None
    message = ""
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = err.get("code") if isinstance(err.get("code"), str) else None
        message = err.get("message") if isinstance(err.get("message"), str) else ""
    if not message:
        text = content[:300].decode("utf-8", "replace").strip()
        message = text or f"HTTP {status} with no body"
    cls = error_class(status, code)
    return cls(message, status_code=status, code=code, method=req.method, path=req.path,
               headers=headers, body=body, retry_after=retry_after(headers))


def check(req: Request, status: int, headers: Mapping[str, str], content: bytes) -> None:
    """Raise the API error for a non-2xx answer."""
    if not 200 <= status < 300:
        raise api_error(req, status, headers, content)


def parse_json(req: Request, status: int, headers: Mapping[str, str], content: bytes) -> Any:
    """The JSON body of a 2xx answer."""
    check(req, status, headers, content)
    try:
        return json.loads(content)
    except ValueError:
        ctype = headers.get("content-type", "no content type")
        raise InvalidResponseError(
            f"{req.method} {req.path}: the server answered {status} with {ctype}, not JSON; "
            f"is the base URL a Boxer server?") from None


def _need(obj: Any, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(obj, dict) or key not in obj or not isinstance(obj[key], kind) \
            or (kind is int and isinstance(obj[key], bool)):
        raise InvalidResponseError(f"the server's {what} lacks a valid {key!r}: {str(obj)[:200]}")
    return obj[key]


def _time(value: Any) -> _dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def _outputs(items: Any, what: str) -> tuple[OutputFile, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise InvalidResponseError(f"the server's {what} has outputs that are not a list")
    return tuple(OutputFile(path=_need(o, "path", str, what), size=_need(o, "size", int, what))
                 for o in items)


def parse_run_result(data: Any, cls: type[R], client: Any) -> R:
    what = "run result"
    sig = data.get("signal") if isinstance(data, dict) else None
    return cls(
        id=_need(data, "id", str, what),
        image=_need(data, "image", str, what),
        image_digest=data.get("image_digest") or "",
        exit_code=_need(data, "exit_code", int, what),
        signal=sig if isinstance(sig, int) else None,
        timed_out=bool(data.get("timed_out")),
        oom_killed=bool(data.get("oom_killed")),
        stdout=_need(data, "stdout", str, what),
        stderr=_need(data, "stderr", str, what),
        stdout_truncated=bool(data.get("stdout_truncated")),
        stderr_truncated=bool(data.get("stderr_truncated")),
        wall_ms=_need(data, "wall_ms", int, what),
        outputs=_outputs(data.get("outputs"), what),
        outputs_truncated=bool(data.get("outputs_truncated")),
        started_at=_time(data.get("started_at")),
        finished_at=_time(data.get("finished_at")),
        raw=data,
        _client=client,
        index=_need(data, "index", int, what) if data.get("index") is not None else None,
        error=_run_error(data.get("error"), what),
    )


def _run_error(err: Any, what: str) -> BatchRunError | None:
    if err is None:
        return None
    return BatchRunError(code=_need(err, "code", str, f"{what}'s error"),
                         message=_need(err, "message", str, f"{what}'s error"))


def parse_batch_result(data: Any, plan: BatchPlan) -> BatchResult:
    """The answer to a ``POST /batch``: one result per run of the plan, in
    its order (each result names its position, and the SDK checks it)."""
    what = "batch answer"
    items = _need(data, "results", list, what)
    if len(items) != len(plan.runs):
        raise InvalidResponseError(f"the server's {what} has {len(items)} results for "
                                   f"{len(plan.runs)} runs")
    results = []
    for i, item in enumerate(items):
        index = _need(item, "index", int, "batch run result")
        if index != i:
            raise InvalidResponseError(f"the server's {what} has the result of run {index} "
                                       f"at position {i}")
        # No client: a batch run's result cannot be fetched again, and it
        # has no outputs to download.
        results.append(parse_run_result(item, RunResult, None))
    return BatchResult(id=_need(data, "id", str, what), image=_need(data, "image", str, what),
                       image_digest=data.get("image_digest") or "", results=tuple(results),
                       raw=data)


def parse_outputs(data: Any) -> tuple[OutputFile, ...]:
    return _outputs(_need(data, "outputs", list, "output listing"), "output listing")


def parse_uploaded(data: Any) -> tuple[UploadedFile, ...]:
    what = "upload answer"
    return tuple(
        UploadedFile(id=_need(f, "id", str, what), name=_need(f, "name", str, what),
                     size=_need(f, "size", int, what), sha256=_need(f, "sha256", str, what), raw=f)
        for f in _need(data, "files", list, what))


def parse_image(data: Any) -> ImageInfo:
    what = "image entry"
    return ImageInfo(reference=_need(data, "reference", str, what),
                     digest=_need(data, "digest", str, what),
                     size=_need(data, "size", int, what),
                     last_used=_time(data.get("last_used")), raw=data)


def parse_images(data: Any) -> tuple[ImageInfo, ...]:
    return tuple(parse_image(i) for i in _need(data, "images", list, "image list"))


def _session_limits(data: Any) -> Limits:
    if not isinstance(data, dict):
        return Limits()
    known = ("cpu_cores", "memory_mb", "wall_clock_secs", "pids_limit", "nofile")
    return Limits(**{k: data[k] for k in known
                     if isinstance(data.get(k), (int, float)) and not isinstance(data[k], bool)})


def parse_session(data: Any) -> SessionInfo:
    what = "session"
    return SessionInfo(
        id=_need(data, "id", str, what),
        image=_need(data, "image", str, what),
        image_digest=data.get("image_digest") or "",
        network=data.get("network") or "",
        limits=_session_limits(data.get("limits")),
        idle_timeout_secs=_need(data, "idle_timeout_secs", int, what),
        ttl_secs=_need(data, "ttl_secs", int, what),
        created_at=_time(data.get("created_at")),
        expires_at=_time(data.get("expires_at")),
        last_used_at=_time(data.get("last_used_at")),
        execs=_need(data, "execs", int, what),
        raw=data,
    )


def parse_health(data: Any) -> Health:
    what = "health answer"
    return Health(status=_need(data, "status", str, what),
                  runsc_version=data.get("runsc_version") or "",
                  platform=data.get("platform") or "", raw=data)


# --- retries --------------------------------------------------------------------


def retry_delay_for_status(opts: Options, req: Request, attempt: int, status: int,
                           headers: Mapping[str, str]) -> float | None:
    """Seconds to wait before sending req again after this answer, or None.

    Only a 503 (``busy``) or a 429 (the API key's runs at its
    ``max_concurrent_runs``) with Retry-After is retried: the server says it
    did not start the work and when to come back, so even ``POST /run`` is
    safe to repeat.
    """
    if status not in (429, 503) or attempt >= opts.max_retries:
        return None
    after = retry_after(headers)
    if after is None or after > opts.max_retry_after:
        return None
    return after


def _never_sent(exc: httpx.TransportError) -> bool:
    # The connection was never made (or no connection was free), so the
    # server cannot have seen the request.
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def retry_delay_for_exception(opts: Options, req: Request, attempt: int,
                              exc: httpx.TransportError) -> float | None:
    """Seconds to wait before sending req again after a transport failure, or None."""
    if attempt >= opts.max_retries:
        return None
    if isinstance(exc, httpx.TimeoutException) and not _never_sent(exc):
        return None  # the server may still be at work; waiting longer is the caller's choice
    if not _never_sent(exc) and not req.repeatable:
        return None
    return min(0.25 * float(2**attempt), 4.0)


def connection_error(opts: Options, req: Request, exc: httpx.TransportError) -> BoxerError:
    """The SDK's exception for a transport failure (raised ``from exc``)."""
    where = f"{req.method} {url(opts, req)}"
    if isinstance(exc, httpx.TimeoutException):
        if isinstance(exc, httpx.ConnectTimeout):
            return BoxerTimeoutError(f"{where}: could not connect within {opts.connect_timeout} s")
        if isinstance(exc, httpx.ReadTimeout):
            read = opts.timeout if req.read_timeout is None else req.read_timeout
            if req.stream:
                return BoxerTimeoutError(
                    f"{where}: nothing from the server's event stream for {read:g} s (the "
                    f"run's wall-clock limit plus run_timeout_margin; pass timeout= to wait "
                    f"longer)")
            hint = ""
            if req.path == "/run":
                hint = (" (the run's wall-clock limit plus run_timeout_margin; "
                        "pass timeout= to wait longer)")
            elif req.path == "/batch":
                hint = (" (ceil(runs / parallelism) times the longest wall-clock limit of its "
                        "runs, plus run_timeout_margin; pass timeout= to wait longer)")
            elif re.fullmatch(r"/sessions/[^/]+/exec", req.path):
                hint = (" (the exec's timeout_secs, else the session's wall-clock limit, plus "
                        "run_timeout_margin; pass timeout= to wait longer)")
            elif req.path == "/sessions":
                hint = " (run_timeout_margin: an image pull and the sandbox's start-up)"
            return BoxerTimeoutError(f"{where}: no answer within {read:g} s{hint}")
        return BoxerTimeoutError(f"{where}: timed out ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError):
        return BoxerConnectionError(f"{where}: cannot connect ({exc}); is Boxer running there? "
                                    f"(base URL from the client's argument or ${BASE_URL_ENV})")
    return BoxerConnectionError(f"{where}: the connection failed ({type(exc).__name__}: {exc})")


# --- streams: POST /run with Accept: text/event-stream -------------------------


def is_event_stream(status: int, headers: Mapping[str, str]) -> bool:
    """Whether an answer is a stream of events, not a whole JSON answer."""
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return status == 200 and media == EVENT_STREAM


@dataclass(frozen=True)
class Message:
    """One server-sent event as it came: its type and its data lines joined."""

    event: str
    data: str


class SSEParser:
    """Server-sent events from the bytes of a body, fed as they come.

    It reads the format as the WHATWG's "event stream interpretation" (what
    a browser's ``EventSource`` does), because a proxy in between may cut
    and re-chunk the stream anywhere: chunks may split a line, a UTF-8
    character or a CR LF pair. Lines end at CR LF, LF or CR; a line starting
    with ``:`` is a comment (a keep-alive); ``event`` sets the type and each
    ``data`` line adds a line to the data; other fields (``id``, ``retry``,
    unknown ones) mean nothing to a stream that is never resumed; a blank
    line dispatches the event if it has data. An event not ended by its
    blank line when the body ends is dropped: it may have been cut.
    """

    _EOL = re.compile(r"\r\n|\r|\n")

    def __init__(self) -> None:
        # Invalid bytes are replaced, as the server does for output.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._first = True
        #: The start of a line whose end has not come yet.
        self._partial: list[str] = []
        #: The last chunk ended in CR: an LF opening the next one is its pair.
        self._after_cr = False
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[Message]:
        """The events that chunk completes, in order."""
        return self._lines(self._decoder.decode(chunk))

    def end(self) -> list[Message]:
        """The events the end of the body completes: none, since an event
        counts only with its blank line; its parts are dropped."""
        self._decoder.decode(b"", final=True)
        self._partial.clear()
        self._event, self._data = "", []
        return []

    def _lines(self, text: str) -> list[Message]:
        out: list[Message] = []
        if not text:
            return out
        if self._first:
            self._first = False
            if text[0] == "\ufeff":
                text = text[1:]
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = text.endswith("\r")
        pos = 0
        for m in self._EOL.finditer(text):
            line = text[pos:m.start()]
            if self._partial:
                line = "".join(self._partial) + line
                self._partial.clear()
            self._line(line, out)
            pos = m.end()
        if pos < len(text):
            # Kept in pieces: joining a long line's pieces once, at its end,
            # keeps a line fed in many small chunks linear in its length.
            self._partial.append(text[pos:])
        return out

    def _line(self, line: str, out: list[Message]) -> None:
        if not line:
            if self._data:
                out.append(Message(self._event or "message", "\n".join(self._data)))
            self._event, self._data = "", []
            return
        if line[0] == ":":
            return
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)


def stream_error(req: Request, headers: Mapping[str, str], data: str) -> APIError:
    """The exception for a stream's ``error`` event: the class a JSON error
    answer with the same code gets. The HTTP answer itself was a 200, so
    ``status_code`` is the status the code stands for (500 for a code this
    SDK does not know: the run failed on the server's side after it began)."""
    code: str | None = None
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict) \
            and isinstance(body["error"].get("code"), str):
        code = body["error"]["code"]
    status = error_class(500, code).status or 500
    return api_error(req, status, headers, data.encode("utf-8"))


class StreamReader(Generic[R]):
    """The events of a streamed run from its answer, with no I/O: the
    clients feed it the body's chunks as they come and take the events out
    with :meth:`next`, so the sync and async streams cannot differ.

    ``stdout`` and ``stderr`` events become :class:`StdoutEvent` and
    :class:`StderrEvent`; ``result`` a :class:`ResultEvent` read as
    ``run()`` reads its answer, and the last event: once it is out,
    :attr:`done` is set and nothing after it is read. An ``error`` event
    raises the exception a JSON error answer with its code would; a body
    that ends before either raises :class:`BoxerConnectionError`. Events of
    other types are skipped, for a later server's sake.
    """

    def __init__(self, opts: Options, req: Request, headers: Mapping[str, str], cls: type[R],
                 client: Any) -> None:
        self._opts = opts
        self._req = req
        self._headers = headers
        self._cls = cls
        self._client = client
        self._parser = SSEParser()
        self._queue: deque[Message | StdoutEvent | StderrEvent | ResultEvent[R]] = deque()
        self._ended = False
        #: The stream has nothing more to give: its result or error is out,
        #: or its early end was raised. Read no more of the body.
        self.done = False

    def feed(self, chunk: bytes) -> None:
        """Some bytes of the body, cut anywhere."""
        if not self.done:
            self._queue.extend(self._parser.feed(chunk))

    def end(self) -> None:
        """The body ended."""
        self._queue.extend(self._parser.end())
        self._ended = True

    def answer(self, status: int, headers: Mapping[str, str], content: bytes) -> None:
        """A whole answer that is not a stream. An error answer raises as it
        does for ``run()``; a run result (from a server that does not stream)
        becomes the events a stream of it would have sent: its output in one
        piece per stream, then its result."""
        data = parse_json(self._req, status, headers, content)
        result = parse_run_result(data, self._cls, self._client)
        if result.stdout:
            self._queue.append(StdoutEvent(result.stdout))
        if result.stderr:
            self._queue.append(StderrEvent(result.stderr))
        self._queue.append(ResultEvent(result))
        self._ended = True

    def next(self) -> StdoutEvent | StderrEvent | ResultEvent[R] | None:
        """The next event; ``None`` when it needs more of the body (or when
        :attr:`done`)."""
        while self._queue and not self.done:
            item = self._queue.popleft()
            try:
                event = self._event(item) if isinstance(item, Message) else item
            except BaseException:
                self.done = True
                raise
            if isinstance(event, ResultEvent):
                self.done = True
            if event is not None:
                return event
        if self._ended and not self.done:
            self.done = True
            raise BoxerConnectionError(
                f"{self._req.method} {url(self._opts, self._req)}: the event stream ended before "
                f"the run's result: the connection was cut or the server failed mid-run, so how "
                f"the run ended is unknown (a run whose stream is cut is stopped)")
        return None

    def _event(self, msg: Message) -> StdoutEvent | StderrEvent | ResultEvent[R] | None:
        if msg.event not in ("stdout", "stderr", "result", "error"):
            return None
        if msg.event == "error":
            raise stream_error(self._req, self._headers, msg.data)
        try:
            data = json.loads(msg.data)
        except ValueError:
            raise InvalidResponseError(
                f"{self._req.method} {self._req.path}: the server's {msg.event} event is not "
                f"JSON: {msg.data[:200]!r}") from None
        if msg.event == "result":
            return ResultEvent(parse_run_result(data, self._cls, self._client))
        text = _need(data, "data", str, f"{msg.event} event")
        if msg.event == "stdout":
            return StdoutEvent(text, raw=data)
        return StderrEvent(text, raw=data)
