"""Hostile programs: each is reported for what it did, the service stays
healthy, and the next run is normal."""

import errno
import json
import os
import uuid
from pathlib import Path

import pytest

from conftest import BUILD, BUSYBOX, PYTHON, ROOT

# "Within about a second of the limit" (README): the kill itself, runsc's
# teardown and the answer through nginx, on a busy 2-core machine.
KILL_SLACK_MS = 1500


def py(code, **kw):
    return dict(image=PYTHON, cmd=["python3", "-c", code], **kw)


def sh(script, **kw):
    return dict(image=BUSYBOX, cmd=["/bin/sh", "-c", script], **kw)


@pytest.fixture
def hostile(api):
    """After each hostile run: the service answers and a plain run is normal."""
    yield api
    status, body, _, _ = api.request("GET", "/health")
    assert status == 200 and body["status"] == "ok"
    r = api.run(**sh("echo normal"))
    assert (r["stdout"], r["exit_code"], r["timed_out"]) == ("normal\n", 0, False)


def test_fork_bomb(hostile):
    r = hostile.run(**sh("b() { b | b & }; b; sleep 3; echo after", limits={"pids_limit": 32,
                                                                          "wall_clock_secs": 20}))
    # The sandbox holds: forks fail with EAGAIN at the limit (busybox sh
    # says "can't fork: Resource temporarily unavailable"), the shell goes
    # on and the run ends with its own exit, well before the wall clock.
    assert "can't fork: Resource temporarily unavailable" in r["stderr"], r["stderr"][-500:]
    assert r["timed_out"] is False and r["signal"] is None
    assert r["stdout"] == "after\n" and r["exit_code"] == 0
    assert r["wall_ms"] < 15000


def test_python_fork_bomb(hostile):
    code = ("import os\n"
            "n = 0\n"
            "try:\n"
            "    while True:\n"
            "        if os.fork() == 0:\n"
            "            import time; time.sleep(5); os._exit(0)\n"
            "        n += 1\n"
            "except OSError as e:\n"
            "    print('stopped after', n, e.errno)\n")
    r = hostile.run(**py(code, limits={"pids_limit": 16, "wall_clock_secs": 20}))
    assert r["stdout"].startswith("stopped after "), (r["stdout"], r["stderr"][-500:])
    _, _, n, err = r["stdout"].split()
    # EAGAIN at pids_limit: python itself is one of the 16.
    assert int(err) == errno.EAGAIN
    assert 0 < int(n) < 16
    assert r["timed_out"] is False and r["exit_code"] == 0


def test_memory_bomb(hostile):
    code = "x = []\nwhile True: x.append(bytearray(16 << 20))"
    r = hostile.run(**py(code, limits={"memory_mb": 128}))
    assert r["oom_killed"] is True
    assert r["exit_code"] == 137 and r["timed_out"] is False


def assert_killed_at_wall_clock(r, secs):
    assert r["timed_out"] is True and r["signal"] == 9 and r["exit_code"] == 137, r
    assert secs * 1000 <= r["wall_ms"] < secs * 1000 + KILL_SLACK_MS, r["wall_ms"]


def test_busy_loop_past_wall_clock(hostile):
    r = hostile.run(**py("while True: pass", limits={"wall_clock_secs": 2}))
    assert_killed_at_wall_clock(r, 2)


def test_ignores_sigterm_past_wall_clock(hostile):
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(100)"
    r = hostile.run(**py(code, limits={"wall_clock_secs": 2}))
    assert_killed_at_wall_clock(r, 2)


def test_daemons_do_not_outlive_the_run(hostile):
    # setsid + double fork, holding stdout open: the run still ends when the
    # command does, and nothing of it survives (the api fixture checks that).
    r = hostile.run(**sh("(setsid sh -c 'sleep 1000 &' &); (sleep 1000 &); echo parent done",
                         limits={"wall_clock_secs": 20}))
    assert r["stdout"] == "parent done\n"
    assert r["timed_out"] is False
    assert r["wall_ms"] < 15000


