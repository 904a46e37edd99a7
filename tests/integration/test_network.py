"""Network modes of runs: none (loopback only), sandbox (a namespace and
veth per run, NAT, firewall) and host (when the operator allows it).

Traffic goes only to addresses on this machine that the tests set up: a
test HTTP server and a dnsmasq resolver on the gateway address of the
stack's sandbox subnet (the host end of every run's veth, which the test
also puts on an interface of its own, so they listen before any run
exists), the API on an address of that interface, and an "outside" network
namespace of the test's own standing in for the Internet and for a
metadata service.  Nothing is ever sent to a public address: the stacks'
dns_servers point at the test resolver."""

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import (BUILD, BUSYBOX, PYTHON, Stack, check_prerequisites, need,
                      wait_no_leftovers)

BASE = int(os.environ.get("BOXER_TEST_PORT", "18080"))
# The module's stack; make_stack uses BASE + 1, + 2, ...
PORT = BASE + 8
HTTP_PORT = BASE + 10       # test server on the gateway, allowed by sandbox_host_allow
CLOSED_PORT = BASE + 11     # test server on the gateway, not allowed
HOST_PORT = BASE + 12       # test server on the host's loopback, for network: host
OUTSIDE_PORT = BASE + 13    # test server in the "outside" namespace
OCTET = BASE % 250          # makes the test's addresses differ per port range


def subnet(port):
    """A sandbox subnet per stack, unused by anything else on this machine."""
    return ipaddress.ip_network(f"10.213.{port % 250}.0/24")


GATEWAY = str(subnet(PORT)[1])
API_ADDR = f"10.214.{OCTET}.1"              # on an interface of the test
OUTSIDE = f"198.18.{OCTET}.1"               # not a denied range: the "Internet"
OUTSIDE_HOST_END = f"198.18.{OCTET}.254"
METADATA = f"169.254.77.{OCTET}"             # link-local, denied by default
NAME = "web.boxer.internal"                 # what the test resolver answers

# Tries each host:port with a 3 s timeout; prints {"host:port": "open" | error}.
PROBE = r"""
import json, socket, sys
res = {}
for spec in sys.argv[1:]:
    host, port = spec.rsplit(":", 1)
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, int(port)))
        res[spec] = "open"
    except OSError as e:
        res[spec] = f"{type(e).__name__}: {e}"
    finally:
        s.close()
print(json.dumps(res))
"""


def probe(api, targets, network="sandbox", expect=200):
    r = api.run(image=PYTHON, cmd=["python3", "-c", PROBE, *targets], network=network,
                limits={"wall_clock_secs": 30}, expect=expect)
    assert r["exit_code"] == 0, r
    return json.loads(r["stdout"])


def fetch(url):
    """GET from the host, never through a proxy the environment names."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return opener.open(url, timeout=5).read().decode()


def sh(script, **kw):
    return dict(image=BUSYBOX, cmd=["sh", "-c", script], **kw)


def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


# ---- test servers ---------------------------------------------------------

# Answers every GET with who asked; run in the outside namespace.
OUTSIDE_SERVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("outside, you are %s\n" % self.client_address[0]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"""


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from {self.server.server_address[0]}, you are {self.client_address[0]}\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True


def serve(addr, port):
    srv = Server((addr, port), Hello)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture(scope="module")
