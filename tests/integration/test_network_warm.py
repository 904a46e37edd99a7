"""Network "sandbox" for what boots with boxer-init: a warm pool's
sandboxes, a batch's shared sandbox and a session's.  Each gets what a
cold run gets (a namespace, veth, lease and firewall element of its own,
the test resolver, the deny ranges and host rules), keeps it for all it
runs, and leaves nothing of it behind.

Uses test_network's machinery (the outside namespace, the resolver and
test servers on the gateway, the API on the test's address), on a stack
of its own with a pool of network "sandbox": BOXER_TEST_PORT+8, as
test_network's (the two modules never run at once)."""

import ipaddress
import json
import re
from pathlib import Path

import pytest

from conftest import BUILD, BUSYBOX, PYTHON, wait_no_leftovers, wait_warm
from test_network import (API_ADDR, CLOSED_PORT, FETCH, GATEWAY, HTTP_PORT, METADATA, NAME,  # noqa: F401
                          OUTSIDE_PORT, PORT, PROBE, net_env, net_stack, run_addresses, subnet)


@pytest.fixture(scope="module")
def wnet(net_env):
    yield from net_stack(net_env, {
        "warm_pool": [{"image": PYTHON, "network": "sandbox", "size": 1}],
        "init_path": str(BUILD / "boxer-init"),
    })


@pytest.fixture
def api(wnet):
    yield wnet
    left = wait_no_leftovers(wnet.home, wnet.runsc_root, pool=wnet)
    assert not left, f"left behind: {left}"


def warm_runs(s):
    raw = s.request("GET", "/metrics")[3].decode()
    return int(re.search(r"^boxer_warm_runs_total (\d+)$", raw, re.M).group(1))


def fetched(r):
    """What FETCH printed: the address the test server saw."""
    assert r["exit_code"] == 0, r
    resolved, body = r["stdout"].split("\n", 1)
    assert resolved == GATEWAY, r
    assert body.startswith(f"hello from {GATEWAY}, you are "), r
    you = ipaddress.ip_address(body.split("you are ")[1].strip())
    assert you in subnet(PORT) and str(you) != GATEWAY
    return str(you)


def probed(r):
    assert r["exit_code"] == 0, r
    return json.loads(r["stdout"])


FORBIDDEN = [f"{GATEWAY}:{CLOSED_PORT}", f"{API_ADDR}:{PORT}", f"{METADATA}:{OUTSIDE_PORT}"]


def test_pool_sandbox_serves_a_sandbox_run(api):
    # The first run names the digest (cold); then the pool boots one.
    fetched(api.run(image=PYTHON, cmd=["python3", "-c", FETCH, NAME, str(HTTP_PORT)],
                    network="sandbox"))
    assert wait_warm(api) == [{"image": PYTHON, "network": "sandbox", "size": 1, "ready": 1}]
    # Booted with its network: a namespace and a lease before any run.
    assert len(run_addresses(api.home, subnet(PORT))) == 1
    before = warm_runs(api)
    you = fetched(api.run(image=PYTHON, cmd=["python3", "-c", FETCH, NAME, str(HTTP_PORT)],
                          network="sandbox"))
    assert warm_runs(api) == before + 1
    assert f"query[A] {NAME} from {you}" in Path(api.dns_log).read_text()
    # The firewall holds for a warm sandbox as for a cold run.
    wait_warm(api)
    res = probed(api.run(image=PYTHON, cmd=["python3", "-c", PROBE, *FORBIDDEN,
                                            f"{GATEWAY}:{HTTP_PORT}"],
                         network="sandbox", limits={"wall_clock_secs": 30}))
    assert warm_runs(api) == before + 2
    assert res[f"{GATEWAY}:{HTTP_PORT}"] == "open", res
    assert all(res[t] != "open" for t in FORBIDDEN), res
    # A run with network "none" never takes it: no eth0, and cold.
    wait_warm(api)
    r = api.run(image=PYTHON, cmd=["python3", "-c", "import socket; print(socket.if_nameindex())"])
    assert "eth0" not in r["stdout"], r
    assert warm_runs(api) == before + 2


def test_session_keeps_its_network(api):
    status, body, _, raw = api.request("POST", "/sessions",
                                       {"image": PYTHON, "network": "sandbox"})
    assert status == 201, raw[:500]
    sid = body["id"]
    assert body["network"] == "sandbox"
    try:
        def ex(cmd, **kw):
            status, r, _, raw = api.request("POST", f"/sessions/{sid}/exec", {"cmd": cmd, **kw})
            assert status == 200, raw[:500]
            return r

        first = fetched(ex(["python3", "-c", FETCH, NAME, str(HTTP_PORT)]))
        # The same sandbox, the same address, exec after exec.
        assert fetched(ex(["python3", "-c", FETCH, NAME, str(HTTP_PORT)])) == first
        assert first in run_addresses(api.home, subnet(PORT))
        res = probed(ex(["python3", "-c", PROBE, *FORBIDDEN], timeout_secs=30))
        assert all(v != "open" for v in res.values()), res
        # Read-only name files, as a cold run's.
        r = ex(["sh", "-c", "echo nameserver 127.0.0.9 > /etc/resolv.conf"])
        assert r["exit_code"] != 0
        assert api.request("GET", f"/sessions/{sid}")[1]["network"] == "sandbox"
    finally:
        assert api.request("DELETE", f"/sessions/{sid}")[0] == 204
    # Its address is free again once it is gone.
    assert first not in run_addresses(api.home, subnet(PORT))


def test_session_network_host_refused(api):
    status, body, _, _ = api.request("POST", "/sessions", {"image": BUSYBOX, "network": "host"})
    assert status == 403 and "allow_host_network" in body["error"]["message"], body


def test_batch_shares_one_network(api):
    runs = [{"cmd": ["python3", "-c", FETCH, NAME, str(HTTP_PORT)]} for _ in range(2)]
    runs.append({"cmd": ["python3", "-c", PROBE, *FORBIDDEN], "limits": {"wall_clock_secs": 30}})
    status, b, _, raw = api.request("POST", "/batch", {"image": PYTHON, "network": "sandbox",
                                                       "parallelism": 2, "runs": runs})
    assert status == 200, raw[:500]
    one, two = (fetched(r) for r in b["results"][:2])
    assert one == two
    assert all(v != "open" for v in probed(b["results"][2]).values()), b["results"][2]
    # An image without a pool: the batch boots its sandbox with the network.
    status, b, _, raw = api.request("POST", "/batch", {
        "image": BUSYBOX, "network": "sandbox",
        "runs": [{"cmd": ["wget", "-q", "-O", "-", f"http://{NAME}:{HTTP_PORT}/"]}]})
    assert status == 200, raw[:500]
    r = b["results"][0]
    assert r["exit_code"] == 0 and r["stdout"].startswith(f"hello from {GATEWAY}, you are "), r


def test_executor_killed_with_a_network_pool(api):
    """The killed server's pool sandboxes go with their namespaces, veths,
    leases and firewall elements: the next server sweeps them all."""
    api.run(image=PYTHON, cmd=["true"], network="sandbox")
    wait_warm(api)
    assert len(run_addresses(api.home, subnet(PORT))) == 1
    api.kill_executor_server()
    left = wait_no_leftovers(api.home, api.runsc_root, timeout=30)
    assert not left, f"left behind by the killed server: {left}"
