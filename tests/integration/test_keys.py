"""API keys through the real stack (API.md, "API keys"): 401 without a key
or with an unknown one, 403 for what a key may not do, 429 over its own
max_concurrent_runs, runs, uploads and outputs that belong to the key that
made them, and the key itself never written anywhere.

Ports: BOXER_TEST_PORT+30 (this module's stack); nothing else listens."""

import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import BUILD, BUSYBOX, PYTHON, Stack, check_prerequisites, need
from test_files import multipart, upload

PORT = int(os.environ.get("BOXER_TEST_PORT", "18080")) + 30

# Made up for the test, as `openssl rand -hex 32` would; only their hashes
# go into the config.
ALICE = "alice-" + "5f1c0a9e" * 6
BOB = "bob-" + "93d2be47" * 6
CAROL = "carol-" + "0b8e77a1" * 6


def sha(key):
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def keyed():
    check_prerequisites()
    s = Stack(PORT, {
        "api_keys": [
            # Narrow: small limits, one run at a time, no networks, no pulls.
            {"name": "alice", "sha256": sha(ALICE), "max_concurrent_runs": 1,
             "max_limits": {"memory_mb": 128}},
            {"name": "bob", "sha256": sha(BOB), "allow_images": True,
             "allow_network": ["none", "sandbox"], "allow_sessions": True},
            {"name": "carol", "sha256": sha(CAROL), "allow_images": True, "allow_sessions": True},
        ],
    }).start()
    try:
        yield s
    finally:
        left = s.destroy()
        assert not left, f"left behind: {left}"


def as_key(key):
    return {"Authorization": f"Bearer {key}"}


def run(stack, key, expect=200, **req):
    status, body, resp, raw = stack.request("POST", "/run", req, as_key(key))
    assert status == expect, f"POST /run answered {status}: {raw[:300]!r}"
    return body, resp


def test_no_key_or_an_unknown_one_is_401(keyed):
    wrong = "x" * len(ALICE)
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": f"Basic {ALICE}"},
                    {"Authorization": f"Bearer {wrong}"},
                    # The hash is not the key.
                    {"Authorization": f"Bearer {sha(ALICE)}"}):
        for method, path, body in (("POST", "/run", {"image": BUSYBOX, "cmd": ["true"]}),
                                   ("GET", "/images", None),
                                   ("GET", "/runs/r_0123456789abcdef0123456789abcdef", None),
                                   ("DELETE", "/images/x", None)):
            status, parsed, resp, raw = keyed.request(method, path, body, headers)
            assert status == 401, (method, path, headers, raw[:200])
            assert parsed["error"]["code"] == "unauthorized"
            assert resp.getheader("WWW-Authenticate", "").startswith("Bearer")
            assert wrong not in raw.decode() and ALICE not in raw.decode()
    # Public: the health check, and what nginx serves itself.
    assert keyed.request("GET", "/health")[0] == 200
    assert keyed.request("GET", "/openapi.yaml")[0] == 200


def test_a_key_runs(keyed):
    body, _ = run(keyed, ALICE, image=BUSYBOX, cmd=["echo", "hi"])
    assert body["stdout"] == "hi\n" and body["exit_code"] == 0
    assert "owner" not in body


def test_runs_and_outputs_belong_to_their_key(keyed):
    body, _ = run(keyed, ALICE, image=BUSYBOX,
                  cmd=["sh", "-c", "echo secret-result > /output/r.txt"])
    rid = body["id"]
    mine = keyed.request("GET", f"/runs/{rid}", headers=as_key(ALICE))
    assert mine[0] == 200 and mine[1]["id"] == rid and "owner" not in mine[1]
    assert keyed.request("GET", f"/runs/{rid}/outputs", headers=as_key(ALICE))[0] == 200
    got = keyed.request("GET", f"/runs/{rid}/outputs/r.txt", headers=as_key(ALICE))
    assert got[0] == 200 and got[3] == b"secret-result\n"
    # Another key: as if the run did not exist, on every route to it.
    unknown = keyed.request("GET", "/runs/r_0123456789abcdef0123456789abcdef",
                            headers=as_key(BOB))
    assert unknown[0] == 404
    for path in (f"/runs/{rid}", f"/runs/{rid}/outputs", f"/runs/{rid}/outputs/r.txt"):
        status, parsed, _, raw = keyed.request("GET", path, headers=as_key(BOB))
        assert status == 404, (path, raw[:200])
        assert parsed["error"]["code"] == "run_not_found"
        assert b"secret-result" not in raw
        assert parsed["error"]["message"].replace(rid, "ID") == \
            unknown[1]["error"]["message"].replace("r_0123456789abcdef0123456789abcdef", "ID")


