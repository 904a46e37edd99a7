"""BoxerClient: the synchronous client. Its shape is AsyncBoxerClient's, and
everything but sending and sleeping is in _core."""

from __future__ import annotations

import os
import time
from types import TracebackType
from typing import Any, Iterator, Mapping, Sequence

import httpx

from . import _core as core
from ._types import (
    BatchResult,
    BatchRun,
    FileSource,
    Health,
    ImageInfo,
    Limits,
    OutputFile,
    RunResult,
    SessionInfo,
    StreamEvent,
    UploadedFile,
)
from ._errors import BoxerError, SessionNotFoundError

__all__ = ["BoxerClient", "Images", "RunStream", "Session"]


class BoxerClient:
    """A client of one Boxer server.

    Args:
        base_url: the server, e.g. ``"http://localhost:8080"``; default
            ``$BOXER_URL``, else ``http://localhost:8080``.
        api_key: the API key for a server that has keys configured, sent as
            ``Authorization: Bearer <key>`` with every request; default
            ``$BOXER_API_KEY``. It wins over an ``Authorization`` in
            ``headers``, which in turn wins over ``$BOXER_API_KEY``. The SDK
            shows it in no ``repr()`` and no error message.
        timeout: seconds to wait for an answer to anything but a run or a pull.
        run_timeout_margin: a run's answer is awaited for its wall-clock limit
            plus this (image pull on first use, sandbox start-up, waiting for a
            free worker).
        default_wall_clock_secs: the wall-clock limit assumed for runs that do
            not set one (the server's default, 30 unless its operator changed it).
        pull_timeout: seconds to wait for ``images.pull()``.
        max_retries: how many times a request is sent again after a connection
            failure, or a ``503`` (busy) or ``429`` (the API key's runs at its
            limit) with ``Retry-After``. A ``POST /run`` that may have reached
            the server is never sent again.
        max_retry_after: a ``Retry-After`` longer than this is not waited for.
        headers: extra headers for every request.
        http_client: an ``httpx.Client`` to use (proxies, TLS settings,
            transports); it is not closed by :meth:`close`.

    Use it as a context manager, or call :meth:`close`. It is safe to share
    between threads.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        run_timeout_margin: float = 300.0,
        default_wall_clock_secs: int = 30,
        pull_timeout: float = 900.0,
        max_retries: int = 2,
        max_retry_after: float = 60.0,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._opts = core.make_options(
            base_url, timeout=timeout, run_timeout_margin=run_timeout_margin,
            default_wall_clock_secs=default_wall_clock_secs, pull_timeout=pull_timeout,
            max_retries=max_retries, max_retry_after=max_retry_after, headers=headers,
            api_key=api_key)
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.Client()
        #: Images in the server's cache: ``list()``, ``pull()``, ``delete()``.
        self.images = Images(self)

    @property
    def base_url(self) -> str:
        """The server's base URL, without a trailing slash."""
        return self._opts.base_url

    def __repr__(self) -> str:
        return f"BoxerClient({self.base_url!r})"

    # --- I/O: the only part that differs from AsyncBoxerClient ---------------

    def _send(self, req: core.Request) -> httpx.Response:
        """The answer to req, after the retries the core allows. For a
        stream (``req.stream``) only its head has been read: the caller
        reads the body and must close it."""
        attempt = 0
        while True:
            try:
                args = core.httpx_args(self._opts, req)
                if req.stream:
                    resp = self._http.send(self._http.build_request(**args), stream=True)
                else:
                    resp = self._http.request(**args)
            except httpx.TransportError as exc:
                delay = core.retry_delay_for_exception(self._opts, req, attempt, exc)
                if delay is None:
                    raise core.connection_error(self._opts, req, exc) from exc
            else:
                delay = core.retry_delay_for_status(self._opts, req, attempt, resp.status_code,
                                                    resp.headers)
                if delay is None:
                    return resp
                resp.close()
            time.sleep(delay)
            attempt += 1

    def _json(self, req: core.Request) -> Any:
        resp = self._send(req)
        return core.parse_json(req, resp.status_code, resp.headers, resp.content)

    # --- the API ----------------------------------------------------------------

    def run(
        self,
        image: str,
        cmd: Sequence[str] | None = None,
        *,
        files: Mapping[str, FileSource] | None = None,
        limits: Limits | Mapping[str, Any] | None = None,
        network: str | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        stdin: str | bytes | None = None,
        timeout: float | None = None,
    ) -> RunResult:
        """Run ``cmd`` in a fresh sandbox of ``image`` and wait for it.

        Args:
            image: an image reference (``"python:3.12-slim"``,
                ``"localhost:5000/boxer/python:3.11"``), pulled on first use.
            cmd: the full argv; ``None`` runs the image's Entrypoint + Cmd.
            files: ``{path in the sandbox: content}``, each value a
                ``pathlib.Path`` (a local file), ``bytes`` or ``str`` (the
                content itself) or an :class:`UploadedFile`; uploaded with the
                request and mounted read-only.
            limits: :class:`Limits` or a dict of its fields.
            network: ``"none"`` (the server's default), ``"sandbox"`` or
                ``"host"`` (only where the operator allows it).
            env: merged over the image's environment.
            workdir: the working directory; default the image's.
            stdin: text fed to the process's standard input.
            timeout: seconds to wait for the answer; default the run's
                wall-clock limit plus ``run_timeout_margin``.

        Returns the :class:`RunResult` of any run that completed, also when
        it exited non-zero, timed out or was OOM-killed; raises an
        :class:`APIError` when the run could not be started.
        """
        req = core.build_run(self._opts, image, cmd, files=files, limits=limits, network=network,
                             env=env, workdir=workdir, stdin=stdin, timeout=timeout)
        return core.parse_run_result(self._json(req), RunResult, self)

    def stream(
        self,
        image: str,
        cmd: Sequence[str] | None = None,
        *,
        files: Mapping[str, FileSource] | None = None,
        limits: Limits | Mapping[str, Any] | None = None,
        network: str | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        stdin: str | bytes | None = None,
        timeout: float | None = None,
    ) -> RunStream:
        """Run ``cmd`` as :meth:`run` does, and see its output as it comes.

        Takes :meth:`run`'s arguments (``timeout`` bounds each wait for the
        next piece of the stream) and returns a :class:`RunStream`: iterate
        over it for :class:`StdoutEvent` and :class:`StderrEvent` as the
        program writes, then one :class:`ResultEvent` holding the
        :class:`RunResult` that :meth:`run` would have returned::

            with client.stream(image, ["python3", "train.py"]) as events:
                for event in events:
                    if isinstance(event, boxer.StdoutEvent):
                        print(event.data, end="", flush=True)
                    elif isinstance(event, boxer.ResultEvent):
                        result = event.result

        The request is sent when the first event is asked for. An error
        before the run starts raises as from :meth:`run`; one after it began
        raises the same exceptions when the stream gets to it; a stream cut
        before the result raises :class:`BoxerConnectionError`. Closing the
        stream early (leaving the ``with``, ``close()``) closes the
        connection, and the server stops the run. A stream is never sent
        again once the server answered.
        """
        req = core.build_stream(self._opts, image, cmd, files=files, limits=limits,
                                network=network, env=env, workdir=workdir, stdin=stdin,
                                timeout=timeout)
        return RunStream(self, req)

    def session(
        self,
        image: str,
        *,
        limits: Limits | Mapping[str, Any] | None = None,
        network: str | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        idle_timeout_secs: int | None = None,
        ttl_secs: int | None = None,
    ) -> Session:
        """A sandbox of ``image`` kept for many commands: files and the
        effects of each command on the file system stay from one
        :meth:`Session.exec` to the next (``POST /sessions``)::

            with client.session("localhost:5000/boxer/python:3.11") as s:
                s.write_file("/w/main.py", "print(6 * 7)")
                s.exec(["python3", "/w/main.py"]).stdout    # '42\\n'

        Nothing is sent yet: the session is made when the ``with`` is
        entered (or by :meth:`Session.open`), and deleted when it is left
        (or by :meth:`Session.close`).

        Args:
            image: an image reference, pulled on first use.
            limits: :class:`Limits` or a dict: ``memory_mb``, ``cpu_cores``
                and ``pids_limit`` bound the whole session, ``wall_clock_secs``
                is each exec's default time limit.
            network: ``"none"`` (the default), ``"sandbox"`` or ``"host"``,
                as a run's; the session's sandbox keeps it for all its execs.
            env: the environment of every exec (an exec's own ``env`` is
                merged over it).
            workdir: every exec's default working directory.
            idle_timeout_secs: the server destroys the session after this
                long without a request (server default 300).
            ttl_secs: the server destroys the session this long after its
                creation, in use or not (server default 3600).
        """
        req = core.build_create_session(self._opts, image, limits=limits, network=network,
                                        env=env, workdir=workdir,
                                        idle_timeout_secs=idle_timeout_secs, ttl_secs=ttl_secs)
        return Session(self, req)

    def batch(
        self,
        image: str,
        runs: Sequence[BatchRun | Mapping[str, Any]],
        *,
        network: str | None = None,
        limits: Limits | Mapping[str, Any] | None = None,
        parallelism: int | None = None,
        timeout: float | None = None,
    ) -> BatchResult:
        """Run many commands in one sandbox of ``image``, ``parallelism`` at
        a time, and wait for all of them (``POST /batch``).

        Args:
            image: an image reference, pulled on first use; every run uses it.
            runs: one :class:`BatchRun` (or a dict with its fields: ``cmd``,
                ``stdin``, ``env``, ``workdir``, ``files``, ``limits``) per
                run. Contents named in their ``files`` are uploaded first
                (``POST /files``, each distinct content once).
            network: the whole sandbox's network mode: ``"none"`` (the
                default), or another where the server allows it for batches.
            limits: the sandbox's: ``memory_mb``, ``cpu_cores`` and
                ``pids_limit`` bound all runs together; ``wall_clock_secs``
                is each run's default. A :class:`Limits` or a dict.
            parallelism: how many runs at once (default 1, at most the
                server's cap); they start in the order of ``runs``.
            timeout: seconds to wait for the answer; default
                ceil(len(runs) / parallelism) times the longest wall-clock
                limit among the runs, plus ``run_timeout_margin``.

        Returns a :class:`BatchResult` with one :class:`RunResult` per run,
        in order: a run that completed is a result whatever its exit status,
        and one that could not be started is a result with ``error`` set.
        Raises an :class:`APIError` when the batch as a whole is refused
        (the image is unknown, a field is invalid, the server is busy...).
        """
        plan = core.plan_batch(self._opts, image, runs, network=network, limits=limits,
                               parallelism=parallelism, timeout=timeout)
        upload = core.batch_upload(plan)
        uploaded = core.parse_uploaded(self._json(upload)) if upload is not None else ()
        req = core.build_batch(plan, uploaded)
        return core.parse_batch_result(self._json(req), plan)

    def upload(self, files: Mapping[str, FileSource]) -> tuple[UploadedFile, ...]:
        """Store files on the server for later runs: ``{name: Path | bytes | str}``.
        Returns one :class:`UploadedFile` per file, in order; they expire after
        the server's ``files_ttl_secs``."""
        return core.parse_uploaded(self._json(core.build_upload(files)))

    def get_run(self, run_id: str) -> RunResult:
        """The result of an earlier run, kept by the server for ``runs_ttl_secs``."""
        return core.parse_run_result(self._json(core.build_get_run(run_id)), RunResult, self)

    def list_outputs(self, run_id: str) -> tuple[OutputFile, ...]:
        """The files a run left under ``/output/``."""
        return core.parse_outputs(self._json(core.build_list_outputs(run_id)))

    def download(self, run_id: str, path: str | OutputFile) -> bytes:
        """The content of one output file of a run (``path`` relative to
        ``/output/``, or an :class:`OutputFile`)."""
        req = core.build_download(run_id, path)
        resp = self._send(req)
        core.check(req, resp.status_code, resp.headers, resp.content)
        return resp.content

    def health(self) -> Health:
        """The server's health; raises :class:`RuntimeUnavailableError` when
        its runsc is unusable."""
        return core.parse_health(self._json(core.build_health()))

    # --- lifetime ---------------------------------------------------------------

    def close(self) -> None:
        """Close the connections (unless the httpx client was passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> BoxerClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Images:
    """``client.images``: the server's image cache."""

    def __init__(self, client: BoxerClient) -> None:
        self._client = client

    def list(self) -> tuple[ImageInfo, ...]:
        """Every image in the server's cache."""
        return core.parse_images(self._client._json(core.build_list_images()))

    def pull(self, reference: str, *, timeout: float | None = None) -> ImageInfo:
        """Pull an image from its registry into the server's cache (again, if it
        is there already), waiting up to ``timeout`` (default the client's
        ``pull_timeout``), and return its entry."""
        req = core.build_pull_image(self._client._opts, reference, timeout)
        return core.parse_image(self._client._json(req))

    def delete(self, reference: str) -> None:
        """Remove an image from the server's cache."""
        req = core.build_delete_image(reference)
        resp = self._client._send(req)
        core.check(req, resp.status_code, resp.headers, resp.content)


