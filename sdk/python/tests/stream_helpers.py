"""What the streaming tests without a Boxer server share: the wire format
written by hand, response bodies that record how they were read and
closed, and a server on loopback that streams a script."""

import http.server
import json
import socket
import threading
import time

import httpx

RESULT = {
    "id": "r_1", "image": "img", "image_digest": "sha256:" + "0" * 64, "exit_code": 0,
    "signal": None, "timed_out": False, "oom_killed": False, "stdout": "a\nb\n",
    "stderr": "oops\n", "stdout_truncated": False, "stderr_truncated": False, "wall_ms": 5,
    "outputs": [], "outputs_truncated": False, "started_at": "2026-11-22T10:00:00Z",
    "finished_at": "2026-11-22T10:00:01Z",
}
SSE = {"content-type": "text/event-stream; charset=utf-8"}


def event(name, data):
    """One event as the server writes it (data: a JSON value, or raw text)."""
    text = data if isinstance(data, str) else json.dumps(data)
    lines = "".join(f"data: {line}\n" for line in text.split("\n"))
    return f"event: {name}\n{lines}\n".encode()


def out(text):
    return event("stdout", {"data": text})


def err(text):
    return event("stderr", {"data": text})


def result(**changes):
    return event("result", {**RESULT, **changes})


def error_event(code, message="it broke"):
    return event("error", {"error": {"code": code, "message": message}})


def bytewise(*parts):
    """The parts' bytes, one chunk per byte: every cut a proxy could make."""
    data = b"".join(parts)
    return [data[i:i + 1] for i in range(len(data))]


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body sent as the given chunks (an exception in them is
    raised when its turn comes); records how many chunks were taken and
    whether it was closed."""

    def __init__(self, chunks, block=False):
        self.chunks = list(chunks)
        self.taken = 0
        self.closed = False
        #: After its chunks, wait (for a close or a cancellation) instead of ending.
        self.block = block

    def _next(self):
        if self.closed:
            raise RuntimeError("read after close")
        item = self.chunks[self.taken]
        self.taken += 1
        if isinstance(item, BaseException):
            raise item
        return item

    def __iter__(self):
        while self.taken < len(self.chunks):
            yield self._next()
        while self.block and not self.closed:
            time.sleep(0.01)

    async def __aiter__(self):
        import asyncio
        while self.taken < len(self.chunks):
            yield self._next()
        while self.block and not self.closed:
            await asyncio.sleep(0.01)

    def close(self):
        self.closed = True

    async def aclose(self):
        self.closed = True


def stream_response(*parts, chunks=None, headers=SSE, status=200, block=False):
    """A 200 event stream of parts (joined), or of the given chunks."""
    body = Body(chunks if chunks is not None else [b"".join(parts)], block=block)
    return httpx.Response(status, headers=headers, stream=body), body


class Server:
    """Answers from a script, one entry per request (the last one repeats);
    records each request as (method, path, headers, content)."""

    def __init__(self, *script):
        self.script = list(script)
        self.seen = []

    def __call__(self, request):
        self.seen.append((request.method, request.url.path, request.headers, request.read()))
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, tuple):  # (response, body) from stream_response
            return step[0]
        return step


class LoopbackServer:
    """A server on 127.0.0.1 (an ephemeral port) whose every POST /run is
    answered by a script of bytes and pauses, sent as they come over a real
    socket; it records when each connection's client went away."""

    def __init__(self, script):
        #: bytes to send, or seconds (a float) to wait.
        self.script = script
        self.requests = []
        self.gone = threading.Event()
        self.finished = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection does

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                owner.requests.append((self.path, dict(self.headers), self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.end_headers()
                self.wfile.flush()
                try:
                    for step in owner.script:
                        if isinstance(step, bytes):
                            self.wfile.write(step)
                            self.wfile.flush()
                            continue
                        # A pause, with keep-alives: a write to a client that
                        # went away fails, as the real server notices it.
                        end = time.monotonic() + step
                        while time.monotonic() < end:
                            time.sleep(0.05)
                            self.wfile.write(b": keep-alive\n\n")
                            self.wfile.flush()
                    owner.finished.set()
                except (BrokenPipeError, ConnectionResetError):
                    owner.gone.set()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self):
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port():
    """A loopback port nothing listens on (for a refused connection)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