def test_uploads_belong_to_their_key(keyed):
    [f] = upload(_Keyed(keyed, ALICE), ("data.txt", b"alice's data\n"))
    req = {"image": BUSYBOX, "cmd": ["cat", "/work/data.txt"],
           "files": [{"id": f["id"], "path": "/work/data.txt"}]}
    body, _ = run(keyed, ALICE, **req)
    assert body["stdout"] == "alice's data\n"
    status, parsed, _, raw = keyed.request("POST", "/run", req, as_key(BOB))
    assert status == 404 and parsed["error"]["code"] == "file_not_found", raw[:200]
    assert f["id"] in parsed["error"]["message"]
    # The one-shot multipart run belongs to its key too.
    parts = [("request", None, json.dumps({"image": BUSYBOX, "cmd": ["cat", "/w/x"]}).encode()),
             ("/w/x", "x", b"one shot\n")]
    mp, ctype = multipart(parts)
    status, parsed, _, _ = keyed.request("POST", "/run", mp, {**as_key(BOB), "Content-Type": ctype})
    assert status == 200 and parsed["stdout"] == "one shot\n"


class _Keyed:
    """test_files.upload () with a key."""

    def __init__(self, stack, key):
        self.stack, self.key = stack, key

    def request(self, method, path, body=None, headers=None):
        return self.stack.request(method, path, body, {**(headers or {}), **as_key(self.key)})


def test_limits_and_networks_of_a_key(keyed):
    # Over the key's own maximum (but within the server's): 403.
    status, parsed, _, _ = keyed.request(
        "POST", "/run", {"image": BUSYBOX, "cmd": ["true"], "limits": {"memory_mb": 256}},
        as_key(ALICE))
    assert status == 403 and parsed["error"]["code"] == "forbidden"
    assert "limits.memory_mb of 256 is above the 128 this API key may use" in \
        parsed["error"]["message"]
    # The same for a key without that bound.
    run(keyed, BOB, image=BUSYBOX, cmd=["true"], limits={"memory_mb": 256})
    # The default (256) is lowered to the key's maximum: the program sees
    # its sandbox's memory as 128 MiB, where another key's sees 256.
    mem = ["python3", "-c",
           "import os; print(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**20)"]
    assert int(run(keyed, ALICE, image=PYTHON, cmd=mem)[0]["stdout"]) == 128
    assert int(run(keyed, BOB, image=PYTHON, cmd=mem)[0]["stdout"]) == 256
    status, parsed, _, _ = keyed.request(
        "POST", "/run", {"image": BUSYBOX, "cmd": ["true"], "network": "sandbox"}, as_key(ALICE))
    assert status == 403 and "may not use network 'sandbox'" in parsed["error"]["message"]


def test_images_are_a_permission(keyed):
    assert keyed.request("GET", "/images", headers=as_key(ALICE))[0] == 200
    for method, path, body in (("POST", "/images/pull", {"image": BUSYBOX}),
                               ("DELETE", "/images/localhost:1%2Fnothing:1", None)):
        status, parsed, _, raw = keyed.request(method, path, body, as_key(ALICE))
        assert status == 403, raw[:200]
        assert "may not" in parsed["error"]["message"] and "allow_images" in \
            parsed["error"]["message"]
    # A run of an image that is not stored would pull it: refused as such,
    # before any registry is asked (port 1 of loopback: nothing listens).
    status, parsed, _, _ = keyed.request(
        "POST", "/run", {"image": "localhost:1/nothing:1", "cmd": ["true"]}, as_key(ALICE))
    assert status == 403 and "may not pull images" in parsed["error"]["message"]
    # A key with allow_images reaches the store (and the pull policy).
    status, parsed, _, _ = keyed.request("DELETE", "/images/localhost:1%2Fnothing:1",
                                         headers=as_key(BOB))
    assert status == 404 and parsed["error"]["code"] == "image_not_found"
    status, parsed, _, _ = keyed.request(
        "POST", "/run", {"image": "localhost:1/nothing:1", "cmd": ["true"]}, as_key(BOB))
    assert status == 404 and parsed["error"]["code"] == "image_not_found"


def test_a_key_over_its_concurrent_runs_is_429(keyed):
    started = threading.Event()
    first = {}

    def long_run():
        started.set()
        first["r"] = keyed.request("POST", "/run", {"image": BUSYBOX, "cmd": ["sleep", "3"]},
                                   as_key(ALICE))

    t = threading.Thread(target=long_run)
    t.start()
    started.wait()
    # Until the executor has admitted the first, the second may get in
    # first: wait for a run process.
    deadline = time.monotonic() + 20
    while not keyed.run_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert keyed.run_processes(), "the first run never started"
    status, parsed, resp, raw = keyed.request("POST", "/run", {"image": BUSYBOX, "cmd": ["true"]},
                                              as_key(ALICE))
    assert status == 429, raw[:200]
    assert parsed["error"]["code"] == "too_many_requests"
    assert resp.getheader("Retry-After") == "1"
    assert "max_concurrent_runs" in parsed["error"]["message"]
    # Another key is not held back by it.
    body, _ = run(keyed, BOB, image=BUSYBOX, cmd=["echo", "bob"])
    assert body["stdout"] == "bob\n"
    t.join(60)
    assert first["r"][0] == 200 and first["r"][1]["exit_code"] == 0
    # Its slot is free again once the run is over.
    run(keyed, ALICE, image=BUSYBOX, cmd=["true"])