class RunStream:
    """The events of one run as it goes: what :meth:`BoxerClient.stream`
    returns. An iterator of :class:`StdoutEvent`, :class:`StderrEvent` and
    finally one :class:`ResultEvent`, and a context manager that closes it.

    The request is sent on the first ``next()``. Once the result is out, or
    an exception was raised, the stream is closed and iteration ends.
    Closing it before (:meth:`close`, leaving its ``with``, or dropping the
    last reference to it) closes the connection, which makes the server
    stop the run: a stream abandoned half-read does not leave its program
    running.
    """

    def __init__(self, client: BoxerClient, req: core.Request, results: Any = None) -> None:
        self._client = client
        self._req = req
        #: What the result's ``download()`` asks: the client, or for an
        #: exec of a session, what says that execs keep no outputs.
        self._results = client if results is None else results
        self._resp: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._reader: core.StreamReader[RunResult] | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._resp is not None else "not sent"
        return f"<RunStream {self._req.method} {core.url(self._client._opts, self._req)} {state}>"

    def __iter__(self) -> RunStream:
        return self

    def __next__(self) -> StreamEvent:
        if self._closed:
            raise StopIteration
        try:
            event = self._next()
        except BaseException:
            # An error event, a cut stream, Ctrl-C: nothing more will be read.
            self.close()
            raise
        if event is None:
            self.close()
            raise StopIteration
        return event

    def _next(self) -> StreamEvent | None:
        if self._reader is None:
            self._reader = self._open()
        reader = self._reader
        while True:
            event = reader.next()
            if event is not None or reader.done:
                if reader.done:
                    self.close()
                return event
            assert self._chunks is not None  # a whole answer is ended at once
            try:
                chunk = next(self._chunks)
            except StopIteration:
                reader.end()
            except httpx.TransportError as exc:
                raise core.connection_error(self._client._opts, self._req, exc) from exc
            else:
                reader.feed(chunk)

    def _open(self) -> core.StreamReader[RunResult]:
        client = self._client
        resp = self._resp = client._send(self._req)
        reader = core.StreamReader(client._opts, self._req, resp.headers, RunResult,
                                   self._results)
        if core.is_event_stream(resp.status_code, resp.headers):
            self._chunks = resp.iter_bytes()
            return reader
        try:
            content = resp.read()
        except httpx.TransportError as exc:
            raise core.connection_error(client._opts, self._req, exc) from exc
        reader.answer(resp.status_code, resp.headers, content)
        return reader

    def close(self) -> None:
        """Stop reading and close the connection; if the run has not ended,
        the server stops it. Closing twice is harmless."""
        self._closed = True
        chunks, self._chunks = self._chunks, None
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        if self._resp is not None:
            self._resp.close()

    def __enter__(self) -> RunStream:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        # The safety net for `for event in client.stream(...): break`.
        try:
            self.close()
        except Exception:
            pass


