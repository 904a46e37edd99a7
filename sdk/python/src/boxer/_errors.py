"""The exceptions of the SDK.

Everything the SDK raises on purpose is a :class:`BoxerError`:

- :class:`APIError` and its subclasses: the server answered with an error
  (the API's ``{"error": {"code", "message"}}`` body). The class is chosen by
  the error ``code`` first and by the HTTP status when the code is unknown,
  so ``except NotFoundError`` also catches :class:`ImageNotFoundError`.
  With API keys configured on the server: :class:`UnauthorizedError` (no key
  or an unknown one), :class:`ForbiddenError` (the key may not do this) and
  :class:`TooManyRequestsError` (the key's runs are at its limit).
- :class:`BoxerConnectionError`: no answer at all (refused connection, reset,
  DNS failure), and its subclass :class:`BoxerTimeoutError`.
- :class:`CommandFailedError`: raised only by :meth:`RunResult.check`; a run
  that completed with a non-zero exit is otherwise data, not an error.
- :class:`InvalidResponseError`: the server answered something that is not
  the API (e.g. a proxy's HTML page with status 200).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from ._types import RunResult

__all__ = [
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
    "CommandFailedError",
    "InvalidResponseError",
]


class BoxerError(Exception):
    """Base class of every exception the SDK raises on purpose."""


class APIError(BoxerError):
    """The server answered with an error status.

    Attributes:
        status_code: the HTTP status (e.g. ``404``).
        code: the API's error code (e.g. ``"image_not_found"``); ``None`` when
            the body was not the API's error object (a proxy's page, say).
        message: the server's message, meant for people.
        method, path: the request that failed (path without the host).
        headers: the response headers (lower-case names).
        body: the parsed JSON body, or ``None``.
        retry_after: seconds from a ``Retry-After`` header, if any.
    """

    #: The HTTP status this class stands for; ``None`` for several.
    status: int | None = None
    #: The error codes this class stands for.
    codes: tuple[str, ...] = ()

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None,
        method: str = "",
        path: str = "",
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.method = method
        self.path = path
        self.headers: Mapping[str, str] = dict(headers or {})
        self.body = body
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.method else ""
        code = f" {self.code}" if self.code else ""
        return f"{where}{self.status_code}{code}: {self.message}"


class BadRequestError(APIError):
    """400 ``invalid_request``: malformed request, unknown or mistyped field,
    a limit out of range, a bad path. The message names the field."""

    status = 400
    codes = ("invalid_request",)


class UnauthorizedError(APIError):
    """401 ``unauthorized``: the server needs an API key and the request had
    none, or one it does not know. Pass ``api_key=`` to the client or set
    ``$BOXER_API_KEY``; ``GET /health`` is the one request that needs none."""

    status = 401
    codes = ("unauthorized",)


class ForbiddenError(APIError):
    """403 ``forbidden``: a feature the operator disabled (e.g. ``network="host"``),
    or something the request's API key may not do: a limit above the key's
    ``max_limits``, a network mode it may not use, pulling or deleting images
    without ``allow_images``. The message names what was refused."""

    status = 403
    codes = ("forbidden",)


class NotFoundError(APIError):
    """404: the base of the not-found errors below; also ``not_found`` (no such
    endpoint: the base URL probably points at something that is not Boxer)."""

    status = 404
    codes = ("not_found",)


class ImageNotFoundError(NotFoundError):
    """404 ``image_not_found``: the image reference names no image."""

    codes = ("image_not_found",)


class RunNotFoundError(NotFoundError):
    """404 ``run_not_found``: no such run id, or its record expired."""

    codes = ("run_not_found",)


class BoxerFileNotFoundError(NotFoundError):
    """404 ``file_not_found``: an uploaded file id that is unknown or expired, or
    an output path the run did not leave. (Prefixed so that it does not
    shadow Python's own ``FileNotFoundError``.)"""

    codes = ("file_not_found",)


class SessionNotFoundError(NotFoundError):
    """404 ``session_not_found``: no such session: it was closed, it expired
    (its ``ttl_secs``) or sat idle past its ``idle_timeout_secs``, or it
    belongs to another API key."""

    codes = ("session_not_found",)


class MethodNotAllowedError(APIError):
    """405 ``method_not_allowed``: the SDK and the server disagree on the API."""

    status = 405
    codes = ("method_not_allowed",)


class PayloadTooLargeError(APIError):
    """413 ``payload_too_large``: the request body or an upload is over the
    server's ``upload_limit_bytes``."""

    status = 413
    codes = ("payload_too_large",)


class UnsupportedMediaTypeError(APIError):
    """415 ``unsupported_media_type``: the SDK and the server disagree on the API."""

    status = 415
    codes = ("unsupported_media_type",)


class TooManyRequestsError(APIError):
    """429 ``too_many_requests``: the API key already has its
    ``max_concurrent_runs`` runs running or queued. The server did not start
    the run; the client already waited ``Retry-After`` and retried
    ``max_retries`` times before raising this."""

    status = 429
    codes = ("too_many_requests",)


class InternalServerError(APIError):
    """500 ``internal`` and any other 5xx that is not one of the classes below.
    The message carries a request id to look up in the server's log."""

    status = 500
    codes = ("internal",)


class RegistryError(APIError):
    """502 ``registry_error``: the image's registry was unreachable, sent a bad
    manifest, or a digest did not match."""

    status = 502
    codes = ("registry_error",)


class ServiceUnavailableError(APIError):
    """503: the base of :class:`BusyError` and :class:`RuntimeUnavailableError`."""

    status = 503


class BusyError(ServiceUnavailableError):
    """503 ``busy``: no capacity. The client already waited ``Retry-After`` and
    retried ``max_retries`` times before raising this."""

    codes = ("busy",)


class RuntimeUnavailableError(ServiceUnavailableError):
    """503 ``runtime_unavailable``: the server's runsc is missing or broken;
    retrying does not help until the operator fixes it."""

    codes = ("runtime_unavailable",)


class BoxerConnectionError(BoxerError):
    """No HTTP answer: the connection was refused, reset or never made.
    ``__cause__`` holds httpx's exception."""


class BoxerTimeoutError(BoxerConnectionError):
    """No answer in time. For :meth:`~boxer.BoxerClient.run` the time allowed
    is the run's wall-clock limit plus the client's ``run_timeout_margin``; the
    run itself may still be going on, so it is never re-sent."""


class InvalidResponseError(BoxerError):
    """The server answered something that is not the API's (e.g. HTML with
    status 200): the base URL probably does not point at Boxer."""


class CommandFailedError(BoxerError):
    """Raised by :meth:`RunResult.check` when the run did not succeed: non-zero
    exit, killed by a signal, timed out or OOM-killed, or (a run of a batch)
    not started at all. ``result`` holds the whole :class:`~boxer.RunResult`."""

    def __init__(self, result: RunResult) -> None:
        self.result = result
        if result.error is not None:
            what = f"could not be started ({result.error})"
        elif result.timed_out:
            what = "timed out"
        elif result.oom_killed:
            what = "was killed for running out of memory"
        elif result.signal is not None:
            what = f"was killed by signal {result.signal}"
        else:
            what = f"exited with status {result.exit_code}"
        tail = result.stderr.strip()[-500:]
        more = f"; stderr ends with:\n{tail}" if tail else ""
        super().__init__(f"run {result.id} {what}{more}")


# Classes chosen by the error code, then by the status.
_BY_CODE: dict[str, type[APIError]] = {
    code: cls
    for cls in (
        BadRequestError,
        UnauthorizedError,
        ForbiddenError,
        NotFoundError,
        ImageNotFoundError,
        RunNotFoundError,
        BoxerFileNotFoundError,
        SessionNotFoundError,
        MethodNotAllowedError,
        PayloadTooLargeError,
        UnsupportedMediaTypeError,
        TooManyRequestsError,
        InternalServerError,
        RegistryError,
        BusyError,
        RuntimeUnavailableError,
    )
    for code in cls.codes
}
_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    429: TooManyRequestsError,
    500: InternalServerError,
    # 502 is RegistryError only with its code: nginx's own 502 says "internal".
    503: ServiceUnavailableError,
}


def error_class(status_code: int, code: str | None) -> type[APIError]:
    """The exception class for an error response: by code, else by status."""
    if code is not None and code in _BY_CODE:
        return _BY_CODE[code]
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    if status_code >= 500:
        return InternalServerError
    return APIError
