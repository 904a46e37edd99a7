"""The real stack for integration tests: nginx -> spawn-fcgi pool of
boxer-fcgi -> runsc, with its own home, socket and port, and a check after
the suite that nothing of any run is left on the machine."""

import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("BOXER_BUILD_DIR", ROOT))
CI = os.environ.get("CI") == "true"

BUSYBOX = "localhost:5000/boxer/busybox:latest"
PYTHON = "localhost:5000/boxer/python:3.11"
# busybox alone with neither Entrypoint nor Cmd, built by the suite itself.
NOCMD = "localhost:5000/boxer/nocmd:1"
# python3 with Debian's pytest, for the SDK's upload_and_run example.
PYTHON_PYTEST = "localhost:5000/boxer/python-pytest:3.11"
# (name, reference) of images every Stack loads besides the three above:
# sdk/python/tests adds python-pytest, which these tests do not need (a load
# costs seconds, and there is a stack per test in places).
EXTRA_TEST_IMAGES = []

# BOXER_TEST_WARM=1: the suite's stack keeps warm sandboxes of the test
# images, so the run tests go through boxer-init in a pool sandbox.
WARM = os.environ.get("BOXER_TEST_WARM") == "1"
WARM_SIZE = 2


def warm_config(*images, size=WARM_SIZE):
    return {"warm_pool": [{"image": i, "network": "none", "size": size} for i in images],
            "init_path": str(BUILD / "boxer-init")}


# The server's own environment must never reach a run.
SERVER_SECRET = "BOXER_TEST_SERVER_SECRET"


def need(condition, why):
    """Skip when a privilege or tool is missing; under CI a skip is a failure."""
    if condition:
        return
    if CI:
        pytest.fail(f"required for CI: {why}")
    pytest.skip(why)


def runsc_path():
    path = os.environ.get("BOXER_RUNSC") or shutil.which("runsc")
    return path


class Api:
    """A small JSON client over http.client: the tests see exactly what
    nginx answers, headers included."""

    def __init__(self, host, port):
        self.host, self.port = host, port

    # True: each POST /run waits until the warm pools are full, so that the
    # run tests go through warm sandboxes and not mostly the cold path.
    wait_for_warm = False

    def request(self, method, path, body=None, headers=None, timeout=120):
        if self.wait_for_warm and method == "POST" and path == "/run":
            # Not for ever: a pool that has not learned its digest yet (the
            # executor restarted) fills only after this run.
            wait_warm(self, timeout=5, must=False)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        parsed = None
        if data and resp.getheader("Content-Type", "").startswith("application/json"):
            parsed = json.loads(data)
        return resp.status, parsed, resp, data

    def run(self, expect=200, **req):
        status, body, _, raw = self.request("POST", "/run", req)
        assert status == expect, f"POST /run answered {status}: {raw[:500]!r}"
        return body


def leftovers(home, runsc_root):
    """Everything a run could leave behind, as a list of descriptions."""
    found = []
    ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    for line in ps.splitlines():
        if "runsc" in line and str(runsc_root) in line:
            found.append(f"process: {line.strip()}")
    # Only this stack's cgroups: other Boxers on the machine may be busy.
    instance = (Path(home) / "instance-id").read_text()
    for ctrl in Path("/sys/fs/cgroup").iterdir():
        if ctrl.is_dir():
            for d in ctrl.glob(f"boxer-{instance}-*"):
                found.append(f"cgroup: {d}")
    # cgroup v2: below the service's own cgroup (executor/cgroup.h).
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        found += [f"cgroup: {d}" for d in Path("/sys/fs/cgroup").glob(f"**/runs/boxer-{instance}-*")]
    active = Path(home) / "runs" / "active"
    if active.exists():
        found += [f"run state: {p}" for p in active.iterdir()]
    if Path(runsc_root).exists():
        found += [f"runsc state: {p}" for p in Path(runsc_root).iterdir() if p.name != "null-netns"]
    found += network_leftovers(home, instance)
    return found


