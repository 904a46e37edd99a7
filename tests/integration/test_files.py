"""Files in and out of runs through nginx -> FastCGI -> runsc: POST /files,
uploads bind-mounted read-only, the multipart one-shot POST /run, /output
captured into run records, GET /runs/{id} and its outputs, limits, hostile
names and trees, expiry, and concurrency."""

import hashlib
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import (BUSYBOX, PYTHON, WARM, Stack, check_prerequisites, mounts_under,
                      stray_mounts)

BINARY = bytes(range(256)) * 3 + b"\x00\r\n--boxer\r\n\xff"


def multipart(parts, boundary=None):
    """A multipart/form-data body from (name, filename or None, bytes) parts,
    and its Content-Type."""
    b = boundary or "boxer-" + secrets.token_hex(12)
    out = bytearray()
    for name, filename, data in parts:
        disp = f'form-data; name="{name}"'
        if filename is not None:
            quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
            disp += f'; filename="{quoted}"'
        out += f"--{b}\r\nContent-Disposition: {disp}\r\n".encode()
        out += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    out += f"--{b}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={b}"


def upload(api, *files, expect=201):
    """POST /files with (filename, bytes) pairs; the answer's file list."""
    body, ctype = multipart([("file", name, data) for name, data in files])
    status, parsed, _, raw = api.request("POST", "/files", body, {"Content-Type": ctype})
    assert status == expect, f"POST /files answered {status}: {raw[:300]!r}"
    return parsed["files"] if status == 201 else parsed


def one_shot(api, request, files, expect=200):
    """Multipart POST /run: the request JSON plus {container path: bytes}."""
    parts = [("request", None, json.dumps(request).encode())]
    parts += [(path, os.path.basename(path), data) for path, data in files.items()]
    body, ctype = multipart(parts)
    status, parsed, _, raw = api.request("POST", "/run", body, {"Content-Type": ctype})
    assert status == expect, f"POST /run answered {status}: {raw[:300]!r}"
    return parsed


def sh(script, **kw):
    return dict(image=BUSYBOX, cmd=["/bin/sh", "-c", script], **kw)


def error(status_parsed):
    status, parsed = status_parsed
    return status, parsed["error"]["code"], parsed["error"]["message"]


def get(api, path):
    status, parsed, resp, raw = api.request("GET", path)
    return status, parsed, resp, raw


def store_entries(home):
    """What the upload store and the records hold, by kind (not the ledger
    of their usage, executor/expiry.c)."""
    found = {"files": [], "records": [], "other": []}
    for kind, d in (("files", Path(home) / "files"), ("records", Path(home) / "runs/records")):
        if d.exists():
            for p in d.iterdir():
                if p.name == ".usage":
                    continue
                if p.name.startswith((".new-", ".del-")) or ".tmp-" in p.name:
                    found["other"].append(str(p))
                else:
                    found[kind].append(p.name)
    return found


