"""Hostile inputs at the size limits: each is a 4xx JSON error, never a 5xx,
and the service answers normally afterwards."""

import pytest

from conftest import BUSYBOX


def error(api, body, headers=None):
    status, parsed, _, raw = api.request("POST", "/run", body, headers)
    assert 400 <= status < 500, raw[:300]
    assert set(parsed["error"]) == {"code", "message"}
    return status, parsed["error"]["code"], parsed["error"]["message"]


@pytest.fixture
def hostile(api):
    yield api
    r = api.run(image=BUSYBOX, cmd=["echo", "fine"])
    assert r["stdout"] == "fine\n"


def test_giant_argv(hostile):
    status, code, msg = error(hostile, {"image": BUSYBOX, "cmd": ["echo"] + ["x" * 1000] * 300})
    assert (status, code) == (400, "invalid_request") and "cmd" in msg


def test_many_arguments(hostile):
    status, code, msg = error(hostile, {"image": BUSYBOX, "cmd": ["true"] * 5000})
    assert (status, code) == (400, "invalid_request") and "cmd" in msg


def test_giant_env(hostile):
    env = {f"K{i}": "v" * 200 for i in range(2000)}
    status, code, msg = error(hostile, {"image": BUSYBOX, "cmd": ["true"], "env": env})
    assert (status, code) == (400, "invalid_request") and "env" in msg


def test_thousands_of_files(hostile):
    files = [{"id": "f_" + "0" * 32, "path": f"/w/{i}"} for i in range(3000)]
    status, code, msg = error(hostile, {"image": BUSYBOX, "cmd": ["true"], "files": files})
    assert (status, code) == (400, "invalid_request") and "files" in msg


def test_nul_bytes_everywhere(hostile):
    for body in ({"image": "busy\u0000box", "cmd": ["true"]},
                 {"image": BUSYBOX, "cmd": ["true"], "env": {"A\u0000": "1"}},
                 {"image": BUSYBOX, "cmd": ["true"], "env": {"A": "1\u0000"}},
                 {"image": BUSYBOX, "cmd": ["true"], "workdir": "/tmp\u0000x"}):
        status, code, _ = error(hostile, body)
        assert (status, code) in ((400, "invalid_request"), (404, "image_not_found")), body


@pytest.mark.parametrize("field, value", [
    ("image", None), ("image", []), ("image", {}), ("image", True),
    ("cmd", None), ("cmd", {}), ("cmd", [None]), ("cmd", [["a"]]),
    ("env", None), ("env", "A=1"), ("env", {"A": None}), ("env", {"A": ["x"]}),
    ("workdir", None), ("workdir", 1), ("stdin", None), ("stdin", []),
    ("limits", None), ("limits", []), ("limits", {"memory_mb": None}),
    ("limits", {"cpu_cores": "1"}), ("limits", {"nofile": True}),
    ("network", None), ("network", 1), ("files", None), ("files", {}), ("files", [1]),
])
def test_wrong_type_in_every_field(hostile, field, value):
    body = {"image": BUSYBOX, "cmd": ["true"], field: value}
    status, code, msg = error(hostile, body)
    assert (status, code) == (400, "invalid_request")
    assert field in msg


@pytest.mark.parametrize("ref", [
    "UPPER/case", "a b", "../../etc/passwd", "/abs", "x@sha256:zz", "x:" + "t" * 200,
    "a" * 300, "localhost:99999999/x", "\u00e9t\u00e9", "a//b", "x\ty",
])
def test_odd_references(hostile, ref):
    status, code, msg = error(hostile, {"image": ref, "cmd": ["true"]})
    assert (status, code) == (400, "invalid_request")
    assert "reference" in msg


@pytest.mark.parametrize("method, path, expect", [
    # An unknown method on a known path: 405 with Allow (README, openapi.yaml).
    ("PATCH", "/run", 405), ("PUT", "/files", 405), ("DELETE", "/runs/r_" + "0" * 32, 405),
    ("BREW", "/run", 405),
    # Unknown paths, however long: 404; a NUL in the path: 400.
    ("GET", "/run/../health/x", 404), ("GET", "/%00", 400), ("GET", "/" + "a" * 3000, 404),
])
def test_unknown_methods_and_paths(hostile, method, path, expect):
    status, parsed, resp, raw = hostile.request(method, path)
    assert status == expect, (status, raw[:200])
    assert "error" in parsed
    if expect == 405:
        assert parsed["error"]["code"] == "method_not_allowed"
        assert resp.getheader("Allow"), resp.getheaders()