def network_leftovers(home, instance, stopped=False):
    """Sandbox networking of this stack's runs: namespace files, leases,
    host-side veths (told by their alias), firewall elements; and, once the
    service is stopped, its firewall table."""
    found = []
    for d, what in (("netns", "network namespace"), ("network/leases", "address lease")):
        if (Path(home) / d).exists():
            found += [f"{what}: {p}" for p in (Path(home) / d).iterdir() if not p.name.startswith(".")]
    for alias in Path("/sys/class/net").glob("*/ifalias"):
        try:
            if alias.read_text().startswith(f"boxer:{instance}:"):
                found.append(f"veth: {alias.parent.name}")
        except OSError:
            pass                # the interface went away meanwhile
    nft = subprocess.run(["nft", "-j", "list", "set", "inet", f"boxer_{instance}", "runs"],
                         capture_output=True, text=True)
    if nft.returncode == 0:
        for item in json.loads(nft.stdout)["nftables"]:
            found += [f"firewall element: {e}" for e in item.get("set", {}).get("elem", [])]
        if stopped:
            found.append(f"firewall table: inet boxer_{instance}")
    return found


def mounts_under(path):
    """Mount points below path: runsc's network namespace file, for one."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith(str(path) + "/")]


def wait_no_leftovers(home, runsc_root, timeout=15, pool=None):
    """Nothing of any run left; with pool (a stack), nothing but its warm
    sandboxes, every pool full again: each has a bundle, a lock, a runsc
    container and a cgroup per controller, and the counts must match."""
    deadline = time.monotonic() + timeout
    while True:
        left = leftovers(home, runsc_root)
        if pool is not None:
            left = pool_extra(pool, left)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def warm_ids(home):
    """Sandboxes of the warm pool, idle or serving a run: their bundles
    hold boxer-init's log (a cold run's never does)."""
    active = Path(home) / "runs" / "active"
    return {b.name for b in active.glob("r_*") if (b / "init.log").exists()} if active.exists() else set()


def prime(stack):
    """Tell the warm pools their digests (a pool learns them from runs):
    after the executor restarted, say."""
    for p in stack.request("GET", "/health")[1].get("warm_pool", []):
        if p["ready"] == 0 and p["size"] > 0:
            stack.run(image=p["image"], cmd=["true"])


def pool_extra(stack, left):
    """What left holds beyond the idle sandboxes of stack's full pools: a
    sandbox that served a run and stayed is one too many."""
    prime(stack)
    pools = stack.request("GET", "/health")[1].get("warm_pool", [])
    if any(p["ready"] != p["size"] for p in pools):
        return left + [f"warm pool not full: {pools}"]
    ready = sum(p["ready"] for p in pools)
    ids = warm_ids(stack.home)
    # A pool of network "sandbox" has each sandbox's namespace (named by
    # its id), veth and firewall element (by the veth's name) and lease
    # (a file holding its id).
    marks = ids | {"bx" + i.split("_", 1)[1][:13] for i in ids}

    def theirs(x):
        if any(m in x for m in marks):
            return True
        if x.startswith("address lease: "):
            try:
                return Path(x.split(": ", 1)[1]).read_text().strip() in ids
            except OSError:
                return True     # released meanwhile
        return False

    rest = [x for x in left if not theirs(x)]
    if len(ids) != ready:
        rest.append(f"{ready} idle warm sandboxes, but these: {sorted(ids)}")
    return rest


def stray_mounts(stack, timeout=15):
    """Mounts under the home but runsc's namespace file and, with a warm
    pool, its sandboxes' /output; waited for a while, as a sandbox goes
    just after its answer."""
    deadline = time.monotonic() + timeout
    while True:
        ids = warm_ids(stack.home) if WARM else set()
        stray = [m for m in mounts_under(stack.home) if not m.endswith("/runsc/null-netns")
                 and not any(f"/runs/active/{i}/" in m for i in ids)]
        if not stray or time.monotonic() > deadline:
            return stray
        time.sleep(0.1)


def settled(stack, timeout=15):
    """wait_no_leftovers, with the suite's warm pool (if any) allowed."""
    return wait_no_leftovers(stack.home, stack.runsc_root, timeout, pool=stack if WARM else None)


