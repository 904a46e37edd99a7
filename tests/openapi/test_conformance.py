"""Real responses of the running stack, error bodies included, checked
against openapi.yaml for every endpoint. The last test requires that every
documented operation was seen answering with a success status."""

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
import uuid

import pytest
import yaml

from conftest import BASE_PORT, BUILD, BUSYBOX, NOCMD, ROOT, need
from contract import DOCUMENT, Contract
from registry_fixtures import REGISTRY_BIN, Registry

# Ports after BOXER_TEST_PORT: make_stack takes +1.., IsolatedStack +10...
REGISTRY_PORT_OFFSET = 15
UNUSED_PORT_OFFSET = 19     # nothing ever listens here

CONTRACT = Contract.load()
JSON = {"Content-Type": "application/json"}


def call(api, method, path, body=None, headers=None, expect=None):
    """Send one request, check the response against the document and
    return (status, body as the document describes it, headers)."""
    status, _, resp, raw = api.request(method, path, body, headers)
    hdrs = {k.lower(): v for k, v in resp.getheaders()}
    parsed = CONTRACT.check(method, path, status, hdrs, raw)
    if expect is not None:
        assert status == expect, f"{method} {path} answered {status}: {raw[:500]!r}"
    return status, parsed, hdrs


def code(parsed):
    return parsed["error"]["code"]


def multipart(parts):
    """parts: (name, filename or None, content type or None, bytes)."""
    boundary = uuid.uuid4().hex
    out = b""
    for name, filename, ctype, data in parts:
        out += f"--{boundary}\r\n".encode()
        disp = f'form-data; name="{name}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        out += f"Content-Disposition: {disp}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


# --- service -------------------------------------------------------------

def test_health(api):
    _, body, _ = call(api, "GET", "/health", expect=200)
    assert body["status"] == "ok"


def test_metrics(api):
    status, raw, hdrs = call(api, "GET", "/metrics", expect=200)
    assert hdrs["content-type"].startswith("text/plain; version=0.0.4")
    assert b"# TYPE boxer_runs_total counter" in raw


def test_openapi_document_is_served(api):
    _, raw, hdrs = call(api, "GET", "/openapi.yaml", expect=200)
    assert raw == DOCUMENT.read_bytes()
    assert yaml.safe_load(raw) == CONTRACT.doc
    # HEAD too, without a body.
    status, _, _, raw = api.request("HEAD", "/openapi.yaml")
    assert status == 200 and raw == b""


def test_swagger_is_served(api):
    _, _, hdrs = call(api, "GET", "/swagger", expect=301)
    assert hdrs["location"] == "/swagger/"
    _, page, hdrs = call(api, "GET", "/swagger/", expect=200)
    assert hdrs["content-type"].startswith("text/html")
    assert b"swagger-ui-bundle.js" in page and b"../openapi.yaml" in page
    for asset, ctype in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "text/css")):
        status, _, resp, raw = api.request("GET", "/swagger/" + asset)
        assert status == 200 and ctype in resp.getheader("Content-Type"), asset
        assert len(raw) > 10000, asset


def test_static_paths_answer_errors_as_json(api):
    # A missing file under /swagger/, and methods the static files do not take.
    status, body, _ = call(api, "GET", "/swagger/nope.js")
    assert (status, code(body)) == (404, "not_found")
    for method, path in (("POST", "/openapi.yaml"), ("DELETE", "/swagger"),
                         ("PUT", "/swagger/"), ("POST", "/swagger/swagger-ui.css")):
        status, body, hdrs = call(api, method, path, b"x", {"Content-Type": "text/plain"})
        assert (status, code(body)) == (405, "method_not_allowed"), (method, path)
        assert body["error"]["message"] == "this path takes only GET and HEAD"
        assert hdrs["allow"] == "GET, HEAD"


