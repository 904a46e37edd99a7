"""What "Networks of runs" claims beyond test_network.py, with its
machinery (the outside namespace, the stack on the test's address):
spoofed sources are dropped, nothing outside opens a connection to a run,
and a second Boxer on the same sandbox_subnet fails its runs with a message
saying so."""

import ipaddress
import json
import socket
import subprocess
import threading
import time
from pathlib import Path

from conftest import BUSYBOX, PYTHON
from test_network import (BASE, LISTEN, OUTSIDE, OUTSIDE_HOST_END, PORT, api, ip,  # noqa: F401
                          net, net_env, run_addresses, subnet)

NS = f"bxtest{BASE}"        # test_network's outside namespace
UDP_PORT = BASE + 14

# Counts UDP datagrams for a few seconds in the outside namespace; prints
# what arrived, from whom.
UDP_LISTENER = r"""
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(0.2)
print("ready", flush=True)
got, end = [], time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try:
        data, addr = s.recvfrom(64)
        got.append([data.decode(), addr[0]])
    except socket.timeout:
        pass
print(json.dumps(got), flush=True)
"""

# Sends one datagram from each (source, payload) given, bound to that source.
UDP_SENDER = r"""
import socket, sys
dst, port = sys.argv[1], int(sys.argv[2])
for spec in sys.argv[3:]:
    src, payload = spec.split("=")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_IP, 15, 1)      # IP_FREEBIND: whatever eth0 holds now
    s.bind((src, 0))
    for _ in range(3):
        s.sendto(payload.encode(), (dst, port))
    s.close()
"""


def hold_run(api, result, secs=25, cmd=None):
    t = threading.Thread(target=lambda: result.update(r=api.run(
        image=PYTHON if cmd else BUSYBOX, cmd=cmd or ["sleep", str(secs)], network="sandbox",
        limits={"wall_clock_secs": secs + 20})))
    t.start()
    deadline = time.monotonic() + 20
    while not (leased := run_addresses(api.home, subnet(PORT))):
        assert time.monotonic() < deadline, "the run got no address"
        time.sleep(0.1)
    (addr,) = leased
    netns = api.home / "netns"
    while not [p for p in netns.iterdir() if p.name.startswith("r_")]:
        assert time.monotonic() < deadline, "the run has no namespace"
        time.sleep(0.1)
    (ns_file,) = [p for p in netns.iterdir() if p.name.startswith("r_")]
    return t, addr, ns_file