def net_env(tmp_path_factory):
    """The machinery around the stack: the dummy interface with the API's
    address, the resolver and servers on the gateway, the outside
    namespace."""
    check_prerequisites()
    need(shutil.which("dnsmasq"), "dnsmasq is needed (Debian dnsmasq-base)")
    need(shutil.which("ip") and shutil.which("nft"), "ip and nft are needed")
    tmp = tmp_path_factory.mktemp("net")
    ns, veth = f"bxtest{BASE}", f"bxtv{BASE}"
    procs, servers = [], []
    # What a killed earlier session may have left.
    ip("route", "del", f"{METADATA}/32", check=False)
    ip("link", "del", veth, check=False)
    ip("netns", "del", ns, check=False)
    try:
        # The "outside": a namespace with a routable address and a
        # link-local one, each answering HTTP.  The host end of its veth
        # also carries the address the API listens on, and the gateway.
        ip("netns", "add", ns)
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("addr", "add", f"{OUTSIDE_HOST_END}/24", "dev", veth)
        ip("addr", "add", f"{API_ADDR}/32", "dev", veth)
        ip("addr", "add", f"{GATEWAY}/32", "dev", veth)
        ip("link", "set", veth, "up")
        ip("-n", ns, "addr", "add", f"{OUTSIDE}/24", "dev", "eth0")
        ip("-n", ns, "addr", "add", f"{METADATA}/32", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "route", "add", "default", "via", OUTSIDE_HOST_END)
        ip("route", "add", f"{METADATA}/32", "via", OUTSIDE, "dev", veth)
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", OUTSIDE_SERVER,
             str(OUTSIDE_PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        log = tmp / "dnsmasq.log"
        procs.append(subprocess.Popen(
            ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--bind-dynamic",
             f"--listen-address={GATEWAY}", "--port=53", "--no-resolv", "--no-hosts",
             f"--address=/{NAME}/{GATEWAY}", "--log-queries", f"--log-facility={log}",
             "--user=root", "--pid-file="],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        servers += [serve(GATEWAY, HTTP_PORT), serve(GATEWAY, CLOSED_PORT),
                    serve("127.0.0.1", HOST_PORT)]
        # The outside server answers from the host (the route works).
        deadline = time.monotonic() + 10
        while True:
            try:
                fetch(f"http://{OUTSIDE}:{OUTSIDE_PORT}/")
                break
            except OSError:
                assert time.monotonic() < deadline, "the outside namespace does not answer"
                time.sleep(0.2)
        yield {"dns_log": log}
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        ip("route", "del", f"{METADATA}/32", check=False)
        ip("link", "del", veth, check=False)
        ip("netns", "del", ns, check=False)


def net_stack(net_env, extra=None):
    """A stack whose API listens only on the test's dummy address, with the
    test resolver as its DNS server and the test server's port (and DNS)
    allowed on the gateway.  Default deny ranges, host networking off;
    extra config over that.  A generator for a fixture: yields the stack,
    destroys it and checks it left nothing."""
    s = Stack(PORT, {
        "listen_addr": f"{API_ADDR}:{PORT}",
        "sandbox_subnet": str(subnet(PORT)),
        "dns_servers": [GATEWAY],
        "sandbox_host_allow": [53, HTTP_PORT],
        **(extra or {}),
    })
    s.host = API_ADDR
    s.start()
    s.dns_log = net_env["dns_log"]
    try:
        yield s
    finally:
        left = s.destroy()
        assert not left, f"left behind: {left}"


@pytest.fixture(scope="module")
def net(net_env):
    yield from net_stack(net_env)


@pytest.fixture
def api(net):
    yield net
    left = wait_no_leftovers(net.home, net.runsc_root)
    assert not left, f"left behind: {left}"


# ---- none -----------------------------------------------------------------

def test_none_is_loopback_only(api):
    r = api.run(**sh("ip -o addr; echo ---; ip route; echo ---; cat /proc/net/route"))
    addrs, routes, table = r["stdout"].split("---\n")
    assert [line.split()[1] for line in addrs.splitlines()] == ["lo", "lo"]
    assert "default" not in routes and "eth0" not in routes
    assert all(line.split()[1] == "dev" and "lo" in line for line in routes.splitlines())
    assert len(table.splitlines()) <= 1      # the header, no route
    # The test server a sandbox run reaches (test_sandbox_...) is out of reach.
    res = probe(api, [f"{GATEWAY}:{HTTP_PORT}", f"{API_ADDR}:{PORT}"], network="none")
    assert all("unreachable" in v for v in res.values()), res


def test_default_is_none(api):
    r = api.run(**sh("ip -o addr | grep -c -v ' lo '; true"))
    assert r["stdout"] == "0\n"


# ---- sandbox --------------------------------------------------------------

# Resolves argv[1], prints the address, then what GET http://argv[1]:argv[2]/ answers.
FETCH = r"""
import socket, sys, urllib.request
print(socket.gethostbyname(sys.argv[1]))
reply = urllib.request.urlopen(f"http://{sys.argv[1]}:{sys.argv[2]}/", timeout=10)
print(reply.read().decode(), end="")
"""


def test_sandbox_reaches_test_server_by_name(api):
    r = api.run(image=PYTHON, cmd=["python3", "-c", FETCH, NAME, str(HTTP_PORT)],
                network="sandbox")
    assert r["exit_code"] == 0, r
    resolved, body = r["stdout"].split("\n", 1)
    assert resolved == GATEWAY
    # The server saw the run's own address, inside the subnet: no NAT to
    # the host itself.
    assert body.startswith(f"hello from {GATEWAY}, you are ")
    you = ipaddress.ip_address(body.split("you are ")[1].strip())
    assert you in subnet(PORT) and str(you) != GATEWAY
    # The name went through the test resolver.
    assert f"query[A] {NAME} from {you}" in Path(api.dns_log).read_text()


def test_sandbox_resolver_files(api):
    r = api.run(**sh("cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; ip -o -4 addr "
                     "show eth0; ip route; ip -o -6 addr", network="sandbox"))
    resolv, hosts, net = r["stdout"].split("---\n")
    assert [l for l in resolv.splitlines() if not l.startswith("#")] == [f"nameserver {GATEWAY}"]
    me = net.split()[3].split("/")[0]
    # A /32 with the gateway on-link: every packet, to another run too, goes
    # through the host's firewall.
    assert net.split()[3] == f"{me}/32" and ipaddress.ip_address(me) in subnet(PORT)
    assert f"{me}\tboxer" in hosts and "127.0.0.1\tlocalhost" in hosts
    assert f"{GATEWAY} dev eth0" in net and f"default via {GATEWAY} dev eth0" in net
    assert "inet6" not in net.replace("::1", "")     # IPv4 only, loopback aside
    # Read-only for the run.
    r = api.run(**sh("echo nameserver 1.2.3.4 > /etc/resolv.conf", network="sandbox"))
    assert r["exit_code"] != 0


def test_sandbox_reaches_outside_through_nat(api):
    r = api.run(image=PYTHON, cmd=["python3", "-c", FETCH, OUTSIDE, str(OUTSIDE_PORT)],
                network="sandbox")
    assert r["exit_code"] == 0, r
    # Masqueraded: the outside saw the host's address, never the run's.
    assert r["stdout"] == f"{OUTSIDE}\noutside, you are {OUTSIDE_HOST_END}\n"


def test_sandbox_denied_ranges(api):
    res = probe(api, [f"{METADATA}:{OUTSIDE_PORT}", f"{OUTSIDE}:{OUTSIDE_PORT}"])
    # The same namespace answers on its routable address, not on the
    # link-local one: the firewall dropped it.
    assert res[f"{OUTSIDE}:{OUTSIDE_PORT}"] == "open", res
    assert res[f"{METADATA}:{OUTSIDE_PORT}"] != "open", res
    # Whereas the host itself reaches it (the route is there).
    assert fetch(f"http://{METADATA}:{OUTSIDE_PORT}/").startswith("outside")


def test_sandbox_cannot_reach_host_services(api):
    res = probe(api, [f"{API_ADDR}:{PORT}", f"{GATEWAY}:{PORT}", f"{GATEWAY}:{CLOSED_PORT}",
                      f"{OUTSIDE_HOST_END}:{HTTP_PORT}", f"{GATEWAY}:{HTTP_PORT}"])
    # The allowed port on the gateway is open ...
    assert res.pop(f"{GATEWAY}:{HTTP_PORT}") == "open"
    # ... the API (nginx) on the host's other address, a test server on a
    # port not allowed, and the host's other addresses are not.
    assert all(v != "open" for v in res.values()), res
    assert all("timed out" in v for v in res.values()), res      # dropped, not refused
    # The API answers from the host on that address meanwhile.
    status, body, _, _ = api.request("GET", "/health")
    assert status == 200 and body["status"] == "ok"


LISTEN = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7777))
s.listen(8)
s.settimeout(40)
print("listening", flush=True)
peers = []
while True:
    c, a = s.accept()
    peers.append(a[0])
    data = c.recv(16)
    c.sendall(b"hi")
    c.close()
    if data == b"quit":
        break