def test_overlong_uri(api):
    # nginx answers it itself, with the same error body.
    status, body, _ = call(api, "GET", "/runs/r_" + "0" * 9000)
    assert (status, code(body)) == (414, "invalid_request")


def test_unknown_path_and_method(api):
    status, body, _ = call(api, "GET", "/no/such/endpoint")
    assert (status, code(body)) == (404, "not_found")
    status, body, hdrs = call(api, "GET", "/run")
    assert (status, code(body)) == (405, "method_not_allowed")
    assert hdrs["allow"] == "POST"


# --- POST /run -----------------------------------------------------------

def test_run_results(api):
    _, r, _ = call(api, "POST", "/run", {"image": BUSYBOX, "cmd": ["echo", "hi"]}, expect=200)
    assert r["stdout"] == "hi\n" and r["exit_code"] == 0 and r["signal"] is None
    _, r, _ = call(api, "POST", "/run", {"image": BUSYBOX, "cmd": ["sh", "-c", "exit 3"]},
                   expect=200)
    assert r["exit_code"] == 3
    _, r, _ = call(api, "POST", "/run", {"image": BUSYBOX, "cmd": ["sh", "-c", "kill -9 $$"]},
                   expect=200)
    assert r["signal"] == 9 and r["exit_code"] == 137
    _, r, _ = call(api, "POST", "/run", {"image": BUSYBOX, "cmd": ["sleep", "30"],
                                         "limits": {"wall_clock_secs": 1}}, expect=200)
    assert r["timed_out"] is True
    limit = api.config["output_limit_bytes"]
    _, r, _ = call(api, "POST", "/run", {
        "image": BUSYBOX, "cmd": ["sh", "-c", f"head -c {limit + 100} /dev/zero | tr '\\0' x; "
                                              "printf '\\377' >&2"],
        "env": {"A": "1"}, "workdir": "/tmp", "stdin": "in", "network": "none",
        "limits": {"cpu_cores": 1, "memory_mb": 64, "pids_limit": 16, "nofile": 64}},
        expect=200)
    assert r["stdout_truncated"] is True and r["stderr"] == "\ufffd"


def test_run_streamed(api):
    """Accept: text/event-stream: every event as x-events documents it,
    errors before the run as ordinary JSON errors."""
    sse = {"Accept": "text/event-stream"}
    _, events, hdrs = call(api, "POST", "/run", {
        "image": BUSYBOX, "cmd": ["sh", "-c", "echo out; printf '\\377' >&2; exit 4"]},
        headers=sse, expect=200)
    assert hdrs["content-type"].startswith("text/event-stream")
    assert [n for n, _ in events] == ["stdout", "stderr", "result"]
    assert events[-1][1]["exit_code"] == 4 and events[1][1]["data"] == "\ufffd"
    status, body, _ = call(api, "POST", "/run", {"cmd": ["true"]}, headers=sse)
    assert status == 400 and code(body) == "invalid_request"


def test_batch_streamed(api):
    _, events, _ = call(api, "POST", "/batch", {
        "image": BUSYBOX, "runs": [{"cmd": ["sh", "-c", "echo a; echo b >&2"]},
                                   {"cmd": ["sh", "-c", "exit 2"]}]},
        headers={"Accept": "text/event-stream"}, expect=200)
    names = [n for n, _ in events]
    assert names[-1] == "result" and names.count("run") == 2
    assert {n for n in names[:-1]} == {"stdout", "stderr", "run"}