def test_stdout_and_stderr_flood(hostile):
    r = hostile.run(**sh("yes out & yes err >&2 & sleep 2; kill %1 %2", limits={"wall_clock_secs": 10}))
    limit = hostile.config["output_limit_bytes"]
    assert r["stdout_truncated"] and r["stderr_truncated"]
    assert len(r["stdout"]) == limit and len(r["stderr"]) == limit


def test_giant_line_without_newline(hostile):
    r = hostile.run(**py("import sys\nsys.stdout.write('x' * (50 << 20))"))
    assert r["stdout_truncated"] is True and r["exit_code"] == 0
    assert r["stdout"] == "x" * hostile.config["output_limit_bytes"]


def test_invalid_utf8(hostile):
    code = "import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe \\xc3\\x28 \\xed\\xa0\\x80 end')"
    status, _, _, raw = hostile.request("POST", "/run", py(code))
    assert status == 200
    out = json.loads(raw)["stdout"]
    assert out.startswith("ok ") and out.endswith(" end") and "\ufffd" in out


def host_disk_used():
    """Bytes used on every host filesystem a run could spill onto: the
    server's home, the root filesystem and /var/tmp and /tmp."""
    used = {}
    for path in ("/", "/var/tmp", "/tmp"):
        st = os.statvfs(path)
        used[(st.f_fsid, path)] = (st.f_blocks - st.f_bfree) * st.f_frsize
    return used


def assert_host_disk_untouched(before, after, written):
    for key in before:
        # Other programs on the machine write too: far less than the run.
        assert after[key] - before[key] < written // 4, (key, before[key], after[key])


FILL = 400 << 20


def test_fill_tmp(hostile):
    before = host_disk_used()
    r = hostile.run(**sh(f"head -c {FILL} /dev/zero > /tmp/fill; echo rc=$?; ls -l /tmp/fill",
                         limits={"memory_mb": 256}))
    after = host_disk_used()
    # /tmp is a tmpfs within the memory limit: the write fails with ENOSPC
    # or the sandbox is OOM-killed (137); it never succeeds, and the host's
    # disks do not grow by what was written.
    if r["oom_killed"]:
        assert r["exit_code"] == 137
    else:
        assert "rc=1" in r["stdout"] and "No space left on device" in r["stderr"], r
    assert_host_disk_untouched(before, after, FILL)


def test_fill_root_overlay(hostile):
    # The root overlay is writable only where the image lets uid 65534
    # write: a directory of the image made world-writable by the run
    # itself cannot exist (no capabilities), so the run writes where the
    # image has one (/var/tmp, mode 1777 in the test images), which lives in
    # the overlay, in memory.
    code = ("import os, sys\n"
            "st = os.stat('/var/tmp'); print('mode', oct(st.st_mode & 0o7777), flush=True)\n"
            "f = open('/var/tmp/fill', 'wb')\n"
            "try:\n"
            "    for _ in range(%d): f.write(b'0' * (1 << 20)); f.flush()\n"
            "    print('wrote all')\n"
            "except OSError as e:\n"
            "    print('errno', e.errno); sys.exit(3)\n" % (FILL >> 20))
    before = host_disk_used()
    r = hostile.run(**py(code, limits={"memory_mb": 256}))
    after = host_disk_used()
    assert r["stdout"].startswith("mode 0o1777\n"), (r["stdout"], r["stderr"][-300:])
    assert "wrote all" not in r["stdout"]
    if r["oom_killed"]:
        assert r["exit_code"] == 137
    else:
        assert r["exit_code"] == 3 and f"errno {errno.ENOSPC}" in r["stdout"], r
    assert_host_disk_untouched(before, after, FILL)