print(" ".join(peers))
"""


def run_addresses(home, sub):
    """Addresses leased to the stack's runs right now."""
    d = Path(home) / "network" / "leases"
    return {str(sub[2 + int(p.name)]) for p in d.iterdir() if p.name.isdigit()}


def test_two_sandbox_runs_cannot_reach_each_other(api):
    result = {}
    t = threading.Thread(target=lambda: result.update(
        a=api.run(image=PYTHON, cmd=["python3", "-c", LISTEN], network="sandbox",
                  limits={"wall_clock_secs": 50})))
    t.start()
    deadline = time.monotonic() + 20
    while not (leased := run_addresses(api.home, subnet(PORT))):
        assert time.monotonic() < deadline, "run A got no address"
        time.sleep(0.1)
    (a_addr,) = leased

    def talk(msg):
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection((a_addr, 7777), timeout=3) as c:
                    c.sendall(msg)
                    return c.recv(16)
            except OSError:
                assert time.monotonic() < deadline, "run A never listened"
                time.sleep(0.2)

    # The host reaches A: A is up and listening ...
    assert talk(b"ping") == b"hi"
    # ... while B, running at the same time, does not.
    res = probe(api, [f"{a_addr}:7777"])
    assert res[f"{a_addr}:7777"] != "open", res
    assert talk(b"quit") == b"hi"
    t.join(timeout=60)
    a = result["a"]
    assert a["exit_code"] == 0, a
    # A saw the host twice (from the gateway) and nobody else.
    assert a["stdout"].splitlines()[-1] == f"{GATEWAY} {GATEWAY}"