def test_sessions(api):
    _, sess, _ = call(api, "POST", "/sessions", {"image": BUSYBOX, "idle_timeout_secs": 60},
                      expect=201)
    sid = sess["id"]
    try:
        call(api, "PUT", f"/sessions/{sid}/files/w/in.txt", b"data",
             headers={"Content-Type": "application/octet-stream"}, expect=204)
        _, r, _ = call(api, "POST", f"/sessions/{sid}/exec",
                       {"cmd": ["sh", "-c", "cat /w/in.txt > /w/out.txt; echo ok"]}, expect=200)
        assert r["stdout"] == "ok\n" and r["id"] == f"{sid}/1"
        _, raw, hdrs = call(api, "GET", f"/sessions/{sid}/files/w/out.txt", expect=200)
        assert raw == b"data" and hdrs["content-type"] == "application/octet-stream"
        _, events, _ = call(api, "POST", f"/sessions/{sid}/exec", {"cmd": ["echo", "hi"]},
                            headers={"Accept": "text/event-stream"}, expect=200)
        assert [n for n, _ in events] == ["stdout", "result"]
        _, info, _ = call(api, "GET", f"/sessions/{sid}", expect=200)
        assert info["execs"] == 2
        status, body, _ = call(api, "GET", f"/sessions/{sid}/files/w/absent")
        assert status == 404 and code(body) == "file_not_found"
        status, body, _ = call(api, "PUT", f"/sessions/{sid}/files/proc/x", b"x")
        assert status == 400
        status, body, _ = call(api, "POST", f"/sessions/{sid}/exec", {"cmd": []})
        assert status == 400
    finally:
        call(api, "DELETE", f"/sessions/{sid}", expect=204)
    for method, path, body in (("GET", f"/sessions/{sid}", None),
                               ("DELETE", f"/sessions/{sid}", None),
                               ("POST", f"/sessions/{sid}/exec", {"cmd": ["true"]}),
                               ("GET", f"/sessions/{sid}/files/w/in.txt", None),
                               ("PUT", f"/sessions/{sid}/files/w/in.txt", b"x")):
        status, body, _ = call(api, method, path, body)
        assert status == 404 and code(body) == "session_not_found", (method, path)
    status, body, _ = call(api, "POST", "/sessions", {"image": BUSYBOX, "network": "bridge"})
    assert status == 400 and code(body) == "invalid_request"


def test_run_of_a_missing_program(api):
    # Found by the fuzz run: a name looked up in PATH fails inside runsc, not
    # in the sandbox; the answer is a shell's, as for an absolute path.
    for argv0 in ("/no/such/program", "no-such-program"):
        _, r, _ = call(api, "POST", "/run", {"image": BUSYBOX, "cmd": [argv0]}, expect=200)
        assert r["exit_code"] == 127 and argv0 in r["stderr"], r


@pytest.mark.parametrize("body, expect, wanted", [
    (b"{", 400, "invalid_request"),
    ({"cmd": ["true"]}, 400, "invalid_request"),
    ({"image": BUSYBOX, "cmd": ["true"], "bogus": 1}, 400, "invalid_request"),
    ({"image": BUSYBOX, "cmd": ["true"], "limits": {"memory_mb": 10 ** 9}}, 400,
     "invalid_request"),
    ({"image": NOCMD}, 400, "invalid_request"),
    ({"image": BUSYBOX, "cmd": ["true"], "network": "host"}, 403, "forbidden"),
    ({"image": "localhost:5000/nope/missing:1", "cmd": ["true"]}, 404, "image_not_found"),
    ({"image": BUSYBOX, "cmd": ["true"], "files": [{"id": "f_" + "0" * 32,
                                                    "path": "/x"}]}, 404, "file_not_found"),
])
def test_run_errors(api, body, expect, wanted):
    status, parsed, _ = call(api, "POST", "/run", body, JSON)
    assert (status, code(parsed)) == (expect, wanted), parsed


# --- POST /batch ---------------------------------------------------------

