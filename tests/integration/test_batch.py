"""POST /batch through the real stack: results in the order of the runs
whatever order they end in, each run alone in the shared sandbox (its own
/tmp, uid and processes), per-run wall clocks and address-space limits, a
crash or a timeout or an OOM of the sandbox never hiding the others'
results, uploads, the output share, and every refusal.

Uses the session stack (BOXER_TEST_PORT) and, for a small config, the
make_stack one (BOXER_TEST_PORT+1)."""

import json
import socket
import time

import pytest

from conftest import BUSYBOX, PYTHON


def batch(api, expect=200, **req):
    status, body, _, raw = api.request("POST", "/batch", req)
    assert status == expect, f"POST /batch answered {status}: {raw[:800]!r}"
    return body


def py(code, **extra):
    return {"cmd": ["python3", "-c", code], **extra}


def test_results_in_order_whatever_order_runs_end(api):
    # Earlier runs sleep longer: with two at a time they end out of order.
    runs = [py(f"import time; time.sleep({(7 - i) * 0.15}); print({i})") for i in range(8)]
    t0 = time.monotonic()
    b = batch(api, image=PYTHON, parallelism=2, runs=runs)
    elapsed = time.monotonic() - t0
    assert b["id"].startswith("b_") and b["image"] == PYTHON
    assert b["image_digest"].startswith("sha256:")
    assert [r["index"] for r in b["results"]] == list(range(8))
    assert [r["stdout"] for r in b["results"]] == [f"{i}\n" for i in range(8)]
    for i, r in enumerate(b["results"]):
        assert r["id"] == f"{b['id']}/{i}"
        assert (r["exit_code"], r["timed_out"], r["oom_killed"], r["outputs"]) == (0, False, False, [])
        assert "error" not in r
    # Two at a time: the sleeps (4.2 s in all) overlap, about halving them.
    assert elapsed < 4.2


def test_each_run_is_alone(api):
    """Runs share a sandbox, not a /tmp, a uid or each other's processes:
    run 1 tries to kill everything it may and to read run 0's file, while
    run 0 is running."""
    first = py("import os, time\n"
               "open('/tmp/mine', 'w').write('secret')\n"
               "time.sleep(1.5)\n"
               "print(open('/tmp/mine').read(), os.getuid(), os.getcwd())")
    second = py("import os, subprocess, time\n"
                "time.sleep(0.5)\n"
                "print(os.path.exists('/tmp/mine'), os.listdir('/tmp'), os.getuid())\n"
                "subprocess.run(['kill', '-9', '-1'])\n"
                "print('still here')")
    b = batch(api, image=PYTHON, parallelism=2, runs=[first, second])
    r0, r1 = b["results"]
    assert r0["exit_code"] == 0, r0
    out0 = r0["stdout"].split()
    assert out0[0] == "secret" and out0[2] == "/tmp"
    # kill -1 as its own uid killed itself at most, never run 0.
    assert r1["stdout"].startswith("False [] "), r1
    assert int(out0[1]) != int(r1["stdout"].split()[2])
    assert int(out0[1]) not in (0, 65534)


def test_what_a_run_leaves_dies_with_it(api):
    """A process that left its run's group (setsid) does not outlive the
    run to meddle with the next one."""
    leave = {"cmd": ["sh", "-c", "setsid sleep 30 </dev/null >/dev/null 2>&1 & "
                                 "sleep 0.5; echo started"]}
    look = {"cmd": ["sh", "-c", "sleep 1; ps -o user,comm"]}
    b = batch(api, image=BUSYBOX, parallelism=1, runs=[leave, look])
    assert b["results"][0]["stdout"] == "started\n"
    listing = b["results"][1]["stdout"].splitlines()
    assert listing[0].split() == ["USER", "COMMAND"] and "root .boxer-init" in \
        [" ".join(line.split()) for line in listing], listing
    assert not [line for line in listing if "sleep" in line], listing


def test_per_run_wall_clock(api):
    runs = [py("print('quick')"),
            {"cmd": ["sleep", "30"], "limits": {"wall_clock_secs": 1}},
            py("print('after')")]
    t0 = time.monotonic()
    b = batch(api, image=PYTHON, parallelism=2, runs=runs)
    assert time.monotonic() - t0 < 10
    quick, slow, after = b["results"]
    assert (quick["stdout"], quick["exit_code"]) == ("quick\n", 0)
    assert slow["timed_out"] is True and slow["exit_code"] == 137 and slow["signal"] == 9
    assert 1000 <= slow["wall_ms"] < 2500
    assert (after["stdout"], after["exit_code"]) == ("after\n", 0)


def test_a_crash_hides_nothing(api):
    runs = [{"cmd": ["sh", "-c", "echo out; echo err >&2; exit 3"]},
            {"cmd": ["sh", "-c", "kill -SEGV $$"]},
            {"cmd": ["/no/such/program"]},
            {"cmd": ["echo", "fine"]}]
    b = batch(api, image=BUSYBOX, parallelism=2, runs=runs)
    exit3, segv, missing, fine = b["results"]
    assert (exit3["exit_code"], exit3["stdout"], exit3["stderr"]) == (3, "out\n", "err\n")
    assert (segv["exit_code"], segv["signal"]) == (139, 11)
    assert missing["exit_code"] == 127 and "not found in the image" in missing["stderr"]
    assert (fine["exit_code"], fine["stdout"]) == (0, "fine\n")


