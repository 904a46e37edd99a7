"""What the session tests with and without a server share: the sync
client seen through the async API, so that one test body covers both; and
the sessions API in memory, for httpx.MockTransport."""

import dataclasses
import json
import re
from urllib.parse import unquote

import httpx

from stream_helpers import RESULT, err, out, result, stream_response

IMAGE = "localhost:5000/boxer/python:3.11"
SERVER_LIMITS = {"memory_mb": 256, "cpu_cores": 1.0, "pids_limit": 64, "nofile": 256,
                 "wall_clock_secs": 30}


class Sync:
    """A sync client, session or stream seen through the async API: its
    methods awaited, `with` as `async with`, `for` as `async for`.
    `session()` and `exec_stream()` are not awaited, as with the async
    client."""

    NOT_AWAITED = ("session", "exec_stream")

    def __init__(self, target):
        self._t = target

    def __getattr__(self, name):
        attr = getattr(self._t, name)
        if not callable(attr):
            return attr
        if name in self.NOT_AWAITED:
            return lambda *a, **kw: Sync(attr(*a, **kw))

        async def call(*a, **kw):
            value = attr(*a, **kw)
            return self if value is self._t else value
        return call

    def __repr__(self):
        return repr(self._t)

    async def __aenter__(self):
        self._t.__enter__()
        return self

    async def __aexit__(self, *exc):
        return self._t.__exit__(*exc)

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return next(self._t)
        except StopIteration:
            raise StopAsyncIteration from None


def error(status, code, headers=None):
    return httpx.Response(status, headers=headers or {},
                          json={"error": {"code": code, "message": f"{code} (request id q_1)"}})


@dataclasses.dataclass
class Seen:
    method: str
    #: The path as sent, percent-encoding and all.
    path: str
    headers: httpx.Headers
    content: bytes
    #: The read timeout the client gave the request.
    read_timeout: float

    @property
    def json(self):
        return json.loads(self.content)


class Fake:
    """The sessions API in memory: sessions, their files, and execs that
    answer with their argv. `script` holds answers (or exceptions) for the
    next requests, before the API's own; None lets the API answer."""

    def __init__(self, *script):
        self.script = list(script)
        self.seen = []
        self.sessions = {}
        self.count = 0

    def requests(self, method=None):
        return [(s.method, s.path) for s in self.seen if method in (None, s.method)]

    def __call__(self, request):
        content = request.read()
        self.seen.append(Seen(request.method, request.url.raw_path.decode("ascii"),
                              request.headers, content, request.extensions["timeout"]["read"]))
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        if isinstance(step, tuple):  # (response, body) from stream_response
            return step[0]
        if step is not None:
            return step
        return self.answer(request, content)

    def run(self, session, body):
        """What an exec answers: here its argv, as echo would."""
        return {"stdout": " ".join(body["cmd"]) + "\n"}

    def session_json(self, sid):
        s = self.sessions[sid]
        return {"id": sid, "image": s["image"], "image_digest": "sha256:" + "d" * 64,
                "network": "none", "limits": s["limits"],
                "idle_timeout_secs": s.get("idle_timeout_secs", 300),
                "ttl_secs": s.get("ttl_secs", 3600), "created_at": "2026-12-03T08:00:00Z",
                "expires_at": "2026-12-03T09:00:00Z", "last_used_at": "2026-12-03T08:00:05Z",
                "execs": s["execs"]}

    def answer(self, request, content):
        path = request.url.raw_path.decode("ascii")
        if (request.method, path) == ("POST", "/sessions"):
            body = json.loads(content)
            self.count += 1
            sid = f"s_{self.count:032x}"
            self.sessions[sid] = {**body, "limits": {**SERVER_LIMITS, **body.get("limits", {})},
                                  "execs": 0, "files": {}}
            return httpx.Response(201, json=self.session_json(sid))
        m = re.fullmatch(r"/sessions/([^/]+)(/exec|/files/.+)?", path)
        if not m or unquote(m.group(1)) not in self.sessions:
            return error(404, "session_not_found")
        sid, rest = unquote(m.group(1)), m.group(2) or ""
        s = self.sessions[sid]
        if rest == "":
            if request.method == "DELETE":
                del self.sessions[sid]
                return httpx.Response(204)
            return httpx.Response(200, json=self.session_json(sid))
        if rest == "/exec":
            s["execs"] += 1
            ran = self.run(s, json.loads(content))
            res = {**RESULT, "id": f"{sid}/{s['execs']}", "image": s["image"], "stderr": "",
                   **ran}
            if request.headers.get("accept") == "text/event-stream":
                # The output in two pieces, as a server may read it.
                parts = [out(piece) for piece in (res["stdout"][:5], res["stdout"][5:]) if piece]
                if res["stderr"]:
                    parts.append(err(res["stderr"]))
                return stream_response(*parts, result(**res))[0]
            return httpx.Response(200, json=res)
        file = "/" + "/".join(unquote(part) for part in rest[len("/files/"):].split("/"))
        if request.method == "PUT":
            s["files"][file] = content
            return httpx.Response(204)
        if file not in s["files"]:
            return error(404, "file_not_found")
        return httpx.Response(200, headers={"content-type": "application/octet-stream"},
                              content=s["files"][file])