def test_spoofed_source_dropped(api):
    """Packets leaving a run's veth with a source other than the run's own
    address are dropped by the firewall (the anti-spoofing rule). A run
    cannot forge its source from inside gVisor (no raw sockets, no
    capabilities), so the test sends from the run's network namespace on
    the host side, through the very veth the run uses: once with the run's
    address (forwarded to the outside, masqueraded) and once with a
    neighbour's (dropped)."""
    result = {}
    t, addr, ns_file = hold_run(api, result)
    spoofed = str(subnet(PORT)[200])
    listener = subprocess.Popen(["ip", "netns", "exec", NS, "/usr/bin/python3", "-c",
                                 UDP_LISTENER, str(UDP_PORT), "15"],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline() == "ready\n"
        inside = ["nsenter", f"--net={ns_file}"]
        gw = str(subnet(PORT)[1])
        # runsc may still be taking eth0's configuration into its netstack
        # when the namespace appears: set the kernel's side up again until
        # the datagrams leave.
        deadline = time.monotonic() + 10
        while True:
            for a in (addr, spoofed):
                subprocess.run(inside + ["ip", "addr", "replace", f"{a}/32", "dev", "eth0"],
                               check=True)
            subprocess.run(inside + ["ip", "link", "set", "eth0", "up"], check=True)
            subprocess.run(inside + ["ip", "route", "replace", gw, "dev", "eth0"], check=True)
            subprocess.run(inside + ["ip", "route", "replace", "default", "via", gw], check=True)
            sent = subprocess.run(inside + ["/usr/bin/python3", "-c", UDP_SENDER, OUTSIDE,
                                            str(UDP_PORT), f"{addr}=genuine",
                                            f"{spoofed}=spoofed"], capture_output=True, text=True)
            if sent.returncode == 0:
                break
            assert time.monotonic() < deadline, sent.stderr
            time.sleep(0.5)
        got = json.loads(listener.stdout.readline())
    finally:
        listener.wait(timeout=30)
        t.join(timeout=60)
    payloads = {p for p, _ in got}
    # The genuine source arrives (masqueraded); the spoofed one never does.
    assert "genuine" in payloads and [a for p, a in got if p == "genuine"][0] == OUTSIDE_HOST_END, got
    assert "spoofed" not in payloads, got
    assert result["r"]["exit_code"] == 0


def test_no_inbound_connection_from_outside(api):
    """A run listening on its address: the host reaches it, a machine
    outside (the outside namespace, routed through this host) does not."""
    result = {}
    t, addr, _ = hold_run(api, result, secs=40, cmd=["python3", "-c", LISTEN])
    connect = ("import socket, sys\n"
               "try:\n"
               "    c = socket.create_connection((sys.argv[1], 7777), timeout=3); print('open')\n"
               "except OSError as e:\n"
               "    print(type(e).__name__)\n")
    try:
        # The route from the outside to the run's address goes through the
        # host, like a packet from the Internet would.
        ip("-n", NS, "route", "replace", f"{addr}/32", "via", OUTSIDE_HOST_END)
        deadline = time.monotonic() + 20
        while True:       # the run listens (the host reaches it) ...
            try:
                with socket.create_connection((addr, 7777), timeout=3) as c:
                    c.sendall(b"ping")
                    assert c.recv(16) == b"hi"
                break
            except OSError:
                assert time.monotonic() < deadline, "the run never listened"
                time.sleep(0.2)
        # ... the outside does not.
        out = subprocess.run(["ip", "netns", "exec", NS, "/usr/bin/python3", "-c", connect, addr],
                             capture_output=True, text=True, check=True).stdout.strip()
        assert out != "open", out
        with socket.create_connection((addr, 7777), timeout=3) as c:
            c.sendall(b"quit")
            c.recv(16)
    finally:
        ip("-n", NS, "route", "del", f"{addr}/32", check=False)
        t.join(timeout=60)
    r = result["r"]
    assert r["exit_code"] == 0, r
    # Only the host (from the gateway) got through.
    assert r["stdout"].splitlines()[-1] == f"{subnet(PORT)[1]} {subnet(PORT)[1]}", r


def test_second_boxer_on_the_same_subnet(api, make_stack):
    """Known limit: one Boxer per sandbox_subnet. A second one's sandbox run
    fails (500) while the first holds the same address, and its log says
    why; the first is unharmed."""
    second = make_stack({"sandbox_subnet": str(subnet(PORT)), "dns_servers": []},
                        workers=1).start()
    result = {}
    t, addr, _ = hold_run(api, result, secs=20)
    try:
        # The second pool hands addresses out round-robin and would reach
        # the one the first Boxer's run holds in turn; its hint (executor/
        # ipam.c) makes that the first it tries.
        leases = second.home / "network" / "leases"
        leases.mkdir(parents=True, exist_ok=True)
        (leases / ".next").write_text(f"{int(ipaddress.ip_address(addr)) - int(subnet(PORT)[2])}\n")
        status, body, _, raw = second.request("POST", "/run", {
            "image": BUSYBOX, "cmd": ["true"], "network": "sandbox"})
        assert t.is_alive(), "the first run ended before the second asked"
        assert status == 500 and body["error"]["code"] == "internal", raw[:300]
        log = (second.prefix / "boxer.log").read_text()
        assert "another Boxer use the same sandbox_subnet?" in log, log[-2000:]
        # Runs without a network still work there.
        assert second.run(image=BUSYBOX, cmd=["echo", "ok"])["stdout"] == "ok\n"
    finally:
        t.join(timeout=60)
    assert result["r"]["exit_code"] == 0 and result["r"]["timed_out"] is False