def load_test_images(config_path, workdir):
    """Build (cached) and load the fixture images into the home of config_path."""
    layouts = subprocess.run([str(ROOT / "contrib/images/build-images.sh")], check=True,
                             capture_output=True, text=True).stdout.split()
    layouts = dict(zip(layouts[0::2], layouts[1::2]))
    rootfs = workdir / "nocmd-rootfs"
    if not (workdir / "nocmd").exists():
        (rootfs / "bin").mkdir(parents=True)
        shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
        subprocess.run(["python3", str(ROOT / "contrib/images/mkoci.py"), "--dir", str(rootfs),
                        "--out", str(workdir / "nocmd"), "--ref", NOCMD], check=True,
                       capture_output=True)
    layouts["nocmd"] = str(workdir / "nocmd")
    for name, ref in (("busybox", BUSYBOX), ("python", PYTHON), ("nocmd", NOCMD),
                      *EXTRA_TEST_IMAGES):
        subprocess.run([str(BUILD / "boxer-image"), "--config", str(config_path),
                        "load", layouts[name], ref], check=True, capture_output=True)


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def check_prerequisites():
    need(os.geteuid() == 0, "integration tests run runsc and need root")
    need(runsc_path() is not None, "runsc not found (set BOXER_RUNSC or run contrib/build-runsc.sh)")
    need((BUILD / "boxer-fcgi").exists(), "boxer-fcgi is not built")
    need(subprocess.run(["id", "-u", "boxer"], capture_output=True).returncode == 0,
         "the workers' user 'boxer' is missing (run contrib/ensure-user.sh)")
    need(shutil.which("nginx") and shutil.which("spawn-fcgi"), "nginx and spawn-fcgi are needed")


