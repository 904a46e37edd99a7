"""AsyncBoxerClient: the asynchronous client. Its shape is BoxerClient's, and
everything but sending and sleeping is in _core."""

from __future__ import annotations

import os
import anyio
from types import TracebackType
from typing import Any, AsyncIterator, Mapping, Sequence

import httpx

from . import _core as core
from ._types import (
    AsyncRunResult,
    AsyncStreamEvent,
    BatchResult,
    BatchRun,
    FileSource,
    Health,
    ImageInfo,
    Limits,
    OutputFile,
    SessionInfo,
    UploadedFile,
)
from ._errors import BoxerError, SessionNotFoundError

__all__ = ["AsyncBoxerClient", "AsyncImages", "AsyncRunStream", "AsyncSession"]


class AsyncBoxerClient:
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
        http_client: an ``httpx.AsyncClient`` to use (proxies, TLS settings,
            transports); it is not closed by :meth:`close`.

    Use it as ``async with AsyncBoxerClient() as client:``, or ``await
    client.close()``. One client serves any number of concurrent tasks; every
    method is a coroutine with the same arguments as :class:`BoxerClient`'s.
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
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._opts = core.make_options(
            base_url, timeout=timeout, run_timeout_margin=run_timeout_margin,
            default_wall_clock_secs=default_wall_clock_secs, pull_timeout=pull_timeout,
            max_retries=max_retries, max_retry_after=max_retry_after, headers=headers,
            api_key=api_key)
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient()
        #: Images in the server's cache: ``list()``, ``pull()``, ``delete()``.
        self.images = AsyncImages(self)

    @property
    def base_url(self) -> str:
        """The server's base URL, without a trailing slash."""
        return self._opts.base_url

    def __repr__(self) -> str:
        return f"AsyncBoxerClient({self.base_url!r})"

    # --- I/O: the only part that differs from AsyncBoxerClient ---------------

    async def _send(self, req: core.Request) -> httpx.Response:
        """The answer to req, after the retries the core allows. For a
        stream (``req.stream``) only its head has been read: the caller
        reads the body and must close it."""
        attempt = 0
        while True:
            try:
                args = core.httpx_args(self._opts, req)
                if req.stream:
                    resp = await self._http.send(self._http.build_request(**args), stream=True)
                else:
                    resp = await self._http.request(**args)
            except httpx.TransportError as exc:
                delay = core.retry_delay_for_exception(self._opts, req, attempt, exc)
                if delay is None:
                    raise core.connection_error(self._opts, req, exc) from exc
            else:
                delay = core.retry_delay_for_status(self._opts, req, attempt, resp.status_code,
                                                    resp.headers)
                if delay is None:
                    return resp
                await resp.aclose()
            await anyio.sleep(delay)
            attempt += 1

    async def _json(self, req: core.Request) -> Any:
        resp = await self._send(req)
        return core.parse_json(req, resp.status_code, resp.headers, resp.content)

    # --- the API ----------------------------------------------------------------

    async def run(
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
    ) -> AsyncRunResult:
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
        return core.parse_run_result(await self._json(req), AsyncRunResult, self)

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
    ) -> AsyncRunStream:
        """Run ``cmd`` as :meth:`run` does, and see its output as it comes.

        Not a coroutine: it returns an :class:`AsyncRunStream`, to use with
        ``async for`` (best inside ``async with``)::

            async with client.stream(image, ["python3", "train.py"]) as events:
                async for event in events:
                    if isinstance(event, boxer.StdoutEvent):
                        print(event.data, end="", flush=True)
                    elif isinstance(event, boxer.ResultEvent):
                        result = event.result

        Everything else is :meth:`BoxerClient.stream`'s: the same arguments,
        events, exceptions, and closing early stops the run.
        """
        req = core.build_stream(self._opts, image, cmd, files=files, limits=limits,
                                network=network, env=env, workdir=workdir, stdin=stdin,
                                timeout=timeout)
        return AsyncRunStream(self, req)

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
    ) -> AsyncSession:
        """A sandbox of ``image`` kept for many commands (``POST /sessions``).

        Not a coroutine: it returns an :class:`AsyncSession`, made when its
        ``async with`` is entered (or by ``await s.open()``) and deleted
        when it is left (or by ``await s.close()``)::

            async with client.session("localhost:5000/boxer/python:3.11") as s:
                await s.write_file("/w/main.py", "print(6 * 7)")
                (await s.exec(["python3", "/w/main.py"])).stdout    # '42\\n'

        Everything else is :meth:`BoxerClient.session`'s: the same
        arguments, methods (awaited) and exceptions.
        """
        req = core.build_create_session(self._opts, image, limits=limits, network=network,
                                        env=env, workdir=workdir,
                                        idle_timeout_secs=idle_timeout_secs, ttl_secs=ttl_secs)
        return AsyncSession(self, req)

    async def batch(
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
        uploaded = core.parse_uploaded(await self._json(upload)) if upload is not None else ()
        req = core.build_batch(plan, uploaded)
        return core.parse_batch_result(await self._json(req), plan)

    async def upload(self, files: Mapping[str, FileSource]) -> tuple[UploadedFile, ...]:
        """Store files on the server for later runs: ``{name: Path | bytes | str}``.
        Returns one :class:`UploadedFile` per file, in order; they expire after
        the server's ``files_ttl_secs``."""
        return core.parse_uploaded(await self._json(core.build_upload(files)))

    async def get_run(self, run_id: str) -> AsyncRunResult:
        """The result of an earlier run, kept by the server for ``runs_ttl_secs``."""
        data = await self._json(core.build_get_run(run_id))
        return core.parse_run_result(data, AsyncRunResult, self)

    async def list_outputs(self, run_id: str) -> tuple[OutputFile, ...]:
        """The files a run left under ``/output/``."""
        return core.parse_outputs(await self._json(core.build_list_outputs(run_id)))

    async def download(self, run_id: str, path: str | OutputFile) -> bytes:
        """The content of one output file of a run (``path`` relative to
        ``/output/``, or an :class:`OutputFile`)."""
        req = core.build_download(run_id, path)
        resp = await self._send(req)
        core.check(req, resp.status_code, resp.headers, resp.content)
        return resp.content

    async def health(self) -> Health:
        """The server's health; raises :class:`RuntimeUnavailableError` when
        its runsc is unusable."""
        return core.parse_health(await self._json(core.build_health()))

    # --- lifetime ---------------------------------------------------------------

    async def close(self) -> None:
        """Close the connections (unless the httpx client was passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncBoxerClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        await self.close()


class AsyncImages:
    """``client.images``: the server's image cache."""

    def __init__(self, client: AsyncBoxerClient) -> None:
        self._client = client

    async def list(self) -> tuple[ImageInfo, ...]:
        """Every image in the server's cache."""
        return core.parse_images(await self._client._json(core.build_list_images()))

    async def pull(self, reference: str, *, timeout: float | None = None) -> ImageInfo:
        """Pull an image from its registry into the server's cache (again, if it
        is there already), waiting up to ``timeout`` (default the client's
        ``pull_timeout``), and return its entry."""
        req = core.build_pull_image(self._client._opts, reference, timeout)
        return core.parse_image(await self._client._json(req))

    async def delete(self, reference: str) -> None:
        """Remove an image from the server's cache."""
        req = core.build_delete_image(reference)
        resp = await self._client._send(req)
        core.check(req, resp.status_code, resp.headers, resp.content)


class AsyncRunStream:
    """The events of one run as it goes: what
    :meth:`AsyncBoxerClient.stream` returns. An async iterator of
    :class:`StdoutEvent`, :class:`StderrEvent` and finally one
    :class:`ResultEvent` (of an :class:`AsyncRunResult`), and an async
    context manager that closes it.

    The request is sent on the first ``__anext__()``. Once the result is
    out, or an exception was raised (a cancellation included), the stream
    is closed and iteration ends. Closing it before (``await``
    :meth:`close`, leaving its ``async with``) closes the connection, which
    makes the server stop the run. Close it: unlike the sync stream's, an
    async stream cannot close itself when it is dropped.
    """

    def __init__(self, client: AsyncBoxerClient, req: core.Request, results: Any = None) -> None:
        self._client = client
        self._req = req
        #: What the result's ``download()`` asks: the client, or for an
        #: exec of a session, what says that execs keep no outputs.
        self._results = client if results is None else results
        self._resp: httpx.Response | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._reader: core.StreamReader[AsyncRunResult] | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._resp is not None else "not sent"
        return (f"<AsyncRunStream {self._req.method} "
                f"{core.url(self._client._opts, self._req)} {state}>")

    def __aiter__(self) -> AsyncRunStream:
        return self

    async def __anext__(self) -> AsyncStreamEvent:
        if self._closed:
            raise StopAsyncIteration
        try:
            event = await self._next()
        except BaseException:
            # An error event, a cut stream, a cancellation: nothing more will be read.
            await self.close()
            raise
        if event is None:
            await self.close()
            raise StopAsyncIteration
        return event

    async def _next(self) -> AsyncStreamEvent | None:
        if self._reader is None:
            self._reader = await self._open()
        reader = self._reader
        while True:
            event = reader.next()
            if event is not None or reader.done:
                if reader.done:
                    await self.close()
                return event
            assert self._chunks is not None  # a whole answer is ended at once
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                reader.end()
            except httpx.TransportError as exc:
                raise core.connection_error(self._client._opts, self._req, exc) from exc
            else:
                reader.feed(chunk)

    async def _open(self) -> core.StreamReader[AsyncRunResult]:
        client = self._client
        resp = self._resp = await client._send(self._req)
        reader = core.StreamReader(client._opts, self._req, resp.headers, AsyncRunResult,
                                   self._results)
        if core.is_event_stream(resp.status_code, resp.headers):
            self._chunks = resp.aiter_bytes()
            return reader
        try:
            content = await resp.aread()
        except httpx.TransportError as exc:
            raise core.connection_error(client._opts, self._req, exc) from exc
        reader.answer(resp.status_code, resp.headers, content)
        return reader

    async def close(self) -> None:
        """Stop reading and close the connection; if the run has not ended,
        the server stops it. Closing twice is harmless."""
        self._closed = True
        # Shielded: a cancelled task still closes its connection.
        with anyio.CancelScope(shield=True):
            # httpx's body iterator is an async generator: finished here,
            # not by the event loop after the stream is gone.
            chunks, self._chunks = self._chunks, None
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
            if self._resp is not None:
                await self._resp.aclose()

    #: :meth:`close`, by the name ``contextlib.aclosing`` expects.
    aclose = close

    async def __aenter__(self) -> AsyncRunStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


class AsyncSession:
    """A sandbox kept for many commands: what
    :meth:`AsyncBoxerClient.session` returns; :class:`Session`'s methods,
    awaited (but :meth:`exec_stream`, which returns an
    :class:`AsyncRunStream` for ``async with`` and ``async for``).

    ``POST /sessions`` is sent when the ``async with`` is entered, or by
    ``await`` :meth:`open`; :meth:`close` (or leaving the ``async with``,
    a cancellation included) deletes the session.
    """

    def __init__(self, client: AsyncBoxerClient, req: core.Request) -> None:
        self._client = client
        self._create = req
        self._id: str | None = None
        #: Each exec's default wall-clock limit, once the session is open.
        self._wall: float | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._id is not None else "not open"
        return f"<AsyncSession {self._id or self._create.json['image']!r} {state}>"

    @property
    def id(self) -> str:
        """The session's id (``"s_..."``), once it is open."""
        if self._id is None:
            raise RuntimeError("the session is not open yet: use `async with "
                               "client.session(...) as s:`, or await s.open()")
        return self._id

    async def open(self) -> AsyncSession:
        """Make the session (``POST /sessions``) if that is not done yet,
        and return it. Never sent twice: if its answer is lost, a session
        the server made anyway ends at its idle timeout."""
        if self._closed:
            raise RuntimeError(f"session {self._id or ''} is closed; make a new one with "
                               f"client.session(...)")
        if self._id is None:
            info = core.parse_session(await self._client._json(self._create))
            self._id, self._wall = info.id, core.session_wall(self._create, info)
        return self

    async def exec(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        stdin: str | bytes | None = None,
        timeout_secs: int | None = None,
        timeout: float | None = None,
    ) -> AsyncRunResult:
        """Run ``cmd`` in the session and wait for it
        (``POST /sessions/{id}/exec``); see :meth:`Session.exec`."""
        req = core.build_exec(self._client._opts, self.id, self._wall, cmd, env=env,
                              workdir=workdir, stdin=stdin, timeout_secs=timeout_secs,
                              timeout=timeout)
        data = await self._client._json(req)
        return core.parse_run_result(data, AsyncRunResult, core.ExecOutputs(self.id))

    def exec_stream(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        stdin: str | bytes | None = None,
        timeout_secs: int | None = None,
        timeout: float | None = None,
    ) -> AsyncRunStream:
        """Run ``cmd`` as :meth:`exec` does, and see its output as it comes.
        Not a coroutine: it returns an :class:`AsyncRunStream` (the events
        of :meth:`AsyncBoxerClient.stream`); see :meth:`Session.exec_stream`."""
        req = core.build_exec(self._client._opts, self.id, self._wall, cmd, env=env,
                              workdir=workdir, stdin=stdin, timeout_secs=timeout_secs,
                              timeout=timeout, stream=True)
        return AsyncRunStream(self._client, req, core.ExecOutputs(self.id))

    async def write_file(self, path: str, data: bytes | str | os.PathLike[str]) -> None:
        """Write a file into the session at ``path`` (absolute); see
        :meth:`Session.write_file`."""
        req = core.build_write_file(self.id, path, data)
        resp = await self._client._send(req)
        core.check(req, resp.status_code, resp.headers, resp.content)

    async def read_file(self, path: str) -> bytes:
        """The content of the file at ``path`` (absolute) in the session;
        :class:`BoxerFileNotFoundError` if there is none."""
        req = core.build_read_file(self.id, path)
        resp = await self._client._send(req)
        core.check(req, resp.status_code, resp.headers, resp.content)
        return resp.content

    async def info(self) -> SessionInfo:
        """The session's current state (``GET /sessions/{id}``)."""
        return core.parse_session(await self._client._json(core.build_get_session(self.id)))

    async def close(self) -> None:
        """Delete the session and everything in it (``DELETE
        /sessions/{id}``). Closing twice, closing a session never opened,
        or one the server already destroyed (expired) is harmless."""
        if self._closed:
            return
        if self._id is not None:
            req = core.build_delete_session(self._id)
            # Shielded: a cancelled task still deletes its session.
            with anyio.CancelScope(shield=True):
                resp = await self._client._send(req)
            try:
                core.check(req, resp.status_code, resp.headers, resp.content)
            except SessionNotFoundError:
                pass
        self._closed = True

    async def __aenter__(self) -> AsyncSession:
        return await self.open()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if exc is None:
            await self.close()
            return
        # The body's exception is the one to see (a cancellation included);
        # a session that cannot be deleted now ends at its idle timeout.
        try:
            await self.close()
        except BoxerError:
            pass
