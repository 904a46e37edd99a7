"""The shipped Apache site (contrib/apache/boxer.conf) in front of the real
pool: Debian's Apache httpd 2.4 with mod_proxy_fcgi, on a loopback port and
a config directory of its own, against the same pool socket nginx uses.
A subset of the suite through it: runs, uploads, a large body, errors."""

import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import BUSYBOX, PYTHON, ROOT, Api, need
from test_stream import stream

MODULES = Path("/usr/lib/apache2/modules")
PORT = int(os.environ.get("BOXER_TEST_PORT", "18080")) + 20
KEY = "apache-test-" + "6a0f" * 8


def rendered_site(port, sock):
    """contrib/apache/boxer.conf with this test's port and socket; each
    substitution must apply exactly once, so a changed site fails here."""
    site = (ROOT / "contrib/apache/boxer.conf").read_text()
    for old, new in (("Listen 8080\n", f"Listen 127.0.0.1:{port}\n"),
                     ("<VirtualHost *:8080>", f"<VirtualHost *:{port}>"),
                     ("unix:/run/boxer/boxer.sock|", f"unix:{sock}|")):
        assert site.count(old) == 1, old
        site = site.replace(old, new)
    return site


@pytest.fixture
def apache(make_stack):
    need(Path("/usr/sbin/apache2").exists() and (MODULES / "mod_proxy_fcgi.so").exists(),
         "Apache httpd with mod_proxy_fcgi is needed (Debian apache2-bin)")
    # With an API key: every request below passes Authorization through
    # Apache (CGIPassAuth), or it would be a 401.
    s = make_stack({"api_keys": [{"name": "apache", "allow_images": True,
                                  "sha256": hashlib.sha256(KEY.encode()).hexdigest()}]},
                   workers=2).start()
    # Apache's children run as www-data: let them reach the socket (0666)
    # through the stack's directories, and nothing more.
    for d in (s.tmp, s.prefix):
        os.chmod(d, 0o711)
    conf = s.tmp / "apache"
    (conf / "logs").mkdir(parents=True)
    modules = ["mpm_event", "authz_core", "mime", "alias", "headers", "allowmethods",
               "proxy", "proxy_fcgi"]
    (conf / "httpd.conf").write_text("\n".join([
        f"ServerRoot {conf}",
        f"Define APACHE_LOG_DIR {conf}/logs",
        *(f"LoadModule {m}_module {MODULES}/mod_{m}.so" for m in modules),
        "User www-data", "Group www-data",
        "ServerName boxer-apache-test",
        f"PidFile {conf}/httpd.pid",
        f"ErrorLog {conf}/logs/error.log",
        f"Mutex file:{conf}",
        "TypesConfig /etc/mime.types",
        rendered_site(PORT, s.prefix / "boxer.sock"),
    ]) + "\n")
    env = dict(os.environ, APACHE_RUN_DIR=str(conf), APACHE_LOCK_DIR=str(conf))
    t = subprocess.run(["/usr/sbin/apache2", "-f", str(conf / "httpd.conf"), "-t"],
                       env=env, capture_output=True, text=True)
    assert t.returncode == 0, t.stderr
    subprocess.run(["/usr/sbin/apache2", "-f", str(conf / "httpd.conf"), "-k", "start"],
                   check=True, env=env)
    api = KeyedApi("127.0.0.1", PORT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, body, _, _ = api.request("GET", "/health", timeout=10)
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (conf / "logs/error.log").read_text()[-2000:]
            time.sleep(0.2)
        api.stack = s
        yield api
    finally:
        subprocess.run(["/usr/sbin/apache2", "-f", str(conf / "httpd.conf"), "-k", "stop"],
                       env=env, check=False)
        pid = conf / "httpd.pid"
        deadline = time.monotonic() + 20
        while pid.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(conf, ignore_errors=True)


class KeyedApi(Api):
    def request(self, method, path, body=None, headers=None, timeout=120, key=True):
        headers = dict(headers or {})
        if key:
            headers.setdefault("Authorization", f"Bearer {KEY}")
        return super().request(method, path, body, headers, timeout)


def test_api_key_passes_through(apache):
    for key, want in ((False, 401), (True, 200)):
        status, body, resp, raw = apache.request("POST", "/run", {"image": BUSYBOX,
                                                                  "cmd": ["true"]}, key=key)
        assert status == want, raw[:300]
    status, body, resp, _ = apache.request("POST", "/run", {"image": BUSYBOX}, key=False)
    assert body["error"]["code"] == "unauthorized"
    assert resp.getheader("WWW-Authenticate", "").startswith("Bearer")
    assert resp.getheader("Content-Type").startswith("application/json")


def multipart(parts):
    boundary = uuid.uuid4().hex
    body = b""
    for name, filename, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_runs(apache):
    r = apache.run(image=BUSYBOX, cmd=["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r["stdout"], r["stderr"], r["exit_code"]) == ("out\n", "err\n", 3)
    status, rec, _, _ = apache.request("GET", f"/runs/{r['id']}")
    assert status == 200 and rec == r


def test_stream(apache):
    """Apache passes each event on as it comes (flushpackets)."""
    events, result = stream(apache, dict(image=PYTHON, cmd=[
        "python3", "-u", "-c",
        "import sys, time; sys.stdout.write('first\\n'); time.sleep(2); sys.stdout.write('second\\n')"]),
        headers={"Authorization": f"Bearer {KEY}"})
    assert [(n, d["data"]) for n, d, _ in events] == [("stdout", "first\n"), ("stdout", "second\n")]
    assert events[1][2] - events[0][2] >= 1.5
    assert result["stdout"] == "first\nsecond\n"


def test_uploads_and_outputs(apache):
    body, headers = multipart([("a", "a.txt", b"hello from apache\n")])
    status, up, _, raw = apache.request("POST", "/files", body, headers)
    assert status == 201, raw[:300]
    fid = up["files"][0]["id"]
    r = apache.run(image=BUSYBOX, cmd=["sh", "-c", "cat /w/a.txt; cp /w/a.txt /output/b.txt"],
                   files=[{"id": fid, "path": "/w/a.txt"}])
    assert r["stdout"] == "hello from apache\n", r
    status, _, _, data = apache.request("GET", f"/runs/{r['id']}/outputs/b.txt")
    assert status == 200 and data == b"hello from apache\n"
    # One-shot multipart: the request part and a file part.
    req = json.dumps({"image": BUSYBOX, "cmd": ["cat", "/w/x"]}).encode()
    body, headers = multipart([("request", None, req), ("/w/x", "x", b"one shot\n")])
    status, r, _, raw = apache.request("POST", "/run", body, headers)
    assert status == 200 and r["stdout"] == "one shot\n", raw[:300]


def test_large_body(apache):
    limit = apache.stack.config["upload_limit_bytes"]
    data = "x" * (limit - 4096)
    r = apache.run(image=BUSYBOX, cmd=["wc", "-c"], stdin=data)
    assert r["stdout"].strip() == str(len(data))
    status, body, _, raw = apache.request("POST", "/run", {"image": BUSYBOX, "cmd": ["true"],
                                                           "stdin": "x" * (2 * limit)})
    assert status == 413 and body["error"]["code"] == "payload_too_large", raw[:300]


def test_errors(apache):
    cases = [
        ("POST", "/run", b"{not json", {"Content-Type": "application/json"}, 400, "invalid_request"),
        ("POST", "/run", b"x", {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        ("GET", "/nope", None, None, 404, "not_found"),
        ("PATCH", "/run", None, None, 405, "method_not_allowed"),
        ("GET", "/runs/r_" + "0" * 32, None, None, 404, "run_not_found"),
        # An encoded slash reaches Boxer (AllowEncodedSlashes NoDecode).
        ("DELETE", "/images/localhost%3A5000%2Fboxer%2Fabsent%3A1", None, None, 404,
         "image_not_found"),
        ("POST", "/run", {"image": BUSYBOX, "cmd": ["true"], "limits": {"memory_mb": 1}}, None,
         400, "invalid_request"),
    ]
    for method, path, body, headers, status, code in cases:
        got, parsed, resp, raw = apache.request(method, path, body, headers)
        assert (got, parsed["error"]["code"] if parsed else None) == (status, code), \
            (method, path, got, raw[:300])
        assert resp.getheader("Content-Type").startswith("application/json")
        if status == 405:
            assert "POST" in resp.getheader("Allow")