def test_the_key_is_never_written(keyed):
    # Runs of every kind above have happened by now; one more with every
    # key, then look through everything the stack wrote.
    for key in (ALICE, BOB, CAROL):
        run(keyed, key, image=BUSYBOX, cmd=["true"])
    keyed.request("POST", "/run", {"image": BUSYBOX}, {"Authorization": f"Bearer {ALICE}x"})
    needles = [k.encode() for k in (ALICE, BOB, CAROL)]
    for root, dirs, files in os.walk(keyed.tmp):
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for n in needles:
                assert n not in data, f"{path} holds an API key"


def test_hash_key_prints_what_the_config_holds():
    out = subprocess.run([str(BUILD / "boxer-fcgi"), "--hash-key"], input=ALICE + "\n",
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == sha(ALICE) + "\n"
    for bad in ("short\n", "two\nlines-0123456789\n", "with space 0123456789\n"):
        out = subprocess.run([str(BUILD / "boxer-fcgi"), "--hash-key"], input=bad,
                             capture_output=True, text=True)
        assert out.returncode == 2 and out.stdout == "", bad
        assert "openssl rand -hex 32" in out.stderr or "printable" in out.stderr


def test_start_up_says_whether_keys_guard_it(keyed, tmp_path):
    assert "3 API keys" in (keyed.prefix / "boxer.log").read_text()
    # Without keys, a listen address beyond loopback is warned about.  The
    # worker is started on a socket of its own; nothing listens on :9.
    os.chmod(tmp_path, 0o711)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"home": str(tmp_path / "home"), "listen_addr": ":9",
                                  "worker_user": "boxer"}))
    p = subprocess.Popen([str(BUILD / "boxer-fcgi"), "--config", str(config), "--socket",
                          str(tmp_path / "s"), "--workers", "0"],
                         stderr=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()
        while line and "listen_addr" not in line:
            line = p.stderr.readline()
    finally:
        p.kill()
        p.wait()
        p.stderr.close()
    assert "listen_addr is :9 and no api_keys are configured" in line


def test_tls_termination_passes_the_key(make_stack, tmp_path):
    """nginx rendered with --tls-cert/--tls-key serves HTTPS and hands the
    key to Boxer; plain HTTP on that port is refused by nginx."""
    need(subprocess.run(["openssl", "version"], capture_output=True).returncode == 0,
         "openssl is needed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out",
                    str(cert)], check=True, capture_output=True)
    s = make_stack({"api_keys": [{"name": "tls", "sha256": sha(CAROL)}]}, workers=2)
    s.start(pool_args=("--tls-cert", str(cert), "--tls-key", str(key)))
    ctx = ssl.create_default_context(cafile=str(cert))

    def over_tls(headers):
        conn = http.client.HTTPSConnection(s.host, s.port, context=ctx, timeout=60)
        conn.request("POST", "/run", json.dumps({"image": BUSYBOX, "cmd": ["echo", "tls"]}),
                     {"Content-Type": "application/json", **headers})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        conn.close()
        return resp.status, body

    status, body = over_tls(as_key(CAROL))
    assert status == 200 and body["stdout"] == "tls\n"
    status, body = over_tls({})
    assert status == 401 and body["error"]["code"] == "unauthorized"
    # The version nginx negotiated is one of the two it allows.
    with ctx.wrap_socket(socket.create_connection((s.host, s.port)),
                         server_hostname="127.0.0.1") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    # Plain HTTP to the TLS port gets nginx's 400, never Boxer.
    assert s.request("GET", "/health")[0] == 400


def test_sessions_belong_to_their_key(keyed):
    """Only a key with allow_sessions opens one; another key's session is
    as unknown as one that never was, for every operation on it."""
    status, body, _, _ = keyed.request("POST", "/sessions", {"image": BUSYBOX}, as_key(ALICE))
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body, _, _ = keyed.request("POST", "/sessions", {"image": BUSYBOX})
    assert status == 401
    status, sess, _, raw = keyed.request("POST", "/sessions", {"image": BUSYBOX}, as_key(BOB))
    assert status == 201, raw
    sid = sess["id"]
    try:
        for method, path, body in (("GET", f"/sessions/{sid}", None),
                                   ("POST", f"/sessions/{sid}/exec", {"cmd": ["true"]}),
                                   ("PUT", f"/sessions/{sid}/files/tmp/x", b"x"),
                                   ("GET", f"/sessions/{sid}/files/etc/hostname", None),
                                   ("DELETE", f"/sessions/{sid}", None)):
            status, answer, _, _ = keyed.request(method, path, body, as_key(CAROL))
            assert status == 404 and answer["error"]["code"] == "session_not_found", (method, path)
        status, r, _, _ = keyed.request("POST", f"/sessions/{sid}/exec", {"cmd": ["echo", "mine"]},
                                        as_key(BOB))
        assert status == 200 and r["stdout"] == "mine\n"
    finally:
        assert keyed.request("DELETE", f"/sessions/{sid}", None, as_key(BOB))[0] == 204