class Stack(Api):
    """nginx + spawn-fcgi + boxer-fcgi with a home, socket and port of its
    own.  config overrides the test defaults field by field."""

    def __init__(self, port, config=None, workers=4, images=True):
        super().__init__("127.0.0.1", port)
        self.tmp = Path(tempfile.mkdtemp(prefix="boxer-it-"))
        # The workers (the boxer user) and nginx's (www-data) pass through
        # to the home and the FastCGI socket; nobody may list it.
        os.chmod(self.tmp, 0o711)
        self.home = self.tmp / "home"
        self.prefix = self.tmp / "srv"
        self.runsc_root = self.home / "runsc"
        self.workers = workers
        self.config = {
            "home": str(self.home),
            "runsc_path": runsc_path(),
            "listen_addr": f"127.0.0.1:{port}",
            # A sandbox subnet per port: stacks side by side (and the Boxer
            # on :8080) never lease the same address.  No public resolver.
            "sandbox_subnet": f"10.{port // 256}.{port % 256}.0/24",
            "dns_servers": [],
            "output_limit_bytes": 65536,
            "upload_limit_bytes": 1048576,
            "max_limits": {"memory_mb": 1024, "wall_clock_secs": 60, "cpu_cores": 2,
                           "pids_limit": 256, "nofile": 4096},
            # Test images are loaded, never pulled: an unknown image is a 404
            # whatever answers on localhost:5000 (test_registry.py pulls).
            "pull_policy": "never",
            # As deployed: only the executor is root.
            "worker_user": "boxer",
            # The boxer-init of this build (batches and warm sandboxes).
            "init_path": str(BUILD / "boxer-init"),
        }
        self.config.update(config or {})
        self.config_path = self.tmp / "config.json"
        self.config_path.write_text(json.dumps(self.config))
        if images:
            load_test_images(self.config_path, self.tmp)

    def start(self, env=None, pool_args=()):
        env = dict(os.environ, **{SERVER_SECRET: "do-not-leak"}, **(env or {}))
        subprocess.run([str(ROOT / "contrib/pool.sh"), "start", "--config", str(self.config_path),
                        "--prefix", str(self.prefix), "--workers", str(self.workers),
                        "--bin", str(BUILD / "boxer-fcgi"), *pool_args], check=True, env=env)
        return self

    def master_pid(self):
        return int((self.prefix / "boxer-fcgi.pid").read_text())

    def worker_pids(self):
        return children(self.master_pid())

    def executor_pid(self):
        """The executor's master, which supervises its one server."""
        return int((self.prefix / "boxer-executor.pid").read_text())

    def executor_server_pid(self):
        kids = children(self.executor_pid())
        return kids[0] if kids else None

    def kill_executor_server(self, timeout=30):
        """SIGKILL the executor's server and wait for its master to start
        another, which sweeps what the dead one left."""
        server = self.executor_server_pid()
        os.kill(server, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while self.executor_server_pid() in (None, server):
            assert time.monotonic() < deadline, "no new executor server"
            time.sleep(0.1)

    def run_processes(self):
        """The executor's run children: one per admitted run."""
        server = self.executor_server_pid()
        return children(server) if server else []

    def sandboxes(self):
        """Ids of the sandboxes running under this stack's runsc root."""
        ids = []
        for d in Path("/proc").iterdir():
            try:
                args = (d / "cmdline").read_bytes().split(b"\0")
            except (OSError, ValueError):
                continue
            if (args[0] == b"runsc-sandbox"
                    and f"--root={self.runsc_root}".encode() in args and len(args) > 1):
                ids.append(args[-2].decode() if args[-1] == b"" else args[-1].decode())
        return ids

    def stop(self):
        subprocess.run([str(ROOT / "contrib/pool.sh"), "stop", "--prefix", str(self.prefix)],
                       check=True)

    def destroy(self):
        """Stop, and return what is left behind (nothing, or the test fails)."""
        self.stop()
        left = wait_no_leftovers(self.home, self.runsc_root) + mounts_under(self.tmp)
        if (self.home / "instance-id").exists():
            left += network_leftovers(self.home, (self.home / "instance-id").read_text(), True)
        keep = os.environ.get("BOXER_TEST_KEEP_LOGS")
        if keep:
            # For a developer chasing a failure: the stack's logs outlive it.
            dest = Path(keep) / self.tmp.name
            dest.mkdir(parents=True, exist_ok=True)
            for log in self.prefix.glob("*.log"):
                shutil.copy(log, dest)
        if not left:
            shutil.rmtree(self.tmp)
        return left


@pytest.fixture(scope="session")
def stack():
    check_prerequisites()
    s = Stack(int(os.environ.get("BOXER_TEST_PORT", "18080")),
              warm_config(BUSYBOX, PYTHON) if WARM else None).start()
    if WARM:
        # The pools learn their images' digests from runs.
        for image in (BUSYBOX, PYTHON):
            s.run(image=image, cmd=["true"])
        wait_warm(s)
        s.wait_for_warm = True
        s.warm_runs = 0
    try:
        yield s
        if WARM:
            # The runs did go through warm sandboxes (most of them: a burst
            # of concurrent runs empties a pool, the rest go cold).
            print(f"runs in warm sandboxes: {s.warm_runs}")
            least = int(os.environ.get("BOXER_TEST_WARM_MIN_RUNS", "40"))
            assert s.warm_runs >= least, f"too few runs in warm sandboxes: {s.warm_runs}"
    finally:
        left = s.destroy()
        assert not left, f"the suite left these behind: {left}"


@pytest.fixture
def make_stack():
    """Extra stacks with their own config, on ports after BOXER_TEST_PORT."""
    check_prerequisites()
    made = []
    base = int(os.environ.get("BOXER_TEST_PORT", "18080"))

    def make(config=None, **kw):
        s = Stack(base + 1 + len(made), config, **kw)
        made.append(s)
        return s

    yield make
    left = [x for s in made for x in s.destroy()]
    assert not left, f"left behind: {left}"


def warm_runs_total(stack):
    _, _, _, raw = stack.request("GET", "/metrics")
    for line in raw.decode().splitlines():
        if line.startswith("boxer_warm_runs_total "):
            return int(line.split()[1])
    return 0


@pytest.fixture
def api(stack):
    before = warm_runs_total(stack) if WARM else 0
    yield stack
    if WARM:
        # A restarted executor counts from 0 again.
        after = warm_runs_total(stack)
        stack.warm_runs += after - before if after >= before else after
    # Every test leaves nothing of its runs behind.
    left = wait_no_leftovers(stack.home, stack.runsc_root, pool=stack if WARM else None)
    assert not left, f"left behind: {left}"


def wait_warm(stack, timeout=60, must=True):
    """Until every warm pool of stack is full (must: or fail)."""
    deadline = time.monotonic() + timeout
    while True:
        _, body, _, _ = stack.request("GET", "/health")
        pools = body.get("warm_pool", [])
        if all(p["ready"] == p["size"] for p in pools):
            return pools
        if time.monotonic() > deadline:
            assert not must, f"warm pools not full after {timeout} s: {pools}"
            return pools
        time.sleep(0.1)