def test_sandbox_small_pool_own_deny_ranges(make_stack, net_env):
    """With room for one run, a second concurrent one is a 503 busy with
    nothing left of it, and the first is unharmed.  The stack's own
    sandbox_deny_ranges replace the default ones."""
    s = make_stack({"sandbox_subnet": f"10.213.{(BASE + 1) % 250}.252/30",
                    "dns_servers": [], "sandbox_deny_ranges": [f"{OUTSIDE}/32"]},
                   workers=2).start()
    result = {}
    t = threading.Thread(target=lambda: result.update(
        a=s.run(**sh("sleep 4; echo first", network="sandbox", limits={"wall_clock_secs": 20}))))
    t.start()
    deadline = time.monotonic() + 20
    while not (Path(s.home) / "network" / "leases" / "0").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status, body, resp, _ = s.request("POST", "/run", sh("echo second", network="sandbox"))
    assert status == 503 and body["error"]["code"] == "busy", body
    assert "every sandbox network address is in use" in body["error"]["message"]
    assert resp.getheader("Retry-After")
    t.join(timeout=60)
    assert result["a"]["stdout"] == "first\n"
    # With the address free again, runs go on; the configured range is
    # denied, the link-local one no longer is.
    res = probe(s, [f"{OUTSIDE}:{OUTSIDE_PORT}", f"{METADATA}:{OUTSIDE_PORT}"])
    assert res == {f"{OUTSIDE}:{OUTSIDE_PORT}": "TimeoutError: timed out",
                   f"{METADATA}:{OUTSIDE_PORT}": "open"}, res