class Session:
    """A sandbox kept for many commands: what :meth:`BoxerClient.session`
    returns. Files written with :meth:`write_file`, and whatever an
    :meth:`exec` leaves in the file system, are there for the next exec;
    each exec is a new process; the execs of one session run one at a time
    (a second waits for the first).

    ``POST /sessions`` is sent when the ``with`` is entered, or by
    :meth:`open` for code that cannot use ``with``; :meth:`close` (or
    leaving the ``with``) deletes the session. A session that is neither
    closed nor used is destroyed by the server after its
    ``idle_timeout_secs``, and any session after its ``ttl_secs``; its
    methods then raise :class:`SessionNotFoundError`, as they do once it
    is closed.
    """

    def __init__(self, client: BoxerClient, req: core.Request) -> None:
        self._client = client
        self._create = req
        self._id: str | None = None
        #: Each exec's default wall-clock limit, once the session is open.
        self._wall: float | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._id is not None else "not open"
        return f"<Session {self._id or self._create.json['image']!r} {state}>"

    @property
    def id(self) -> str:
        """The session's id (``"s_..."``), once it is open."""
        if self._id is None:
            raise RuntimeError("the session is not open yet: use `with client.session(...) as "
                               "s:`, or call s.open()")
        return self._id

    def open(self) -> Session:
        """Make the session (``POST /sessions``) if that is not done yet,
        and return it. Never sent twice: if its answer is lost, a session
        the server made anyway ends at its idle timeout."""
        if self._closed:
            raise RuntimeError(f"session {self._id or ''} is closed; make a new one with "
                               f"client.session(...)")
        if self._id is None:
            info = core.parse_session(self._client._json(self._create))
            self._id, self._wall = info.id, core.session_wall(self._create, info)
        return self

    def exec(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        stdin: str | bytes | None = None,
        timeout_secs: int | None = None,
        timeout: float | None = None,
    ) -> RunResult:
        """Run ``cmd`` in the session and wait for it
        (``POST /sessions/{id}/exec``).

        Args:
            cmd: the full argv (a list of strings).
            env: merged over the session's environment.
            workdir: the working directory; default the session's.
            stdin: text fed to the process's standard input.
            timeout_secs: the command's wall-clock limit (the server kills
                it then: ``timed_out``); default the session's
                ``limits.wall_clock_secs``.
            timeout: seconds to wait for the answer; default
                ``timeout_secs`` (else the session's wall-clock limit) plus
                ``run_timeout_margin``.

        Returns a :class:`RunResult` as :meth:`BoxerClient.run` does (its id
        is ``"<session id>/<n>"``; ``outputs`` is empty: the files are in
        the session). Never sent again once it may have reached the server.
        """
        req = core.build_exec(self._client._opts, self.id, self._wall, cmd, env=env,
                              workdir=workdir, stdin=stdin, timeout_secs=timeout_secs,
                              timeout=timeout)
        data = self._client._json(req)
        return core.parse_run_result(data, RunResult, core.ExecOutputs(self.id))

    def exec_stream(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        stdin: str | bytes | None = None,
        timeout_secs: int | None = None,
        timeout: float | None = None,
    ) -> RunStream:
        """Run ``cmd`` as :meth:`exec` does, and see its output as it comes:
        a :class:`RunStream` of the events of :meth:`BoxerClient.stream`
        (:class:`StdoutEvent`, :class:`StderrEvent`, then one
        :class:`ResultEvent` with the :class:`RunResult` :meth:`exec` would
        have returned). ``timeout`` bounds each wait for the next piece.
        The request is sent when the first event is asked for; closing the
        stream early stops the command."""
        req = core.build_exec(self._client._opts, self.id, self._wall, cmd, env=env,
                              workdir=workdir, stdin=stdin, timeout_secs=timeout_secs,
                              timeout=timeout, stream=True)
        return RunStream(self._client, req, core.ExecOutputs(self.id))

    def write_file(self, path: str, data: bytes | str | os.PathLike[str]) -> None:
        """Write a file into the session at ``path`` (absolute), replacing
        any file there and making missing directories
        (``PUT /sessions/{id}/files/{path}``). ``data`` is the content
        (``bytes``; ``str`` is encoded as UTF-8) or a local file (a
        ``pathlib.Path``). The file belongs to the user execs run as."""
        req = core.build_write_file(self.id, path, data)
        resp = self._client._send(req)
        core.check(req, resp.status_code, resp.headers, resp.content)

    def read_file(self, path: str) -> bytes:
        """The content of the file at ``path`` (absolute) in the session
        (``GET /sessions/{id}/files/{path}``); :class:`BoxerFileNotFoundError`
        if there is no regular file there."""
        req = core.build_read_file(self.id, path)
        resp = self._client._send(req)
        core.check(req, resp.status_code, resp.headers, resp.content)
        return resp.content

    def info(self) -> SessionInfo:
        """The session's current state (``GET /sessions/{id}``)."""
        return core.parse_session(self._client._json(core.build_get_session(self.id)))

    def close(self) -> None:
        """Delete the session and everything in it (``DELETE
        /sessions/{id}``). Closing twice, closing a session never opened,
        or one the server already destroyed (expired) is harmless."""
        if self._closed:
            return
        if self._id is not None:
            req = core.build_delete_session(self._id)
            resp = self._client._send(req)
            try:
                core.check(req, resp.status_code, resp.headers, resp.content)
            except SessionNotFoundError:
                pass
        self._closed = True

    def __enter__(self) -> Session:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self.close()
            return
        # The body's exception is the one to see; a session that cannot be
        # deleted now ends at its idle timeout.
        try:
            self.close()
        except BoxerError:
            pass