def test_batch_results(api):
    _, r, _ = call(api, "POST", "/batch", {
        "image": BUSYBOX, "parallelism": 2, "network": "none",
        "limits": {"memory_mb": 128, "wall_clock_secs": 5},
        "runs": [{"cmd": ["echo", "hi"]},
                 {"cmd": ["sh", "-c", "cat; printf '\\377' >&2; exit 3"], "stdin": "in",
                  "env": {"A": "1"}, "workdir": "/", "limits": {"wall_clock_secs": 2,
                                                                 "memory_mb": 64}},
                 {"cmd": ["sleep", "30"], "limits": {"wall_clock_secs": 1}},
                 {"cmd": ["true"], "files": [{"id": "f_" + "0" * 32, "path": "/work/x"}]}]},
        expect=200)
    hi, three, slow, missing = r["results"]
    assert (hi["stdout"], hi["index"], hi["signal"]) == ("hi\n", 0, None)
    assert (three["exit_code"], three["stdout"], three["stderr"]) == (3, "in", "\ufffd")
    assert slow["timed_out"] is True and slow["signal"] == 9
    assert missing["error"]["code"] == "file_not_found" and missing["exit_code"] == -1


@pytest.mark.parametrize("body, expect, wanted", [
    (b"{", 400, "invalid_request"),
    ({"image": BUSYBOX}, 400, "invalid_request"),
    ({"image": BUSYBOX, "runs": [{"cmd": ["true"]}], "network": "bridge"}, 400,
     "invalid_request"),
    ({"image": BUSYBOX, "runs": [{"cmd": ["true"]}], "network": "host"}, 403, "forbidden"),
    ({"image": BUSYBOX, "runs": [{"cmd": ["true"]}], "limits": {"memory_mb": 10 ** 9}}, 400,
     "invalid_request"),
    ({"image": "localhost:5000/nope/missing:1", "runs": [{"cmd": ["true"]}]}, 404,
     "image_not_found"),
])
def test_batch_errors(api, body, expect, wanted):
    status, parsed, _ = call(api, "POST", "/batch", body, JSON)
    assert (status, code(parsed)) == (expect, wanted), parsed


def test_run_too_large_and_wrong_type(api):
    big = {"image": BUSYBOX, "cmd": ["true"], "stdin": "x" * (api.config["upload_limit_bytes"] + 1)}
    status, parsed, _ = call(api, "POST", "/run", big)
    assert (status, code(parsed)) == (413, "payload_too_large")
    status, parsed, _ = call(api, "POST", "/run", b"{}", {"Content-Type": "text/plain"})
    assert (status, code(parsed)) == (415, "unsupported_media_type")


def test_run_multipart(api):
    req = json.dumps({"image": BUSYBOX, "cmd": ["cat", "/workspace/in.txt"]}).encode()
    body, headers = multipart([("request", None, "application/json", req),
                               ("/workspace/in.txt", "in.txt", "text/plain", b"from a part\n")])
    _, r, _ = call(api, "POST", "/run", body, headers, expect=200)
    assert r["stdout"] == "from a part\n"
    body, headers = multipart([("/workspace/in.txt", "in.txt", None, b"x")])
    status, parsed, _ = call(api, "POST", "/run", body, headers)
    assert (status, code(parsed)) == (400, "invalid_request")


# --- files and runs ------------------------------------------------------

def test_files_and_run_lookup(api):
    body, headers = multipart([("file", "main.sh", None, b"echo uploaded\n")])
    _, up, _ = call(api, "POST", "/files", body, headers, expect=201)
    f = up["files"][0]
    assert f["name"] == "main.sh" and f["size"] == 14
    _, r, _ = call(api, "POST", "/run", {
        "image": BUSYBOX, "cmd": ["sh", "-c", "sh /w/main.sh; mkdir -p /output/d; "
                                              "echo 42 > /output/d/result.txt"],
        "files": [{"id": f["id"], "path": "/w/main.sh"}]}, expect=200)
    assert r["stdout"] == "uploaded\n"
    assert r["outputs"] == [{"path": "d/result.txt", "size": 3}]

    _, again, _ = call(api, "GET", f"/runs/{r['id']}", expect=200)
    assert again == r
    _, outs, _ = call(api, "GET", f"/runs/{r['id']}/outputs", expect=200)
    assert outs["outputs"] == r["outputs"]
    for path in ("d/result.txt", "d%2Fresult.txt"):
        _, data, _ = call(api, "GET", f"/runs/{r['id']}/outputs/{path}", expect=200)
        assert data == b"42\n"

    status, parsed, _ = call(api, "GET", f"/runs/{r['id']}/outputs/d/nope.txt")
    assert (status, code(parsed)) == (404, "file_not_found")
    status, parsed, _ = call(api, "GET", f"/runs/{r['id']}/outputs/..%2F..%2Fetc%2Fpasswd")
    assert (status, code(parsed)) == (400, "invalid_request")
    missing = "r_" + "0" * 32
    for path in (f"/runs/{missing}", f"/runs/{missing}/outputs",
                 f"/runs/{missing}/outputs/x"):
        status, parsed, _ = call(api, "GET", path)
        assert (status, code(parsed)) == (404, "run_not_found"), path