@pytest.mark.parametrize("field, value, needle", [
    ("sandbox_subnet", "10.200.0.1/16",
     "'sandbox_subnet': '10.200.0.1/16' has host bits set; did you mean 10.200.0.0/16?"),
    ("sandbox_subnet", "169.254.0.0/16", "overlaps 169.254.0.0/16"),
    ("sandbox_subnet", "10.0.0.0/31", "prefix between /8 and /30"),
    ("sandbox_subnet", f"198.18.{OCTET}.0/24",
     f"contains the host's address {OUTSIDE_HOST_END} on bxtv{BASE}"),
    ("dns_servers", ["8.8.8.8", "resolver.example"],
     "'dns_servers' must hold IP addresses, got 'resolver.example'"),
    ("sandbox_deny_ranges", ["10.0.0.0/8", "fd00::/8"],
     "'sandbox_deny_ranges': 'fd00::/8' is not an IPv4 address or range"),
])
def test_bad_network_config_stops_startup(tmp_path, net_env, field, value, needle):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"home": str(tmp_path / "home"), field: value}))
    p = subprocess.run([str(BUILD / "boxer-executor"), "--config", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and needle in p.stderr, p.stderr
    instance = (tmp_path / "home" / "instance-id").read_text()
    assert subprocess.run(["nft", "list", "table", "inet", f"boxer_{instance}"],
                          capture_output=True).returncode != 0


# ---- host -----------------------------------------------------------------

def test_host_refused_by_default(api):
    status, body, _, _ = api.request("POST", "/run", sh("true", network="host"))
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert "allow_host_network" in body["error"]["message"]


def test_host_when_enabled(make_stack, net_env):
    s = make_stack({"allow_host_network": True, "dns_servers": ["127.0.0.53"],
                    "sandbox_subnet": str(subnet(BASE + 1))}).start()
    get = ["python3", "-c", "import urllib.request; print(urllib.request.urlopen("
             f"'http://127.0.0.1:{HOST_PORT}/', timeout=5).read().decode(), end='')"]
    r = s.run(image=PYTHON, cmd=get, network="host")
    assert r["stdout"] == "hello from 127.0.0.1, you are 127.0.0.1\n", r
    # The same program in a sandbox of its own finds nothing on its loopback.
    r = s.run(image=PYTHON, cmd=get, network="none")
    assert r["exit_code"] != 0 and "Connection refused" in r["stderr"]
    # The host's interfaces are visible; the resolver is still Boxer's.
    r = s.run(**sh("ip -o link; cat /etc/resolv.conf", network="host"))
    assert "eth0" in r["stdout"] and "nameserver 127.0.0.53" in r["stdout"]


# ---- cleanup --------------------------------------------------------------

def test_killed_worker_network_swept(api):
    """A worker killed mid-run: the executor cancels its run and removes
    namespace, veth, lease and firewall element with the sandbox."""
    before = api.worker_pids()
    result = {}
    t = threading.Thread(target=lambda: result.update(
        status=api.request("POST", "/run", sh("sleep 30", network="sandbox"))[0]))
    t.start()
    deadline = time.monotonic() + 20
    while not run_addresses(api.home, subnet(PORT)) or not any(
            (Path(api.home) / "netns").iterdir()):
        assert time.monotonic() < deadline, "the run set up no network"
        time.sleep(0.1)
    while not api.sandboxes():
        assert time.monotonic() < deadline, "the executor started no sandbox"
        time.sleep(0.1)
    time.sleep(0.5)
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    t.join(timeout=60)
    assert result["status"] == 502
    assert wait_no_leftovers(api.home, api.runsc_root, timeout=20) == []


def test_no_leftovers_after_200_runs(api):
    """Sandbox runs that succeed, time out and fail to start, four at a
    time; nothing of any is left, and it stays within a time bound."""
    jobs = []
    for i in range(200):
        if i % 40 == 7:
            jobs.append(sh("sleep 10", network="sandbox", limits={"wall_clock_secs": 1}))
        elif i % 40 == 23:
            jobs.append(dict(image=BUSYBOX, cmd=["/no/such/program"], network="sandbox"))
        else:
            jobs.append(sh(f"ip -o -4 addr show eth0 >/dev/null && echo {i}", network="sandbox"))
    results, errors = {}, []
    lock = threading.Lock()

    def worker(k):
        while True:
            with lock:
                if not jobs:
                    return
                i, job = 200 - len(jobs), jobs.pop(0)
            try:
                status, body, _, raw = api.request("POST", "/run", job)
                results[i] = (status, body)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=400)
    elapsed = time.monotonic() - t0
    assert not errors
    assert len(results) == 200
    for i, (status, body) in results.items():
        assert status == 200, (i, body)
        if i % 40 == 7:
            assert body["timed_out"] is True
        elif i % 40 == 23:
            assert body["exit_code"] == 127
        else:
            assert body["stdout"] == f"{i}\n", (i, body)
    assert elapsed < 300, f"200 sandbox runs took {elapsed:.0f} s"
    assert wait_no_leftovers(api.home, api.runsc_root) == []