def test_exhaust_file_descriptors(hostile):
    code = ("import os\nfds = []\n"
            "try:\n    while True: fds.append(os.open('/dev/null', os.O_RDONLY))\n"
            "except OSError as e:\n    print(len(fds), e.errno)")
    r = hostile.run(**py(code, limits={"nofile": 64}))
    n, errno = r["stdout"].split()
    assert int(n) <= 64 and errno == "24"     # EMFILE


def test_read_random_and_zero(hostile):
    r = hostile.run(**sh("head -c 1000000 /dev/random | wc -c; head -c 1000000 /dev/zero | wc -c"))
    assert r["stdout"].split() == ["1000000", "1000000"]
    r = hostile.run(**sh("cat /dev/zero", limits={"wall_clock_secs": 2}))
    assert r["stdout_truncated"] is True and r["timed_out"] is True


def test_close_stdout_early(hostile):
    r = hostile.run(**sh("exec 1>&-; exec 2>&-; sleep 1; exit 4"))
    assert r["exit_code"] == 4 and r["stdout"] == ""


def test_raw_sockets_and_mounts_denied(hostile):
    code = ("import socket, ctypes, os\n"
            "try:\n    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print('raw ok')\n"
            "except OSError as e:\n    print('raw denied', e.errno)\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "r = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)\n"
            "print('mount', r, ctypes.get_errno())\n")
    r = hostile.run(**py(code))
    lines = r["stdout"].splitlines()
    assert lines[0].startswith("raw denied")
    assert lines[1] == "mount -1 1"        # EPERM


def test_no_capabilities_at_all(hostile):
    # boxer-init holds a few (to write root's files, become the run's
    # user, mount a batch run's /tmp); the program has none, and none it
    # could gain by exec (the bounding set, which boxer-init empties).
    r = hostile.run(**sh("grep ^Cap /proc/self/status; id -u; id -G"))
    assert r["exit_code"] == 0, r
    lines = r["stdout"].splitlines()
    caps = dict(line.split(":\t") for line in lines[:5])
    assert caps == {k: "0000000000000000"
                    for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}, caps
    assert lines[5:] == ["65534", "65534"]


def test_host_invisible(hostile):
    # Paths that certainly exist on this host and that a run would see if
    # the host's filesystem showed through: a marker written now in
    # /var/tmp (a directory the image has too, not a tmpfs of the run), the
    # runsc binary, the build and the checkout. None under /tmp, which every
    # run has as a fresh tmpfs, so that the check could not fail for it.
    marker = Path("/var/tmp") / f"boxer-host-marker-{uuid.uuid4().hex}"
    marker.write_text("host\n")
    paths = [str(marker), os.path.realpath(hostile.config["runsc_path"]),
             str(BUILD / "boxer-fcgi"), str(ROOT / "README.md")]
    try:
        for p in paths:
            assert os.path.exists(p) and not p.startswith("/tmp/"), p
        code = ("import os, socket, sys\n"
                "print(socket.gethostname())\n"
                "print(sorted(p for p in os.listdir('/proc') if p.isdigit()))\n"
                "print([os.path.exists(p) for p in sys.argv[1:]])\n")
        r = hostile.run(image=PYTHON, cmd=["python3", "-c", code, *paths])
    finally:
        marker.unlink()
    lines = r["stdout"].splitlines()
    assert lines[0] == "boxer"
    # Only the sandbox's own few processes, not the host's hundreds.
    assert len(eval(lines[1])) < 10
    assert lines[2] == str([False] * len(paths))


def test_environment_is_clean(hostile):
    r = hostile.run(**py("import os, json; print(json.dumps(dict(os.environ)))"))
    env = json.loads(r["stdout"])
    assert set(env) <= {"PATH", "LANG", "HOME", "HOSTNAME", "PWD"}, env


def test_runs_cannot_see_each_other(hostile):
    r = hostile.run(**sh("echo secret > /tmp/mine; ls /tmp"))
    r2 = hostile.run(**sh("cat /tmp/mine 2>&1; ls /tmp"))
    assert "secret" not in r2["stdout"]