def assert_store_clean(stack):
    """No half-built or half-deleted uploads or records, no stray files, no
    mounts left under the home. A worker's sweep may be deleting an
    expired entry right now (renamed to .del-..., then removed): left
    behind is what is still there a few seconds later."""
    home = stack.home
    deadline = time.monotonic() + 5
    while (entries := store_entries(home))["other"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert entries["other"] == []
    for name in entries["files"]:
        assert name.startswith("f_") and len(name) == 34, name
        assert sorted(p.name for p in (Path(home) / "files" / name).iterdir()) == ["data",
                                                                                    "meta.json"]
    for name in entries["records"]:
        assert name.startswith("r_") and len(name) == 34, name
    # runsc keeps one namespace file mounted while the service runs.
    assert stray_mounts(stack) == []


# Uploads and mounts


def test_upload_then_run(api):
    data = b"print('hello from an upload')\n"
    (f,) = upload(api, ("main.py", data))
    assert f["id"].startswith("f_") and len(f["id"]) == 34
    assert f["name"] == "main.py"
    assert f["size"] == len(data)
    assert f["sha256"] == hashlib.sha256(data).hexdigest()

    r = api.run(image=PYTHON, cmd=["python3", "/workspace/main.py"],
                files=[{"id": f["id"], "path": "/workspace/main.py"}])
    assert (r["exit_code"], r["stdout"]) == (0, "hello from an upload\n")
    assert_store_clean(api)


def test_upload_several_binary_nested(api):
    a, b = upload(api, ("a.bin", BINARY), ("b.txt", b"bee\n"))
    assert a["size"] == len(BINARY) and a["sha256"] == hashlib.sha256(BINARY).hexdigest()
    # Parent directories that the image lacks appear; one upload may be
    # mounted twice; the run reads the exact bytes.
    r = api.run(**sh("sha256sum /deep/er/still/a.bin /copy/a.bin; cat /etc/boxer/b.txt; "
                     "ls -ld /deep/er"),
                files=[{"id": a["id"], "path": "/deep/er/still/a.bin"},
                       {"id": a["id"], "path": "/copy/a.bin"},
                       {"id": b["id"], "path": "/etc/boxer/b.txt"}])
    assert r["exit_code"] == 0, r["stderr"]
    lines = r["stdout"].splitlines()
    digest = hashlib.sha256(BINARY).hexdigest()
    assert lines[0].split()[0] == digest and lines[1].split()[0] == digest
    assert lines[2] == "bee"
    assert lines[3].startswith("d")


def test_upload_under_tmp_and_over_image_file(api):
    (f,) = upload(api, ("x", b"replaced\n"))
    r = api.run(**sh("cat /tmp/in/x /etc/hostname"),
                files=[{"id": f["id"], "path": "/tmp/in/x"},
                       {"id": f["id"], "path": "/etc/hostname"}])
    assert (r["exit_code"], r["stdout"]) == (0, "replaced\nreplaced\n"), r["stderr"]


def test_read_only(api):
    data = b"original\n"
    (f,) = upload(api, ("ro.txt", data))
    files = [{"id": f["id"], "path": "/w/ro.txt"}]
    r = api.run(**sh("echo changed > /w/ro.txt; echo w=$?; echo more >> /w/ro.txt; echo a=$?; "
                     "rm -f /w/ro.txt; echo rm=$?; mv /w/ro.txt /w/x; echo mv=$?; "
                     "chmod 777 /w/ro.txt; echo chmod=$?; touch /w/ro.txt; echo touch=$?; "
                     "cat /w/ro.txt"), files=files)
    out = r["stdout"]
    for op in ("w", "a", "rm", "mv", "chmod"):
        assert f"{op}=0" not in out, out
    assert out.endswith("original\n")
    assert "Read-only file system" in r["stderr"] or "Permission denied" in r["stderr"]
    # The upload itself is untouched for the next run and on the host.
    host = Path(api.home) / "files" / f["id"] / "data"
    assert host.read_bytes() == data
    r = api.run(**sh("cat /w/ro.txt"), files=files)
    assert r["stdout"] == "original\n"


def test_one_shot_multipart(api):
    before = store_entries(api.home)["files"]
    r = one_shot(api, {"image": PYTHON, "cmd": ["python3", "/app/main.py"],
                       "stdin": "7\n"},
                 {"/app/main.py": b"import sys\nprint(int(sys.stdin.read()) * 6)\n"
                                  b"print(open('/app/data/blob.bin', 'rb').read().hex())\n",
                  "/app/data/blob.bin": BINARY})
    assert r["exit_code"] == 0, r["stderr"]
    assert r["stdout"].splitlines() == ["42", BINARY.hex()]
    # The one-shot uploads served this run only.
    assert store_entries(api.home)["files"] == before
    # The record is there like any other run's.
    status, rec, _, _ = get(api, f"/runs/{r['id']}")
    assert status == 200 and rec == r


def test_one_shot_with_uploaded_files_too(api):
    (f,) = upload(api, ("lib.py", b"X = 5\n"))
    r = one_shot(api, {"image": PYTHON, "cmd": ["python3", "/app/main.py"],
                       "files": [{"id": f["id"], "path": "/app/lib.py"}]},
                 {"/app/main.py": b"import sys; sys.path.insert(0, '/app'); import lib; "
                                  b"print(lib.X * 2)\n"})
    assert (r["exit_code"], r["stdout"]) == (0, "10\n"), r["stderr"]


def test_with_requests_library(api):
    # A client library's own multipart encoder, not ours.
    requests = pytest.importorskip("requests")
    base = f"http://{api.host}:{api.port}"
    resp = requests.post(f"{base}/files", files={"file": ("r.txt", b"via requests\n")}, timeout=60)
    assert resp.status_code == 201, resp.text
    fid = resp.json()["files"][0]["id"]
    resp = requests.post(f"{base}/run", timeout=120, files={
        "request": (None, json.dumps({"image": BUSYBOX, "cmd": ["cat", "/a/r.txt", "/b/s.txt"],
                                      "files": [{"id": fid, "path": "/a/r.txt"}]}),
                    "application/json"),
        "/b/s.txt": ("s.txt", b"second\n"),
    })
    assert resp.status_code == 200, resp.text
    assert resp.json()["stdout"] == "via requests\nsecond\n"


# Outputs and run records


def test_outputs_nested_and_binary(api):
    script = ("import os\n"
              "os.makedirs('/output/d/e')\n"
              "open('/output/result.json', 'w').write('{\"answer\": 42}')\n"
              "open('/output/d/e/f.txt', 'w').write('nested')\n"
              f"open('/output/d/all.bin', 'wb').write(bytes.fromhex('{BINARY.hex()}'))\n"
              "open('/output/empty', 'w').close()\n"
              "os.makedirs('/output/only/dirs/here')\n"
              "print(oct(os.stat('/output').st_mode & 0o7777), os.getuid())\n")
    r = api.run(image=PYTHON, cmd=["python3", "-c", script])
    assert r["exit_code"] == 0, r["stderr"]
    assert r["stdout"] == "0o1777 65534\n"
    assert r["outputs"] == [{"path": "d/all.bin", "size": len(BINARY)},
                            {"path": "d/e/f.txt", "size": 6},
                            {"path": "empty", "size": 0},
                            {"path": "result.json", "size": 14}]
    assert r["outputs_truncated"] is False

    status, rec, resp, _ = get(api, f"/runs/{r['id']}")
    assert status == 200 and rec == r
    assert resp.getheader("Content-Type") == "application/json; charset=utf-8"
    status, listing, _, _ = get(api, f"/runs/{r['id']}/outputs")
    assert status == 200 and listing == {"outputs": r["outputs"]}

    status, _, resp, raw = get(api, f"/runs/{r['id']}/outputs/d/all.bin")
    assert status == 200 and raw == BINARY
    assert resp.getheader("Content-Type") == "application/octet-stream"
    assert int(resp.getheader("Content-Length")) == len(BINARY)
    assert get(api, f"/runs/{r['id']}/outputs/d/e/f.txt")[3] == b"nested"
    assert get(api, f"/runs/{r['id']}/outputs/d%2Fe%2Ff.txt")[3] == b"nested"
    status, _, _, raw = get(api, f"/runs/{r['id']}/outputs/empty")
    assert (status, raw) == (200, b"")
    assert json.loads(get(api, f"/runs/{r['id']}/outputs/result.json")[3]) == {"answer": 42}


def test_every_run_has_an_empty_output_and_a_record(api):
    r1 = api.run(**sh("ls -A /output; echo x > /output/one"))
    assert r1["stdout"] == "" and r1["outputs"] == [{"path": "one", "size": 2}]
    r2 = api.run(**sh("ls -A /output"))
    assert r2["stdout"] == "" and r2["outputs"] == []
    # A failed, a timed-out and a killed run have records too.
    r3 = api.run(**sh("echo partial > /output/p; sleep 30"), limits={"wall_clock_secs": 1})
    assert r3["timed_out"] is True
    assert r3["outputs"] == [{"path": "p", "size": 8}]
    for r in (r1, r2, r3):
        status, rec, _, _ = get(api, f"/runs/{r['id']}")
        assert status == 200 and rec == r


def test_records_answered_by_any_worker(api):
    r = api.run(**sh("echo hi > /output/h"))
    # Several workers take turns; every one finds the record on disk.
    for _ in range(12):
        status, rec, _, _ = get(api, f"/runs/{r['id']}")
        assert status == 200 and rec["id"] == r["id"]
        assert get(api, f"/runs/{r['id']}/outputs/h")[3] == b"hi\n"


def test_a_damaged_record_is_reported(api):
    """result.json is not synced (it keeps an answer already given): after a
    host crash it may be empty or cut short. GET says so, as a JSON error,
    and the outputs beside it are still served."""
    r = api.run(**sh("echo kept > /output/k"))
    result = Path(api.home) / "runs/records" / r["id"] / "result.json"
    text = result.read_bytes()
    try:
        for damage in (b"", text[: len(text) // 2]):
            result.write_bytes(damage)
            status, parsed, _, raw = get(api, f"/runs/{r['id']}")
            assert status == 500, raw[:200]
            assert parsed["error"]["code"] == "internal"
            assert "request id" in parsed["error"]["message"]
            assert get(api, f"/runs/{r['id']}/outputs/k")[3] == b"kept\n"
    finally:
        result.write_bytes(text)
    assert get(api, f"/runs/{r['id']}")[1] == r


def test_hostile_output_tree(api):
    r = api.run(**sh("cd /output && echo ok > ok && ln -s /etc/passwd leak && ln -s / root && "
                     "ln -s .. up && mkfifo fifo && mkdir d && ln -s /etc d/etc; "
                     "mknod dev c 1 3; echo mknod=$?; ls -la /output"))
    assert r["exit_code"] == 0, r["stderr"]
    # uid 65534 without capabilities cannot make a device node, so no run
    # can leave one in /output (a device node among outputs is a unit test:
    # tests/unit/check_outputs.c, made by root on the host).
    assert "mknod=1" in r["stdout"] and "Operation not permitted" in r["stderr"], r
    assert "leak -> /etc/passwd" in r["stdout"]
    assert r["outputs"] == [{"path": "ok", "size": 3}]
    rid = r["id"]
    for path in ("leak", "root/etc/passwd", "root", "up/result.json", "fifo", "dev", "d/etc/passwd",
                 "d/etc", "d", "nope"):
        status, parsed, _, raw = get(api, f"/runs/{rid}/outputs/{path}")
        assert status == 404, (path, raw[:200])
        assert parsed["error"]["code"] == "file_not_found"
        assert b"root:" not in raw


def test_outputs_the_program_closed_to_others(api):
    # A program may leave its files and directories readable by itself
    # alone (umask 077, chmod 0): they are its outputs all the same.
    script = ("import os\n"
              "os.umask(0o077)\n"
              "os.makedirs('/output/private/deeper')\n"
              "open('/output/private/deeper/a.txt', 'w').write('mine')\n"
              "open('/output/none.txt', 'w').write('closed')\n"
              "os.chmod('/output/none.txt', 0)\n"
              "os.chmod('/output/private', 0o100)\n")
    r = api.run(image=PYTHON, cmd=["python3", "-c", script])
    assert r["exit_code"] == 0, r["stderr"]
    assert r["outputs"] == [{"path": "none.txt", "size": 6},
                            {"path": "private/deeper/a.txt", "size": 4}], r
    for path, want in (("none.txt", b"closed"), ("private%2Fdeeper%2Fa.txt", b"mine")):
        status, _, _, raw = get(api, f"/runs/{r['id']}/outputs/{path}")
        assert (status, raw) == (200, want), (path, status, raw[:200])


def test_output_escape_attempts_rejected(api):
    r = api.run(**sh("echo ok > /output/ok"))
    rid = r["id"]
    for path in ("..%2Fresult.json", "..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd",
                 "ok%2F..%2Fok", ".%2Fok", "ok%2F", "a%2F%2Fb", "%2E%2E%2Fresult.json"):
        status, parsed, _, raw = get(api, f"/runs/{rid}/outputs/{path}")
        assert status == 400, (path, raw[:200])
        assert parsed["error"]["code"] == "invalid_request"
        assert str(api.home) not in parsed["error"]["message"]
    status, parsed, _, _ = get(api, f"/runs/{rid}/outputs/ok%00")
    assert status == 400


def test_unknown_runs(api):
    for rid in ("r_00000000000000000000000000000000", "nope", "x..%2F..%2Fetc",
                "r_" + "A" * 32, "f_00000000000000000000000000000000", "r_..%2F..%2Fetc"):
        for suffix in ("", "/outputs", "/outputs/x"):
            status, parsed, _, raw = get(api, f"/runs/{rid}{suffix}")
            assert status == 404, (rid, suffix, raw[:200])
            assert parsed["error"]["code"] == "run_not_found"
            assert str(api.home) not in parsed["error"]["message"]
    # Climbing out of /runs: nginx refuses it before Boxer sees it.
    status, parsed, _, _ = get(api, "/runs/..%2F..%2Fetc%2Fpasswd")
    assert (status, parsed["error"]["code"]) == (400, "invalid_request")


def test_executor_killed_mid_run_leaves_no_mount(api):
    """The executor's server killed while a run writes /output: the waiting
    worker answers 503 runtime_unavailable at once, the executor's master
    starts a new server, whose sweep unmounts the run's tmpfs before it
    removes the bundle, and the next run works."""
    (f,) = upload(api, ("in", b"x"))
    status = {}

    def long_run():
        code, body, _, _ = api.request("POST", "/run", sh(
            "echo partial > /output/p; sleep 30", files=[{"id": f["id"], "path": "/w/in"}]))
        status.update(code=code, body=body, at=time.monotonic())

    server = api.executor_server_pid()
    t = threading.Thread(target=long_run)
    t.start()
    deadline = time.monotonic() + 10
    # (A warm sandbox's /output is there before its run.)
    while not (api.run_processes() if WARM else
               any(m.endswith("/output") for m in mounts_under(api.home))):
        assert time.monotonic() < deadline, "the run's /output was never mounted"
        time.sleep(0.1)
    time.sleep(1.0 if WARM else 0.5)
    killed_at = time.monotonic()
    os.kill(server, signal.SIGKILL)
    t.join(timeout=60)
    assert status["code"] == 503 and status["body"]["error"]["code"] == "runtime_unavailable", status
    assert status["at"] - killed_at < 5
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if not stray_mounts(api):
            break
        time.sleep(0.2)
    assert stray_mounts(api) == []
    new_server = api.executor_server_pid()
    assert new_server and new_server != server
    assert_store_clean(api)
    assert api.run(**sh("cat /w/in"), files=[{"id": f["id"], "path": "/w/in"}])["stdout"] == "x"


# Bad requests and hostile names


def test_destination_paths_rejected(api):
    (f,) = upload(api, ("x", b"x"))
    for path, want in (("w/x", "must be an absolute path"),
                       ("/w/../etc/passwd", "'..' components"),
                       ("/w/./x", "'..' components"),
                       ("/w//x", "no empty components"),
                       ("/w/", "no trailing '/'"),
                       ("/", "must name a file"),
                       ("/proc/self/x", "/proc"),
                       ("/sys/x", "/sys"),
                       ("/dev/x", "/dev"),
                       ("/output/x", "/output"),
                       ("/output", "/output"),
                       ("/tmp", "/tmp itself"),
                       ("/w/\u0007bell", "control characters"),
                       ("/bin/busybox/x", "'/bin/busybox' is not a directory in the image"),
                       ("/etc", "is a directory in the image")):
        status, parsed, _, raw = api.request("POST", "/run", sh("true", files=[
            {"id": f["id"], "path": path}]))
        assert status == 400, (path, raw[:300])
        assert parsed["error"]["code"] == "invalid_request"
        assert want in parsed["error"]["message"], (path, parsed["error"]["message"])
        assert str(api.home) not in parsed["error"]["message"]
    status, parsed, _, _ = api.request("POST", "/run", sh("true", files=[
        {"id": f["id"], "path": "/a"}, {"id": f["id"], "path": "/a/b"}]))
    assert status == 400 and "collide" in parsed["error"]["message"]


def test_file_ids_checked(api):
    for fid, status_code, code in (
            ("f_00000000000000000000000000000000", 404, "file_not_found"),
            ("../../etc/passwd", 400, "invalid_request"),
            ("f_../../../../../../../../../etc/pa", 400, "invalid_request"),
            ("r_00000000000000000000000000000000", 400, "invalid_request")):
        status, parsed, _, raw = api.request("POST", "/run", sh("true", files=[
            {"id": fid, "path": "/w/x"}]))
        assert (status, parsed["error"]["code"]) == (status_code, code), raw[:300]
        assert str(api.home) not in parsed["error"]["message"]


def test_client_names_never_become_host_paths(api):
    home = Path(api.home)
    names = ["../../../../../../tmp/boxer-escape", "/etc/boxer-escape", "..", ".", "",
             "a\\..\\..\\b", "x\u00e9\u0001\t.txt", 'q"uote']
    files = upload(api, *[(n, n.encode()) for n in names])
    assert [f["name"] for f in files] == ["boxer-escape", "boxer-escape", "file", "file",
                                          "file", "b", "x\u00e9__.txt", 'q"uote']
    assert not Path("/tmp/boxer-escape").exists() and not Path("/etc/boxer-escape").exists()
    assert_store_clean(api)

    # One-shot part names are container paths: checked, never host paths.
    for part in ("../../etc/passwd", "/w/../../etc/x", "relative", "/proc/x", "/output/x"):
        before = store_entries(home)["files"]
        body, ctype = multipart([("request", None, json.dumps(sh("true")).encode()),
                                 (part, "x", b"data")])
        status, parsed, _, raw = api.request("POST", "/run", body, {"Content-Type": ctype})
        assert status == 400, (part, raw[:300])
        assert "part name" in parsed["error"]["message"]
        assert store_entries(home)["files"] == before
    assert_store_clean(api)


def test_multipart_errors(api):
    home = Path(api.home)
    before = store_entries(home)["files"]
    cases = [
        (b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\ncut short",
         "multipart/form-data; boundary=b", 400, "closing boundary"),
        (b"--b\r\n\r\nno headers\r\n--b--", "multipart/form-data; boundary=b", 400,
         "no Content-Disposition"),
        (b"--b--", "multipart/form-data; boundary=b", 400, "at least one file part"),
        (b"x", "multipart/form-data", 400, "needs a boundary"),
        (b"x", "text/plain", 415, "multipart/form-data"),
        (b"x", None, 415, "multipart/form-data"),
    ]
    for body, ctype, want_status, want in cases:
        headers = {"Content-Type": ctype} if ctype else {}
        status, parsed, _, raw = api.request("POST", "/files", body, headers)
        assert status == want_status, (body, raw[:300])
        assert want in parsed["error"]["message"], parsed["error"]["message"]
    # A good file before a broken part is not kept either.
    body, ctype = multipart([("file", "good", b"g")])
    body = body[:-len("--\r\n")] + b"\r\nContent-Disposition: attachment\r\n\r\nx\r\n--" + \
        ctype.split("=")[1].encode() + b"--\r\n"
    status, parsed, _, _ = api.request("POST", "/files", body, {"Content-Type": ctype})
    assert status == 400 and "form-data" in parsed["error"]["message"]

    # One-shot: the request part is required, and checked like a JSON body.
    body, ctype = multipart([("/w/x", "x", b"x")])
    status, parsed, _, _ = api.request("POST", "/run", body, {"Content-Type": ctype})
    assert status == 400 and "part named 'request'" in parsed["error"]["message"]
    body, ctype = multipart([("request", None, b'{"image": "x", "bogus": 1}')])
    status, parsed, _, _ = api.request("POST", "/run", body, {"Content-Type": ctype})
    assert status == 400 and "unknown field 'bogus'" in parsed["error"]["message"]
    body, ctype = multipart([("request", None, b'{"image": "x"}')] * 2)
    status, parsed, _, _ = api.request("POST", "/run", body, {"Content-Type": ctype})
    assert status == 400 and "two 'request' parts" in parsed["error"]["message"]
    assert store_entries(home)["files"] == before
    assert_store_clean(api)

    status, parsed, resp, _ = api.request("GET", "/files")
    assert (status, parsed["error"]["code"]) == (405, "method_not_allowed")
    assert resp.getheader("Allow") == "POST"


def test_oversize_uploads_413(api):
    home = Path(api.home)
    limit = api.config["upload_limit_bytes"]
    before = store_entries(home)["files"]
    # One file over the limit; two that are over together; a one-shot run.
    for files in ([("big", b"x" * (limit + 1))],
                  [("half1", b"x" * (limit // 2 + 1)), ("half2", b"y" * (limit // 2 + 1))]):
        err = upload(api, *files, expect=413)
        assert err["error"]["code"] == "payload_too_large"
        assert str(limit) in err["error"]["message"]
    err = one_shot(api, sh("true"), {"/w/big": b"z" * (limit + 1)}, expect=413)
    assert err["error"]["code"] == "payload_too_large"
    # Exactly at the limit is fine.
    (f,) = upload(api, ("exact", b"e" * limit))
    assert f["size"] == limit
    # Far beyond: nginx itself refuses, with the API's error body.
    body, ctype = multipart([("file", "huge", b"h" * (limit + (2 << 20)))])
    status, parsed, _, _ = api.request("POST", "/files", body, {"Content-Type": ctype})
    assert (status, parsed["error"]["code"]) == (413, "payload_too_large")
    assert sorted(store_entries(home)["files"]) == sorted(before + [f["id"]])
    assert_store_clean(api)


# Limits and expiry, on a stack of their own


@pytest.fixture(scope="module")
def small():
    """A stack with tight output limits and times to live of two seconds."""
    check_prerequisites()
    s = Stack(int(os.environ.get("BOXER_TEST_PORT", "18080")) + 9,
              {"outputs_limit_bytes": 4096, "outputs_limit_files": 3,
               "runs_ttl_secs": 2, "files_ttl_secs": 2}, workers=2).start()
    try:
        yield s
    finally:
        left = s.destroy()
        assert not left, f"left behind: {left}"


def test_output_limits(small):
    # More files than kept: whole files in name order, the rest dropped.
    r = small.run(**sh("cd /output && for f in a b c d e; do echo $f > $f; done"))
    assert r["outputs"] == [{"path": p, "size": 2} for p in "abc"]
    assert r["outputs_truncated"] is True
    # A file over the byte limit is left out; smaller ones still fit.
    r = small.run(**sh("head -c 5000 /dev/zero > /output/big; echo s > /output/small"))
    assert r["outputs"] == [{"path": "small", "size": 2}]
    assert r["outputs_truncated"] is True
    assert get(small, f"/runs/{r['id']}/outputs/big")[0] == 404
    # /output itself is bounded (twice the limit): a run cannot fill the disk.
    r = small.run(**sh("head -c 1000000 /dev/zero > /output/huge; echo rc=$?; "
                       "ls -l /output/huge"))
    assert "rc=0" not in r["stdout"]
    # gVisor reports the host's ENOSPC as such, or as EIO when it flushes
    # its own cache of the file.
    assert "No space left on device" in r["stderr"] or "I/O error" in r["stderr"], r["stderr"]
    assert r["outputs_truncated"] is True and r["outputs"] == []
    r = small.run(**sh("i=0; while [ $i -lt 200 ]; do touch /output/f$i || break; i=$((i+1)); "
                       "done; echo made=$i"))
    assert r["stdout"].startswith("made="), r["stderr"]
    assert int(r["stdout"].split("=")[1]) < 200
    assert len(r["outputs"]) == 3 and r["outputs_truncated"] is True
    assert_store_clean(small)


def test_expiry(small):
    home = Path(small.home)
    (f,) = upload(small, ("e.txt", b"expiring\n"))
    r = small.run(**sh("cat /w/e.txt > /output/copy"), files=[{"id": f["id"], "path": "/w/e.txt"}])
    assert r["outputs"] == [{"path": "copy", "size": 9}]
    assert get(small, f"/runs/{r['id']}")[0] == 200
    time.sleep(3)
    # Expired, whether or not the sweeper has been by.
    status, parsed, _, _ = get(small, f"/runs/{r['id']}")
    assert (status, parsed["error"]["code"]) == (404, "run_not_found")
    assert get(small, f"/runs/{r['id']}/outputs/copy")[0] == 404
    status, parsed, _, _ = small.request("POST", "/run", sh("true", files=[
        {"id": f["id"], "path": "/w/e.txt"}]))
    assert (status, parsed["error"]["code"]) == (404, "file_not_found")
    # Requests keep the sweeper going in every worker; the store empties.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        small.request("GET", "/health")
        entries = store_entries(home)
        if not entries["files"] and not entries["records"] and not entries["other"]:
            break
        time.sleep(0.5)
    assert store_entries(home) == {"files": [], "records": [], "other": []}


# Many at once


def test_concurrent_uploads_and_runs(api):
    def one(i):
        data = secrets.token_bytes(1000 + i * 37) + f"#{i}".encode()
        (f,) = upload(api, (f"in{i}.bin", data))
        assert f["sha256"] == hashlib.sha256(data).hexdigest()
        r = api.run(**sh("cp /w/in.bin /output/out.bin && sha256sum /w/in.bin"),
                    files=[{"id": f["id"], "path": "/w/in.bin"}])
        assert r["exit_code"] == 0, r["stderr"]
        assert r["stdout"].split()[0] == f["sha256"]
        status, _, _, raw = get(api, f"/runs/{r['id']}/outputs/out.bin")
        assert status == 200 and raw == data
        return f["id"], r["id"]

    before = store_entries(api.home)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(16)))
    assert len({fid for fid, _ in results}) == 16 and len({rid for _, rid in results}) == 16
    after = store_entries(api.home)
    assert set(after["files"]) >= {fid for fid, _ in results}
    assert set(after["records"]) >= {rid for _, rid in results}
    assert len(after["files"]) == len(before["files"]) + 16
    assert_store_clean(api)