def test_address_space_limit_per_run(api):
    grab = "x = bytearray({} << 20); print('got it')"
    runs = [py(grab.format(200), limits={"memory_mb": 100}),
            py(grab.format(50), limits={"memory_mb": 200})]
    b = batch(api, image=PYTHON, limits={"memory_mb": 512}, runs=runs)
    small, fits = b["results"]
    assert "MemoryError" in small["stderr"] and small["exit_code"] == 1
    assert small["oom_killed"] is False
    assert (fits["stdout"], fits["exit_code"]) == ("got it\n", 0)


def test_oom_of_the_sandbox_is_every_unfinished_run(api):
    """The runs' address spaces may add up past the sandbox's memory: the
    cgroup kills the sandbox, and every run not yet ended says so; one that
    ended before keeps its result."""
    runs = [{"cmd": ["echo", "done early"]},
            {"cmd": ["python3", "-c", "import time; time.sleep(1); x = bytearray(400 << 20); "
                     "time.sleep(30)"], "limits": {"memory_mb": 1024}},
            {"cmd": ["sleep", "20"]},
            {"cmd": ["echo", "never started"]}]
    b = batch(api, image=PYTHON, parallelism=2, limits={"memory_mb": 128}, runs=runs)
    early, hog, sleeper, waiting = b["results"]
    assert (early["stdout"], early["oom_killed"]) == ("done early\n", False)
    for r in (hog, sleeper, waiting):
        assert r["oom_killed"] is True and r["exit_code"] == 137, r
        assert "never started" not in r["stdout"]


def test_stdin_env_and_workdir(api):
    runs = [{"cmd": ["python3", "-"], "stdin": "import os; print(os.getcwd(), os.environ['A'])",
             "env": {"A": "one"}},
            {"cmd": ["sh", "-c", "pwd; cat"], "stdin": "two\n", "workdir": "/usr"},
            {"cmd": ["sh", "-c", "echo $A"]}]
    b = batch(api, image=PYTHON, runs=runs)
    assert [r["stdout"] for r in b["results"]] == ["/tmp one\n", "/usr\ntwo\n", "\n"]