def test_files_errors(api):
    status, parsed, _ = call(api, "POST", "/files", b"{}", JSON)
    assert (status, code(parsed)) == (415, "unsupported_media_type")
    body, headers = multipart([("file", "big.bin", None,
                                b"x" * (api.config["upload_limit_bytes"] + 1))])
    status, parsed, _ = call(api, "POST", "/files", body, headers)
    assert (status, code(parsed)) == (413, "payload_too_large")
    status, parsed, _ = call(api, "POST", "/files", b"--nope\r\n",
                             {"Content-Type": "multipart/form-data; boundary=x"})
    assert (status, code(parsed)) == (400, "invalid_request")


# --- images --------------------------------------------------------------

def test_images(api):
    _, listing, _ = call(api, "GET", "/images", expect=200)
    assert BUSYBOX in {i["reference"] for i in listing["images"]}

    # A reference of its own to delete, so the other tests keep their images.
    layouts = subprocess.run([str(ROOT / "contrib/images/build-images.sh"), "busybox"],
                             check=True, capture_output=True, text=True).stdout.split()
    ref = f"localhost:5000/boxer/openapi-delete:{uuid.uuid4().hex[:8]}"
    subprocess.run([str(BUILD / "boxer-image"), "--config", str(api.config_path), "load",
                    layouts[1], ref], check=True, capture_output=True)
    encoded = ref.replace("/", "%2F")
    call(api, "DELETE", f"/images/{encoded}", expect=204)
    status, parsed, _ = call(api, "DELETE", f"/images/{encoded}")
    assert (status, code(parsed)) == (404, "image_not_found")
    status, parsed, _ = call(api, "DELETE", "/images/Not%20A%20Reference!")
    assert (status, code(parsed)) == (400, "invalid_request")


