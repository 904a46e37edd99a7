"""Python client for Boxer, a service that runs untrusted code in gVisor
sandboxes::

    from boxer import BoxerClient

    with BoxerClient("http://localhost:8080") as client:
        result = client.run(image="localhost:5000/boxer/python:3.11",
                            cmd=["python3", "-c", "print('hello world')"])
        print(result.stdout, result.exit_code, result.wall_ms)

:class:`AsyncBoxerClient` has the same methods as coroutines;
``client.batch(image, runs, parallelism=N)`` runs many commands in one
sandbox and returns their results in order; ``client.stream(...)`` runs
one as ``run()`` does and yields its output as it comes, then its result;
``client.session(image)`` keeps one sandbox for many commands, its files
staying from one ``exec()`` to the next.
The ``boxer`` command (:mod:`boxer.cli`) does the same from a shell.
:mod:`boxer.grading` grades untrusted programs on a verdict channel they
cannot write (not by their exit status).
"""

from ._async_client import AsyncBoxerClient, AsyncImages, AsyncRunStream, AsyncSession
from ._client import BoxerClient, Images, RunStream, Session
from ._errors import (
    APIError,
    BadRequestError,
    BoxerConnectionError,
    BoxerError,
    BoxerFileNotFoundError,
    BoxerTimeoutError,
    BusyError,
    CommandFailedError,
    ForbiddenError,
    ImageNotFoundError,
    InternalServerError,
    InvalidResponseError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    RegistryError,
    RunNotFoundError,
    RuntimeUnavailableError,
    ServiceUnavailableError,
    SessionNotFoundError,
    TooManyRequestsError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from ._types import (
    AsyncRunResult,
    AsyncStreamEvent,
    BatchResult,
    BatchRun,
    BatchRunError,
    FileSource,
    Health,
    ImageInfo,
    Limits,
    OutputFile,
    ResultEvent,
    RunResult,
    SessionInfo,
    StderrEvent,
    StdoutEvent,
    StreamEvent,
    UploadedFile,
)
from ._version import __version__
from . import grading

__all__ = [
    "BoxerClient",
    "AsyncBoxerClient",
    "Images",
    "AsyncImages",
    "FileSource",
    "Limits",
    "RunResult",
    "AsyncRunResult",
    "BatchRun",
    "BatchResult",
    "BatchRunError",
    "RunStream",
    "AsyncRunStream",
    "Session",
    "AsyncSession",
    "SessionInfo",
    "StdoutEvent",
    "StderrEvent",
    "ResultEvent",
    "StreamEvent",
    "AsyncStreamEvent",
    "OutputFile",
    "UploadedFile",
    "ImageInfo",
    "Health",
    "BoxerError",
    "APIError",
    "BadRequestError",
    "UnauthorizedError",
    "ForbiddenError",
    "NotFoundError",
    "ImageNotFoundError",
    "RunNotFoundError",
    "BoxerFileNotFoundError",
    "SessionNotFoundError",
    "MethodNotAllowedError",
    "PayloadTooLargeError",
    "UnsupportedMediaTypeError",
    "TooManyRequestsError",
    "InternalServerError",
    "RegistryError",
    "ServiceUnavailableError",
    "BusyError",
    "RuntimeUnavailableError",
    "BoxerConnectionError",
    "BoxerTimeoutError",
    "InvalidResponseError",
    "CommandFailedError",
    "grading",
    "__version__",
]