def upload(api, name, data):
    boundary = "b0und4ry"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + \
        f"\r\n--{boundary}--\r\n".encode()
    status, resp, _, raw = api.request("POST", "/files", body,
                                       {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 201, raw
    return resp["files"][0]["id"]


def test_files(api):
    data = upload(api, "data.txt", b"shared input\n")
    other = upload(api, "other.txt", b"something else\n")
    read = ["sh", "-c", "cat /work/data.txt; ls -ln /work/data.txt | cut -c1-10; "
                        "echo x >> /work/data.txt || echo read-only"]
    runs = [{"cmd": read, "files": [{"id": data, "path": "/work/data.txt"}]},
            {"cmd": read, "files": [{"id": data, "path": "/work/data.txt"}]},
            {"cmd": ["true"], "files": [{"id": other, "path": "/work/data.txt"}]},
            {"cmd": ["cat", "/work/gone.txt"],
             "files": [{"id": "f_" + "0" * 32, "path": "/work/gone.txt"}]}]
    b = batch(api, image=BUSYBOX, runs=runs)
    first, second, clash, unknown = b["results"]
    for r in (first, second):
        assert r["stdout"].startswith("shared input\n-r--r--r--"), r
        assert "read-only" in r["stdout"]
    assert clash["error"]["code"] == "invalid_request"
    assert "another upload" in clash["error"]["message"] and clash["exit_code"] == -1
    assert unknown["error"]["code"] == "file_not_found"


@pytest.mark.parametrize("parallelism", [1, 3])
def test_a_refused_file_fails_every_run_that_needs_it(api, parallelism):
    """boxer-init refuses a destination under a file of the image: the run
    it was written for fails, and so does every later run of the same
    upload there, one started before the refusal came back included; a run
    of the upload elsewhere is unharmed."""
    data = upload(api, "data.txt", b"input\n")
    under_a_file = {"id": data, "path": "/bin/busybox/data.txt"}
    runs = [{"cmd": ["cat", "/bin/busybox/data.txt"], "files": [under_a_file]},
            {"cmd": ["sh", "-c", "echo started; cat /bin/busybox/data.txt"],
             "files": [under_a_file]},
            {"cmd": ["cat", "/work/data.txt"], "files": [{"id": data, "path": "/work/data.txt"}]},
            {"cmd": ["echo", "later"], "files": [under_a_file]}]
    b = batch(api, image=BUSYBOX, parallelism=parallelism, runs=runs)
    first, second, elsewhere, later = b["results"]
    for r in (first, second, later):
        assert r["exit_code"] == -1 and r["error"]["code"] == "invalid_request", r
        assert "cannot write '/bin/busybox/data.txt'" in r["error"]["message"], r
    assert elsewhere["exit_code"] == 0 and elsewhere["stdout"] == "input\n", elsewhere


def test_output_share_is_fixed(make_stack):
    s = make_stack({"batch_output_limit_bytes": 4096}).start()
    runs = [{"cmd": ["sh", "-c", "head -c 5000 /dev/zero | tr '\\0' a"]},
            {"cmd": ["echo", "small"]}]
    b = batch(s, image=BUSYBOX, parallelism=2, runs=runs)
    big, small = b["results"]
    # 4096 bytes for 2 runs of 2 streams: 1024 each, whatever the timing.
    assert (len(big["stdout"]), big["stdout_truncated"]) == (1024, True)
    assert (small["stdout"], small["stdout_truncated"]) == ("small\n", False)


def test_many_runs(api):
    runs = [{"cmd": ["echo", str(i)]} for i in range(200)]
    b = batch(api, image=BUSYBOX, parallelism=4, runs=runs)
    assert [r["stdout"] for r in b["results"]] == [f"{i}\n" for i in range(200)]


@pytest.mark.parametrize("req, code, words", [
    ({"image": BUSYBOX}, 400, "'runs' is required"),
    ({"image": BUSYBOX, "runs": []}, 400, "a batch takes 1 to 1000"),
    ({"image": BUSYBOX, "runs": [{"cmd": ["true"]}] * 1001}, 400, "a batch takes 1 to 1000"),
    ({"image": BUSYBOX, "runs": [{"cmd": ["true"]}], "parallelism": 0}, 400, "'parallelism'"),
    ({"image": BUSYBOX, "runs": [{"cmd": ["true"]}], "parallelism": 33}, 400, "'parallelism'"),
    ({"image": BUSYBOX, "runs": [{"cmd": ["true"]}], "parallelism": "2"}, 400, "'parallelism'"),
    ({"image": BUSYBOX, "runs": [{"cmd": []}]}, 400, "runs[0]: 'cmd' must not be empty"),
    ({"image": BUSYBOX, "runs": [{"cmd": ["true"]}, {"image": "x"}]}, 400, "runs[1]: unknown field 'image'"),
    ({"image": BUSYBOX, "runs": [{"cmd": ["true"], "limits": {"cpu_cores": 1}}]}, 400,
     "unknown field 'limits.cpu_cores'"),
    ({"image": BUSYBOX, "runs": [{"cmd": ["true"], "limits": {"wall_clock_secs": 0}}]}, 400,
     "limits.wall_clock_secs must be between"),
    ({"image": BUSYBOX, "runs": ["true"]}, 400, "runs[0]: must be an object"),
    ({"image": BUSYBOX, "runs": [{"cmd": ["true"]}], "network": "bridge"}, 400,
     "'network' must be one of"),
    ({"image": BUSYBOX, "runs": [{"cmd": ["true"],
                                  "files": [{"id": "f_" + "0" * 32, "path": "/tmp/x"}]}]}, 400,
     "each batch run's own"),
    ({"image": BUSYBOX, "runs": [{"cmd": ["true"]}], "extra": 1}, 400, "unknown field 'extra'"),
    ({"runs": [{"cmd": ["true"]}]}, 400, "'image' is required"),
    ({"image": "localhost:5000/boxer/no-such-image:1", "runs": [{"cmd": ["true"]}]}, 404, ""),
])
def test_refusals(api, req, code, words):
    status, body, _, raw = api.request("POST", "/batch", req)
    assert status == code, raw[:500]
    assert words in body["error"]["message"], body


def test_wrong_method_and_media(api):
    status, body, _, _ = api.request("GET", "/batch")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
    status, body, _, _ = api.request("POST", "/batch", b"image=x",
                                     {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415


def test_client_going_away_ends_the_batch(api):
    """The suite's leftover check (the api fixture) proves the sandbox and
    every run in it are gone."""
    body = json.dumps({"image": BUSYBOX, "parallelism": 2,
                       "runs": [{"cmd": ["sleep", "60"]}] * 4}).encode()
    sock = socket.create_connection((api.host, api.port))
    sock.sendall(b"POST /batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    time.sleep(1.5)
    sock.close()
    # The next batch finds its slot: nothing of the first holds one.
    b = batch(api, image=BUSYBOX, runs=[{"cmd": ["echo", "next"]}])
    assert b["results"][0]["stdout"] == "next\n"


def test_too_large(api):
    """Over upload_limit_bytes (1 MiB in the test config): 413, from the
    worker (nginx lets up to 1 MiB more through), every time."""
    runs = [{"cmd": ["true"], "stdin": "x" * 20000}] * 60
    for _ in range(5):
        status, body, _, _ = api.request("POST", "/batch", {"image": BUSYBOX, "runs": runs})
        assert status == 413 and body["error"]["code"] == "payload_too_large", body