def test_image_pull(make_stack):
    """From a real registry on loopback (Debian's docker-registry, as
    tests/integration/test_registry.py runs it)."""
    need(os.path.exists(REGISTRY_BIN), "docker-registry is needed (contrib/install-deps.sh)")
    need(shutil.which("skopeo"), "skopeo is needed (contrib/install-deps.sh)")
    layout = subprocess.run([str(ROOT / "contrib/images/build-images.sh"), "busybox"],
                            check=True, capture_output=True, text=True).stdout.split()[1]
    registry = Registry(BASE_PORT + REGISTRY_PORT_OFFSET)
    try:
        registry.push_layout(layout, "boxer/busybox:latest")
        # The unused port is configured too: a loopback registry is
        # contacted only if it is.
        unused = f"127.0.0.1:{BASE_PORT + UNUSED_PORT_OFFSET}"
        s = make_stack({"pull_policy": "if-not-present", "registry_timeout_secs": 5,
                        "registries": {registry.host: {"insecure": True},
                                       unused: {"insecure": True}}},
                       images=False, workers=1).start()
        ref = f"{registry.host}/boxer/busybox:latest"
        _, image, _ = call(s, "POST", "/images/pull", {"image": ref}, expect=200)
        assert image["reference"] == ref
        _, listing, _ = call(s, "GET", "/images", expect=200)
        assert listing["images"] == [image]
        status, parsed, _ = call(s, "POST", "/images/pull",
                                 {"image": f"{registry.host}/boxer/nope:1"})
        assert (status, code(parsed)) == (404, "image_not_found")
        call(s, "DELETE", "/images/" + ref.replace("/", "%2F"), expect=204)

        for body, headers, expect, wanted in (
                ({"image": "Not A Reference!"}, None, 400, "invalid_request"),
                ({"image": ref, "bogus": 1}, None, 400, "invalid_request"),
                (b"{}", {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
                # Nothing ever listens on this loopback port.
                ({"image": f"{unused}/nobody/here:1"}, None, 502, "registry_error"),
                # A loopback address that is not a configured registry.
                ({"image": f"127.0.0.2:{BASE_PORT + UNUSED_PORT_OFFSET}/nobody/here:1"}, None,
                 403, "forbidden")):
            status, parsed, _ = call(s, "POST", "/images/pull", body, headers)
            assert (status, code(parsed)) == (expect, wanted), (body, parsed)
    finally:
        registry.stop()


# --- API keys --------------------------------------------------------------

def test_api_key_errors(make_stack):
    """401, 403 and 429 of a stack with api_keys, as the document has them."""
    key = "conformance-" + "4c1d" * 8
    s = make_stack({"api_keys": [{"name": "k", "sha256": hashlib.sha256(key.encode()).hexdigest(),
                                  "max_concurrent_runs": 1, "max_limits": {"memory_mb": 64}}]},
                   workers=2).start()
    auth = {"Authorization": f"Bearer {key}"}
    for method, path, body in (("POST", "/run", {"image": BUSYBOX, "cmd": ["true"]}),
                               ("POST", "/files", None), ("GET", "/runs/r_x", None),
                               ("GET", "/runs/r_x/outputs", None),
                               ("GET", "/runs/r_x/outputs/a", None), ("GET", "/images", None),
                               ("POST", "/images/pull", {"image": BUSYBOX}),
                               ("DELETE", "/images/x", None)):
        status, parsed, hdrs = call(s, method, path, body, expect=401)
        assert code(parsed) == "unauthorized" and hdrs["www-authenticate"].startswith("Bearer")
    call(s, "GET", "/health", expect=200)
    status, parsed, _ = call(s, "POST", "/run", {"image": BUSYBOX, "cmd": ["true"],
                                                 "limits": {"memory_mb": 128}}, auth, expect=403)
    status, parsed, _ = call(s, "POST", "/images/pull", {"image": BUSYBOX}, auth, expect=403)
    status, parsed, _ = call(s, "DELETE", "/images/x", None, auth, expect=403)
    first = threading.Thread(target=call, args=(s, "POST", "/run",
                                                {"image": BUSYBOX, "cmd": ["sleep", "3"]}, auth))
    first.start()
    try:
        for _ in range(400):
            if s.run_processes():
                break
            time.sleep(0.05)
        status, parsed, hdrs = call(s, "POST", "/run", {"image": BUSYBOX, "cmd": ["true"]}, auth,
                                    expect=429)
        assert code(parsed) == "too_many_requests" and hdrs["retry-after"] == "1"
    finally:
        first.join(60)


# --- last: coverage of the document --------------------------------------

def test_every_operation_was_seen_succeeding(request):
    """Each documented operation answered at least once with a 2xx or 3xx
    above."""
    ran = {item.originalname for item in request.session.items
           if item.module is request.module}
    defined = {name for name in vars(request.module) if name.startswith("test_")}
    need(ran == defined, "only meaningful when the whole module runs")
    succeeded = {(m, t) for m, t, s in CONTRACT.seen if s < 400}
    missing = CONTRACT.operations() - succeeded
    assert not missing, f"never seen succeeding: {sorted(missing)}"
