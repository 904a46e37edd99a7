"""Pulling images from real registries on loopback: Debian's docker-registry
anonymous, with htpasswd basic auth, and with token auth against a token
issuer of ours; multi-platform indexes, digest references, corrupted blobs,
hostile layers, concurrent first pulls, deletion and garbage collection,
through the real nginx -> boxer-fcgi -> runsc stack.

Ports: the stacks use BOXER_TEST_PORT+1.. (conftest's make_stack) and
BOXER_TEST_PORT+8 (this module's stack); registries, token issuers and
proxies BOXER_TEST_PORT+10..+19."""

import os
import pwd
import shutil
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import ROOT, Stack, check_prerequisites, need
from registry_fixtures import (REGISTRY_BIN, ConnectionCounter, Image, Index, Proxy, Registry,
                               TokenIssuer, busybox_entries)

BASE = int(os.environ.get("BOXER_TEST_PORT", "18080"))
STACK_PORT = BASE + 8
REGISTRY_PORT = BASE + 10
UNUSED_PORT = BASE + 19         # nothing ever listens here


def need_registry():
    check_prerequisites()
    need(os.path.exists(REGISTRY_BIN), "docker-registry is needed (contrib/install-deps.sh)")
    need(shutil.which("skopeo"), "skopeo is needed (contrib/install-deps.sh)")


@pytest.fixture
def ports():
    """Ports for this test's registries and servers, after the module's."""
    it = iter(range(BASE + 11, BASE + 19))
    return lambda: next(it)


def insecure(*hosts, **extra):
    """A stack config pulling plain HTTP from hosts."""
    cfg = {"pull_policy": "if-not-present", "registry_timeout_secs": 5,
           "registries": {h: {"insecure": True} for h in hosts}}
    cfg.update(extra)
    return cfg


def busybox_layout():
    out = subprocess.run([str(ROOT / "contrib/images/build-images.sh"), "busybox"], check=True,
                         capture_output=True, text=True).stdout.split()
    return out[1]


def unique_image(tag, extra_entries=(), **kw):
    """busybox plus a layer of its own, so its digest is new."""
    return Image([busybox_entries(), [("etc/", "dir", None), ("etc/image", "file", tag),
                                      *extra_entries]], **kw)


def store(stack, sub):
    d = stack.home / "images" / sub
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def error(stack, method, path, body=None):
    status, body, _, raw = stack.request(method, path, body)
    assert body is not None and "error" in body, raw[:300]
    return status, body["error"]["code"], body["error"]["message"]


def run(stack, image, *cmd, expect=200):
    return stack.run(expect=expect, image=image, cmd=list(cmd))


def images(stack):
    status, body, _, raw = stack.request("GET", "/images")
    assert status == 200, raw
    return {i["reference"]: i for i in body["images"]}


def tmp_once_tidied(stack, timeout=120):
    """The store's tmp/ once the worker has removed what a failed pull
    unpacked, which it does after answering; waits that long at most."""
    deadline = time.monotonic() + timeout
    while store(stack, "tmp") and time.monotonic() < deadline:
        time.sleep(0.1)
    return store(stack, "tmp")


def assert_nothing_cached(stack):
    assert tmp_once_tidied(stack) == []
    assert store(stack, "rootfs") == []
    assert images(stack) == {}


@pytest.fixture(scope="module")
def registry():
    need_registry()
    reg = Registry(REGISTRY_PORT)
    try:
        reg.push_layout(busybox_layout(), "boxer/busybox:latest")
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def boxer(registry):
    """A stack pulling from the module's registry, four workers."""
    s = Stack(STACK_PORT, insecure(registry.host), images=False).start()
    try:
        yield s
    finally:
        left = s.destroy()
        assert not left, f"left behind: {left}"


# --- anonymous pulls ------------------------------------------------------

def test_pull_on_first_run_then_reuse(boxer, registry):
    ref = f"{registry.host}/boxer/busybox:latest"
    before = len(registry.requests())
    r = run(boxer, ref, "echo", "pulled")
    assert r["stdout"] == "pulled\n"
    assert r["image"] == ref
    assert r["image_digest"].startswith("sha256:")
    after_first = registry.requests()
    assert len(after_first) > before
    # Every blob the manifest names was fetched, each once.
    gets = registry.blob_gets("boxer/busybox")
    assert gets and all(n == 1 for n in gets.values()), gets

    listed = images(boxer)[ref]
    assert listed["digest"] == r["image_digest"]
    assert listed["size"] > 1_000_000
    assert time.time() - time.mktime(time.strptime(listed["last_used"],
                                                   "%Y-%m-%dT%H:%M:%SZ")) < 3600 * 24

    # Warm: no registry request at all.
    r2 = run(boxer, ref, "echo", "warm")
    assert r2["image_digest"] == r["image_digest"]
    assert len(registry.requests()) == len(after_first)


def test_unknown_repository_and_tag(boxer, registry):
    for ref in (f"{registry.host}/boxer/nosuchrepo:1", f"{registry.host}/boxer/busybox:nosuchtag"):
        status, code, msg = error(boxer, "POST", "/run", {"image": ref, "cmd": ["true"]})
        assert (status, code) == (404, "image_not_found"), msg
        assert ref in msg
        assert str(boxer.home) not in msg
        status, code, msg = error(boxer, "POST", "/images/pull", {"image": ref})
        assert (status, code) == (404, "image_not_found")
        assert ref in msg
    # An unknown digest of a known repository.
    ref = f"{registry.host}/boxer/busybox@sha256:" + "ab" * 32
    status, code, msg = error(boxer, "POST", "/images/pull", {"image": ref})
    assert (status, code) == (404, "image_not_found"), msg


def test_unreachable_and_plain_http_not_listed(registry, make_stack):
    cfg = insecure(f"127.0.0.1:{UNUSED_PORT}")
    # Configured (loopback registries must be), but not as plain HTTP.
    cfg["registries"][registry.host] = {}
    s = make_stack(cfg, images=False).start()
    t0 = time.monotonic()
    status, code, msg = error(s, "POST", "/run", {"image": f"127.0.0.1:{UNUSED_PORT}/a/b:1",
                                                  "cmd": ["true"]})
    assert (status, code) == (502, "registry_error"), msg
    assert f"127.0.0.1:{UNUSED_PORT}/a/b:1" in msg
    assert time.monotonic() - t0 < 20
    # The module's registry speaks plain HTTP, which this stack was not told.
    status, code, msg = error(s, "POST", "/images/pull",
                              {"image": f"{registry.host}/boxer/busybox:latest"})
    assert (status, code) == (502, "registry_error"), msg
    assert '"insecure": true' in msg
    assert_nothing_cached(s)


def test_pull_policies(registry, make_stack):
    ref = f"{registry.host}/boxer/busybox:latest"
    always = make_stack(insecure(registry.host, pull_policy="always"), images=False).start()
    run(always, ref, "true")
    n = len(registry.requests())
    blobs = registry.blob_gets()
    run(always, ref, "true")
    new = registry.requests()[n:]
    # The registry was asked for the manifest again, and nothing else.
    assert new and all("/manifests/" in path for _, path, _ in new), new
    assert registry.blob_gets() == blobs

    never = make_stack(insecure(registry.host, pull_policy="never"), images=False).start()
    n = len(registry.requests())
    status, code, msg = error(never, "POST", "/run", {"image": ref, "cmd": ["true"]})
    assert (status, code) == (404, "image_not_found")
    assert len(registry.requests()) == n
    # An explicit pull is refused too: "never" means no registry is asked.
    status, code, msg = error(never, "POST", "/images/pull", {"image": ref})
    assert (status, code) == (403, "forbidden"), msg
    assert 'pull_policy is "never"' in msg
    assert len(registry.requests()) == n
    assert_nothing_cached(never)


def test_mirror(registry, make_stack):
    s = make_stack({"pull_policy": "if-not-present",
                    "registries": {"mirrored.example": {"mirror": f"http://{registry.host}"}}},
                   images=False).start()
    r = run(s, "mirrored.example/boxer/busybox:latest", "echo", "via mirror")
    assert r["stdout"] == "via mirror\n"
    assert "mirrored.example/boxer/busybox:latest" in images(s)
    status, code, msg = error(s, "POST", "/images/pull", {"image": "mirrored.example/boxer/no:1"})
    assert (status, code) == (404, "image_not_found")
    # Messages name the registry as the client did, never the mirror.
    assert "mirrored.example" in msg and str(registry.port) not in msg


# --- what images hold -----------------------------------------------------

def test_multi_platform_index(registry, make_stack):
    amd = unique_image("amd", [("platform", "file", "amd64")])
    arm = Image([[("platform", "file", "arm64")]], arch="arm64")
    other = Image([[("x", "file", "attestation")]], arch="unknown", os_name="unknown")
    index_digest = registry.push_index("boxer/multi", "1", Index([arm, amd, other]))
    registry.push_index("boxer/multi-docker", "1",
                        Index([unique_image("docker-list", docker=True),
                               Image([[("p", "file", "arm")]], arch="arm64", docker=True)],
                              docker=True))
    registry.push_index("boxer/amd-only", "1", Index([unique_image("amd-only")]))
    s = make_stack(insecure(registry.host), images=False, workers=2).start()

    r = run(s, f"{registry.host}/boxer/multi:1", "cat", "/platform")
    assert r["stdout"] == "amd64"
    assert r["image_digest"] == amd.manifest.digest
    # By the index's digest: the same image.
    r = run(s, f"{registry.host}/boxer/multi@{index_digest}", "cat", "/platform")
    assert r["image_digest"] == amd.manifest.digest
    # A Docker manifest list with Docker schema 2 manifests.
    r = run(s, f"{registry.host}/boxer/multi-docker:1", "cat", "/etc/image")
    assert r["stdout"] == "docker-list"

    arm_stack = make_stack(insecure(registry.host, image_platform="linux/arm64"),
                           images=False, workers=1).start()
    status, body, _, raw = arm_stack.request("POST", "/images/pull",
                                             {"image": f"{registry.host}/boxer/multi:1"})
    assert status == 200, raw
    assert body["digest"] == arm.manifest.digest
    status, code, msg = error(arm_stack, "POST", "/images/pull",
                              {"image": f"{registry.host}/boxer/amd-only:1"})
    assert (status, code) == (404, "image_not_found"), msg
    assert "no variant for linux/arm64 (it offers linux/amd64)" in msg
    # A single-manifest image for another platform.
    status, code, msg = error(arm_stack, "POST", "/images/pull",
                              {"image": f"{registry.host}/boxer/busybox:latest"})
    assert (status, code) == (400, "invalid_request"), msg
    assert "linux/amd64" in msg and "linux/arm64" in msg


def test_digest_reference(boxer, registry):
    img = unique_image("by-digest")
    digest = registry.push_image("boxer/bydigest", "v1", img)
    ref = f"{registry.host}/boxer/bydigest@{digest}"
    r = run(boxer, ref, "cat", "/etc/image")
    assert r["stdout"] == "by-digest"
    assert r["image_digest"] == digest
    assert images(boxer)[ref]["digest"] == digest
    # Tag and digest: the digest decides.
    r = run(boxer, f"{registry.host}/boxer/bydigest:whatever@{digest}", "true")
    assert r["image_digest"] == digest


def test_layer_compressions_and_docker_media_types(boxer, registry):
    for name, img in (("zstd", unique_image("zstd", compression="zstd")),
                      ("plain", unique_image("plain", compression="none")),
                      ("docker", unique_image("docker", docker=True))):
        registry.push_image(f"boxer/{name}", "1", img)
        r = run(boxer, f"{registry.host}/boxer/{name}:1", "cat", "/etc/image")
        assert r["stdout"] == name
        assert r["image_digest"] == img.manifest.digest


def test_merged_usr_layers(boxer, registry):
    """A later layer writes through a directory symlink an earlier one made,
    as images with merged /usr do."""
    base = [("usr/", "dir", None), ("usr/bin/", "dir", None),
            ("usr/bin/busybox", "exec", Path("/bin/busybox").read_bytes()),
            ("usr/bin/sh", "symlink", "busybox"), ("usr/bin/cat", "symlink", "busybox"),
            ("bin", "symlink", "usr/bin"), ("lib", "symlink", "/usr/lib"), ("usr/lib/", "dir", None)]
    upper = [("bin/greeting", "file", "hello from bin"), ("lib/libx.so", "file", "lib")]
    img = Image([base, upper], env=["PATH=/usr/bin:/bin"])
    registry.push_image("boxer/merged-usr", "1", img)
    r = run(boxer, f"{registry.host}/boxer/merged-usr:1", "/bin/sh", "-c",
            "cat /usr/bin/greeting /usr/lib/libx.so; test -L /bin && echo ' bin is a link'")
    assert r["stdout"] == "hello from bin" + "lib" + " bin is a link\n"


def test_hostile_layers(registry, make_stack):
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    s = make_stack(insecure(registry.host), images=False, workers=2).start()
    # '..' entries: refused, nothing stored.
    dotdot = unique_image("dotdot", [(f"../../../tmp/boxer-escape-{tag}", "file", "x")])
    registry.push_image("boxer/dotdot", "1", dotdot)
    status, code, msg = error(s, "POST", "/run", {"image": f"{registry.host}/boxer/dotdot:1",
                                                  "cmd": ["true"]})
    assert (status, code) == (400, "invalid_request"), msg
    assert "contains '..'" in msg
    assert not Path(f"/tmp/boxer-escape-{tag}").exists()
    assert_nothing_cached(s)
    # A hard link to a host file: refused.
    hard = unique_image("hard", [("etc/pw", "hardlink", "/etc/passwd")])
    registry.push_image("boxer/hardlink", "1", hard)
    status, code, msg = error(s, "POST", "/images/pull", {"image": f"{registry.host}/boxer/hardlink:1"})
    assert (status, code) == (400, "invalid_request"), msg
    assert_nothing_cached(s)
    # Absolute names and symlinks to / or above it: contained in the rootfs.
    # (Not under /tmp: runs get a tmpfs there.)
    contained = Image([busybox_entries() + [("srv/", "dir", None)],
                       [("evil", "symlink", "/"), ("up", "symlink", "../../../../../../.."),
                        (f"/srv/boxer-abs-{tag}", "file", "abs")],
                       [(f"evil/srv/boxer-sym-{tag}", "file", "sym"),
                        (f"up/srv/boxer-up-{tag}", "file", "up")]])
    registry.push_image("boxer/contained", "1", contained)
    r = run(s, f"{registry.host}/boxer/contained:1", "cat", f"/srv/boxer-abs-{tag}",
            f"/srv/boxer-sym-{tag}", f"/srv/boxer-up-{tag}")
    assert r["stdout"] == "abssymup", r
    for name in ("abs", "sym", "up"):
        assert not Path(f"/srv/boxer-{name}-{tag}").exists()


def test_corrupted_blobs_are_rejected(registry, make_stack):
    s = make_stack(insecure(registry.host), images=False, workers=1).start()
    cases = []
    layer_img = unique_image("corrupt-layer")
    registry.push_image("boxer/corrupt-layer", "1", layer_img)
    cases.append(("corrupt-layer", layer_img.layers[1], "flip"))
    config_img = unique_image("corrupt-config")
    registry.push_image("boxer/corrupt-config", "1", config_img)
    cases.append(("corrupt-config", config_img.config, "flip"))
    short_img = unique_image("short-layer")
    registry.push_image("boxer/short-layer", "1", short_img)
    cases.append(("short-layer", short_img.layers[1], "truncate"))
    for repo, blob, how in cases:
        path = registry.blob_path(blob.digest)
        data = bytearray(path.read_bytes())
        if how == "flip":
            data[len(data) // 2] ^= 0xFF
        else:
            data = data[:len(data) // 2]
        path.write_bytes(bytes(data))
        status, code, msg = error(s, "POST", "/run", {"image": f"{registry.host}/boxer/{repo}:1",
                                                      "cmd": ["true"]})
        assert (status, code) == (502, "registry_error"), (repo, msg)
        assert f"boxer/{repo}:1" in msg
        if how == "flip":
            assert blob.digest in msg and "other content" in msg, msg
        assert_nothing_cached(s)


# --- authentication -------------------------------------------------------

def test_htpasswd_basic_auth(ports, make_stack):
    need_registry()
    p = ports()
    reg = Registry(p, auth=("htpasswd", {"alice": "s3cret pass"}))
    try:
        reg.push_layout(busybox_layout(), "team/busybox:1", creds=("alice", "s3cret pass"))
        wrong = Proxy(ports(), p)
        try:
            s = make_stack({"pull_policy": "if-not-present", "registries": {
                f"127.0.0.1:{p}": {"insecure": True, "username": "alice",
                                   "password": "s3cret pass"},
                f"localhost:{p}": {"insecure": True},
                f"127.0.0.1:{wrong.port}": {"insecure": True, "username": "alice",
                                            "password": "wrong"}}},
                images=False, workers=1).start()
            r = run(s, f"127.0.0.1:{p}/team/busybox:1", "echo", "authenticated")
            assert r["stdout"] == "authenticated\n"
            # Without credentials: the registry will not say whether it exists.
            status, code, msg = error(s, "POST", "/images/pull",
                                      {"image": f"localhost:{p}/team/busybox:1"})
            assert (status, code) == (404, "image_not_found"), msg
            assert "needs credentials" in msg
            # Wrong ones: the operator's mistake, a 502 that says so.
            status, code, msg = error(s, "POST", "/images/pull",
                                      {"image": f"127.0.0.1:{wrong.port}/team/busybox:1"})
            assert (status, code) == (502, "registry_error"), msg
            assert "refused the credentials" in msg and "wrong" not in msg
        finally:
            wrong.stop()
    finally:
        reg.stop()


def test_token_auth(tmp_path, ports, make_stack):
    need_registry()
    issuer = TokenIssuer(ports(), tmp_path, service="boxer-test-registry",
                         users={"pusher": "push-pass"})
    reg = Registry(ports(), auth=("token", issuer))
    try:
        reg.push_image("boxer/tok", "1", unique_image("tok"), creds=("pusher", "push-pass"))
        reg.push_image("boxer/tok2", "1", unique_image("tok2"), creds=("pusher", "push-pass"))
        # The token server is on loopback too: it must be configured.
        s = make_stack(insecure(reg.host, f"127.0.0.1:{issuer.port}"), images=False,
                       workers=1).start()
        n = issuer.count()
        status, body, _, raw = s.request("POST", "/images/pull", {"image": f"{reg.host}/boxer/tok:1"})
        assert status == 200, raw
        assert issuer.requests[n:] == [("repository:boxer/tok:pull", None)]
        # The token is reused for as long as it lasts: no new token request.
        r = run(s, f"{reg.host}/boxer/tok:1", "cat", "/etc/image")
        assert r["stdout"] == "tok"
        status, _, _, raw = s.request("POST", "/images/pull", {"image": f"{reg.host}/boxer/tok:1"})
        assert status == 200, raw
        assert issuer.count() == n + 1
        # A short-lived token is not.
        issuer.expires_in = 2
        status, _, _, raw = s.request("POST", "/images/pull", {"image": f"{reg.host}/boxer/tok2:1"})
        assert status == 200, raw
        assert issuer.count() == n + 2
        time.sleep(2.5)
        status, _, _, raw = s.request("POST", "/images/pull", {"image": f"{reg.host}/boxer/tok2:1"})
        assert status == 200, raw
        assert issuer.count() == n + 3
        assert issuer.requests[-1] == ("repository:boxer/tok2:pull", None)
    finally:
        reg.stop()
        issuer.stop()


def test_token_auth_with_credentials(tmp_path, ports, make_stack):
    need_registry()
    issuer = TokenIssuer(ports(), tmp_path, service="boxer-private", users={"bob": "b0b"},
                         anonymous=False)
    reg = Registry(ports(), auth=("token", issuer))
    try:
        reg.push_image("private/app", "1", unique_image("private"), creds=("bob", "b0b"))
        s = make_stack({"pull_policy": "if-not-present", "registries": {
            reg.host: {"insecure": True, "username": "bob", "password": "b0b"},
            f"localhost:{reg.port}": {"insecure": True},
            f"127.0.0.1:{issuer.port}": {"insecure": True}}}, images=False, workers=1).start()
        r = run(s, f"{reg.host}/private/app:1", "cat", "/etc/image")
        assert r["stdout"] == "private"
        assert ("repository:private/app:pull", "bob") in issuer.requests
        status, code, msg = error(s, "POST", "/images/pull",
                                  {"image": f"localhost:{reg.port}/private/app:1"})
        assert (status, code) == (502, "registry_error"), msg
        assert "refused an anonymous token" in msg
    finally:
        reg.stop()
        issuer.stop()


# --- the network misbehaving ----------------------------------------------

def test_redirect_to_blob_storage_without_credentials(ports, make_stack):
    need_registry()
    p = ports()
    reg = Registry(p, auth=("htpasswd", {"carol": "pw"}))
    proxy = Proxy(ports(), p, storage_port=ports(), upstream_auth=("carol", "pw"))
    try:
        reg.push_image("boxer/redirected", "1", unique_image("redirected"), creds=("carol", "pw"))
        # Blob storage on loopback is reached only because it is configured.
        s = make_stack({"pull_policy": "if-not-present", "registries": {
            f"127.0.0.1:{proxy.port}": {"insecure": True, "username": "carol",
                                        "password": "pw"},
            f"127.0.0.1:{proxy.storage_port}": {"insecure": True}}},
            images=False, workers=1).start()
        r = run(s, f"127.0.0.1:{proxy.port}/boxer/redirected:1", "cat", "/etc/image")
        assert r["stdout"] == "redirected"
        # Every blob came from the storage server, which never saw credentials.
        assert len(proxy.storage_paths) == 3, proxy.storage_paths
        assert proxy.storage_auth_seen == [None] * 3
    finally:
        proxy.stop()
        reg.stop()


def test_stalled_registry_times_out(registry, ports, make_stack):
    proxy = Proxy(ports(), registry.port)
    try:
        proxy.stall_all = True
        s = make_stack(insecure(f"127.0.0.1:{proxy.port}", registry_timeout_secs=1),
                       images=False, workers=1).start()
        t0 = time.monotonic()
        status, code, msg = error(s, "POST", "/images/pull",
                                  {"image": f"127.0.0.1:{proxy.port}/boxer/busybox:latest"})
        assert (status, code) == (502, "registry_error"), msg
        assert time.monotonic() - t0 < 20
        assert len(proxy.paths) == 3            # bounded retries
        assert_nothing_cached(s)
    finally:
        proxy.stop()


def test_oversized_and_lying_responses(registry, ports, make_stack):
    """Bounded sizes: a manifest past 4 MiB, a blob longer than its
    descriptor and a manifest whose digest is not the one announced are
    refused, and nothing is stored."""
    img = unique_image("lying")
    registry.push_image("boxer/lying", "1", img)
    registry.push_image("boxer/lying", "huge", img)
    registry.push_image("boxer/lying", "announced", img)
    proxy = Proxy(ports(), registry.port)

    def rewrite(path, status, body):
        if path.endswith("/manifests/huge"):
            return b" " * (4 * 1024 * 1024 + 1)
        if path.endswith("/manifests/announced"):
            return body.replace(b'"schemaVersion":', b'"schemaVersion" :')
        if path.endswith(img.layers[1].digest):
            return body + b"trailing bytes"
        return None

    proxy.rewrite = rewrite
    try:
        s = make_stack(insecure(f"127.0.0.1:{proxy.port}"), images=False, workers=1).start()
        for tag, text in (("huge", "more than 4194304 bytes for manifest 'huge'"),
                          ("announced", "announced manifest " + img.manifest.digest),
                          ("1", "more than %d bytes for blob %s" % (len(img.layers[1].data),
                                                                    img.layers[1].digest))):
            status, code, msg = error(s, "POST", "/images/pull",
                                      {"image": f"127.0.0.1:{proxy.port}/boxer/lying:{tag}"})
            assert (status, code) == (502, "registry_error"), msg
            assert text in msg, msg
            assert_nothing_cached(s)
    finally:
        proxy.stop()


# --- requests to hosts that are not registries ---------------------------

def test_unconfigured_loopback_host_is_never_contacted(registry, ports, make_stack):
    """A reference naming a loopback listener that is not a configured
    registry makes no connection to it, and the error is the same whether
    anything listens there or not."""
    counter = ConnectionCounter(ports())
    try:
        s = make_stack(insecure(registry.host), images=False, workers=1).start()
        messages = []
        for host in (counter.host, f"localhost:{counter.port}", f"127.0.0.1:{UNUSED_PORT}"):
            for method, path, body in (("POST", "/images/pull", {"image": f"{host}/x:y"}),
                                       ("POST", "/run", {"image": f"{host}/x:y",
                                                         "cmd": ["true"]})):
                status, code, msg = error(s, method, path, body)
                assert (status, code) == (403, "forbidden"), msg
                assert "not allowed" in msg, msg
                messages.append(msg.replace(host, "HOST"))
        assert counter.count == 0
        # Listening or not, the client learns nothing from the text.
        assert len(set(messages) - {messages[0], messages[1]}) == 0, messages
        assert_nothing_cached(s)
        # The configured registry still works.
        assert run(s, f"{registry.host}/boxer/busybox:latest", "echo", "ok")["stdout"] == "ok\n"
    finally:
        counter.stop()


def test_redirect_to_unconfigured_host_is_refused(registry, ports, make_stack):
    """A configured registry that redirects blobs to a loopback listener
    that is not configured: no connection reaches it."""
    counter = ConnectionCounter(ports())
    proxy = Proxy(ports(), registry.port, storage_port=counter.port, serve_storage=False)
    try:
        s = make_stack(insecure(f"127.0.0.1:{proxy.port}"), images=False, workers=1).start()
        status, code, msg = error(s, "POST", "/images/pull",
                                  {"image": f"127.0.0.1:{proxy.port}/boxer/busybox:latest"})
        assert (status, code) == (403, "forbidden"), msg
        assert "not allowed" in msg
        assert proxy.blob_paths(), "the registry was never asked for a blob"
        assert counter.count == 0
        assert_nothing_cached(s)
    finally:
        proxy.stop()
        counter.stop()


def test_token_realm_on_an_unconfigured_host_is_refused(tmp_path, ports, make_stack):
    need_registry()
    issuer = TokenIssuer(ports(), tmp_path, service="boxer-test-registry",
                         users={"pusher": "push-pass"})
    reg = Registry(ports(), auth=("token", issuer))
    try:
        reg.push_image("boxer/tok", "1", unique_image("tok"), creds=("pusher", "push-pass"))
        s = make_stack(insecure(reg.host), images=False, workers=1).start()
        n = issuer.count()
        status, code, msg = error(s, "POST", "/images/pull", {"image": f"{reg.host}/boxer/tok:1"})
        assert (status, code) == (403, "forbidden"), msg
        assert "authentication token" in msg and "not allowed" in msg
        assert issuer.count() == n
    finally:
        reg.stop()
        issuer.stop()


def test_allowed_registries(registry, make_stack):
    """allowed_registries restricts further: an unlisted registry is refused
    before any name is looked up; configured ones stay allowed."""
    s = make_stack(insecure(registry.host, allowed_registries=[]), images=False,
                   workers=1).start()
    status, code, msg = error(s, "POST", "/images/pull", {"image": "python:3.12"})
    assert (status, code) == (403, "forbidden"), msg
    assert "not in the server's allowed_registries" in msg
    assert run(s, f"{registry.host}/boxer/busybox:latest", "echo", "ok")["stdout"] == "ok\n"


def test_pull_that_trickles_past_pull_timeout(registry, ports, make_stack):
    """A registry that never stalls long enough for registry_timeout_secs
    but takes forever: pull_timeout_secs ends it."""
    img = unique_image("trickle", [("etc/big", "file", os.urandom(1 << 20).hex())])
    registry.push_image("boxer/trickle", "1", img)
    proxy = Proxy(ports(), registry.port)
    proxy.trickle = True
    try:
        s = make_stack(insecure(f"127.0.0.1:{proxy.port}", registry_timeout_secs=5,
                                pull_timeout_secs=4), images=False, workers=1).start()
        t0 = time.monotonic()
        status, code, msg = error(s, "POST", "/images/pull",
                                  {"image": f"127.0.0.1:{proxy.port}/boxer/trickle:1"})
        took = time.monotonic() - t0
        assert (status, code) == (502, "registry_error"), msg
        assert "pull_timeout_secs" in msg
        assert took < 12, took
        assert_nothing_cached(s)
    finally:
        proxy.stop()


# --- hostile images -------------------------------------------------------

def worker_peak_kib(stack):
    peak = 0
    for pid in worker_pids(stack):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    return peak


def test_directory_bombs_are_refused(registry, make_stack):
    """Few tar entries that imply many directories, deep or long paths:
    refused within seconds, with nothing left on disk and the workers'
    memory bounded."""
    s = make_stack(insecure(registry.host, image_max_entries=1500,
                            image_max_bytes=64 * 1024 * 1024), images=False, workers=1).start()
    # The reviewed bomb: 300 entries with 2,000-byte paths, a 5 KB layer.
    long_paths = [(("a/" * 999) + f"f{i}", "file", "") for i in range(300)]
    # Within the length bound but 201 directories deep.
    deep = [(f"{i}/" + "d/" * 200 + "f", "file", "") for i in range(300)]
    # Shallow enough, short enough, but 300 x 60 implied directories.
    wide = [(f"w{i}/" + "/".join(f"{j}" for j in range(60)) + "/f", "file", "")
            for i in range(300)]
    # Many empty files: each costs at least a block.
    many = [("many/", "dir", None)] + [(f"many/{i}", "file", "") for i in range(1000)]
    many = [many, [("more/", "dir", None)] + [(f"more/{i}", "file", "") for i in range(1000)]]
    cases = [("long", [busybox_entries(), long_paths], "image_max_path_bytes"),
             ("deep", [busybox_entries(), deep], "image_max_depth"),
             ("wide", [busybox_entries(), wide], "image_max_entries"),
             ("many", [busybox_entries()] + many, "image_max_entries")]
    for name, layers, limit in cases:
        img = Image(layers)
        registry.push_image(f"boxer/bomb-{name}", "1", img)
        t0 = time.monotonic()
        status, code, msg = error(s, "POST", "/images/pull",
                                  {"image": f"{registry.host}/boxer/bomb-{name}:1"})
        took = time.monotonic() - t0
        assert (status, code) == (413, "payload_too_large"), (name, msg)
        assert limit in msg, (name, msg)
        assert took < 10, (name, took)
        assert_nothing_cached(s)
    small = make_stack(insecure(registry.host, image_max_bytes=4 * 1024 * 1024), images=False,
                       workers=1).start()
    img = Image([busybox_entries(), [("blocks/", "dir", None)]
                 + [(f"blocks/{i}", "file", "") for i in range(1000)]])
    registry.push_image("boxer/bomb-blocks", "1", img)
    status, code, msg = error(small, "POST", "/images/pull",
                              {"image": f"{registry.host}/boxer/bomb-blocks:1"})
    assert (status, code) == (413, "payload_too_large"), msg
    assert "image_max_bytes" in msg
    assert_nothing_cached(small)
    assert worker_peak_kib(s) < 128 * 1024, worker_peak_kib(s)


def test_default_bounds_refuse_the_reviewed_bomb(registry, make_stack):
    """With the defaults, the reviewed 5 KB layer never makes 300,000
    directories."""
    s = make_stack(insecure(registry.host), images=False, workers=1).start()
    img = Image([busybox_entries(), [(("a/" * 999) + f"f{i}", "file", "") for i in range(300)],
                 ])
    registry.push_image("boxer/bomb-default", "1", img)
    assert len(img.layers[1].data) < 20000
    t0 = time.monotonic()
    status, code, msg = error(s, "POST", "/images/pull",
                              {"image": f"{registry.host}/boxer/bomb-default:1"})
    assert (status, code) == (413, "payload_too_large"), msg
    assert time.monotonic() - t0 < 10
    assert_nothing_cached(s)


def test_unpacking_within_bounds_still_ends_at_pull_timeout(registry, make_stack):
    """12,000 entries implying 720,000 directories: within the default
    bounds (a million entries), but far more than any machine writes out
    within pull_timeout_secs, which ends the unpacking too.  One-fifth of
    that once finished inside the deadline."""
    s = make_stack(insecure(registry.host, pull_timeout_secs=3), images=False,
                   workers=1).start()
    wide = [(f"w{i}/" + "/".join(f"{j}" for j in range(60)) + "/f", "file", "")
            for i in range(12000)]
    tag = str(time.monotonic_ns())
    registry.push_image("boxer/slow-unpack", tag, Image([busybox_entries(), wide]))
    t0 = time.monotonic()
    status, code, msg = error(s, "POST", "/images/pull",
                              {"image": f"{registry.host}/boxer/slow-unpack:{tag}"})
    assert (status, code) == (502, "registry_error"), msg
    assert "pull_timeout_secs" in msg and "unpacking" in msg, msg
    # The answer comes at the deadline.  Removing the tens of thousands of
    # directories made by then can take several times as long again, so
    # the worker does it after answering: they are still there now.
    assert time.monotonic() - t0 < 3 + 2
    assert len(store(s, "tmp")) == 2
    assert_nothing_cached(s)


def test_layers_past_image_max_bytes_are_not_downloaded(registry, make_stack):
    s = make_stack(insecure(registry.host, image_max_bytes=1024 * 1024), images=False,
                   workers=1).start()
    img = Image([[("noise", "file", os.urandom(1200 * 1024))]])
    registry.push_image("boxer/noise", "1", img)
    status, code, msg = error(s, "POST", "/images/pull", {"image": f"{registry.host}/boxer/noise:1"})
    assert (status, code) == (413, "payload_too_large"), msg
    assert "image_max_bytes" in msg
    assert registry.blob_gets("boxer/noise").get(img.layers[0].digest, 0) == 0
    assert_nothing_cached(s)


def test_setuid_fifo_and_device_nodes(registry, make_stack):
    s = make_stack(insecure(registry.host), images=False, workers=1).start()
    img = unique_image("setid", [("bin/suid", "setuid", "#!/bin/sh\necho hi\n"),
                                 ("run/", "dir", None), ("run/fifo", "fifo", None)])
    registry.push_image("boxer/setid", "1", img)
    r = run(s, f"{registry.host}/boxer/setid:1", "sh", "-c",
            "test -p /run/fifo && echo fifo; ls -ln /bin/suid")
    assert r["stdout"].startswith("fifo\n-rwxr-xr-x "), r
    (digest,) = store(s, "rootfs")
    host_file = s.home / "images" / "rootfs" / digest / "rootfs" / "bin" / "suid"
    st = host_file.stat()
    assert st.st_mode & 0o6000 == 0, oct(st.st_mode)
    # Unpacked by the worker, as its own user: no root process read the
    # layer (owners are not kept; the run's uid 65534 is unaffected).
    assert st.st_uid == pwd.getpwnam("boxer").pw_uid, st.st_uid
    # Nobody else on the host reaches the store at all: the home lets the
    # workers pass (0711, nobody lists it), the store is theirs alone.
    assert s.home.stat().st_mode & 0o777 == 0o711, oct(s.home.stat().st_mode)
    images = (s.home / "images").stat()
    assert images.st_mode & 0o777 == 0o700, oct(images.st_mode)
    assert images.st_uid == pwd.getpwnam("boxer").pw_uid
    dev = unique_image("dev", [("dev/", "dir", None), ("dev/mem0", "chardev", (1, 1))])
    registry.push_image("boxer/dev", "1", dev)
    status, code, msg = error(s, "POST", "/images/pull", {"image": f"{registry.host}/boxer/dev:1"})
    assert (status, code) == (400, "invalid_request"), msg
    assert "device node" in msg
    assert tmp_once_tidied(s) == []
    assert len(store(s, "rootfs")) == 1


# --- concurrency, killed workers ------------------------------------------

def test_concurrent_first_pulls_download_once(registry, make_stack):
    img = unique_image("concurrent")
    registry.push_image("boxer/concurrent", "1", img)
    s = make_stack(insecure(registry.host), images=False, workers=8).start()
    ref = f"{registry.host}/boxer/concurrent:1"
    barrier = threading.Barrier(8)
    results = [None] * 8

    def one(i):
        barrier.wait()
        results[i] = s.request("POST", "/run", {"image": ref, "cmd": ["cat", "/etc/image"]},
                               timeout=300)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for status, body, _, raw in results:
        assert status == 200, raw[:300]
        assert body["stdout"] == "concurrent"
        assert body["image_digest"] == img.manifest.digest
    gets = registry.blob_gets("boxer/concurrent")
    assert gets == {b.digest: 1 for b in img.blobs}, gets
    assert store(s, "rootfs") == [img.manifest.digest[7:]]
    assert store(s, "tmp") == []


def worker_pids(stack):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(stack.master_pid())],
                         capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def test_worker_killed_mid_pull_leaves_no_half_image(registry, ports, make_stack):
    img = unique_image("killed", [("etc/big", "file", os.urandom(1 << 20).hex())])
    registry.push_image("boxer/killed", "1", img)
    proxy = Proxy(ports(), registry.port)
    try:
        s = make_stack(insecure(f"127.0.0.1:{proxy.port}"), images=False, workers=1).start()
        ref = f"127.0.0.1:{proxy.port}/boxer/killed:1"
        proxy.stall_blobs = True
        pulling = threading.Thread(target=lambda: s.request("POST", "/images/pull",
                                                            {"image": ref}, timeout=120))
        pulling.start()
        assert proxy.stalled.wait(30), "the pull never reached a blob"
        (worker,) = worker_pids(s)
        os.kill(worker, 9)
        pulling.join(60)
        # Half an image is in tmp/, none is published.
        assert store(s, "rootfs") == []
        assert images(s) == {}
        proxy.stall_blobs = False
        proxy.release.set()
        # The replacement worker pulls it whole and sweeps the remains.
        deadline = time.monotonic() + 30
        while worker_pids(s) in ([], [worker]) and time.monotonic() < deadline:
            time.sleep(0.2)
        r = run(s, ref, "cat", "/etc/image")
        assert r["stdout"] == "killed"
        assert store(s, "rootfs") == [img.manifest.digest[7:]]
        assert store(s, "tmp") == []
    finally:
        proxy.stop()


# --- deletion and garbage collection --------------------------------------

def test_delete(boxer, registry):
    img = unique_image("deleted")
    registry.push_image("boxer/deleted", "1", img)
    ref = f"{registry.host}/boxer/deleted:1"
    run(boxer, ref, "true")
    assert ref in images(boxer)
    assert img.manifest.digest[7:] in store(boxer, "rootfs")
    status, _, _, raw = boxer.request("DELETE", "/images/" + urllib.parse.quote(ref, safe=""))
    assert status == 204, raw
    assert ref not in images(boxer)
    assert img.manifest.digest[7:] not in store(boxer, "rootfs")
    status, code, msg = error(boxer, "DELETE", "/images/" + urllib.parse.quote(ref, safe=""))
    assert (status, code) == (404, "image_not_found")
    assert ref in msg
    status, code, _ = error(boxer, "DELETE", "/images/Not%20A%20Reference")
    assert (status, code) == (400, "invalid_request")
    # Used again, it is pulled again.
    before = registry.blob_gets("boxer/deleted")
    run(boxer, ref, "true")
    after = registry.blob_gets("boxer/deleted")
    assert all(after[d] == before[d] + 1 for d in before)

    # An image a run is using stays until the run ends.
    result = {}
    t = threading.Thread(target=lambda: result.update(r=run(boxer, ref, "sleep", "3")))
    t.start()
    time.sleep(1.5)
    status, _, _, _ = boxer.request("DELETE", "/images/" + urllib.parse.quote(ref, safe=""))
    assert status == 204
    assert img.manifest.digest[7:] in store(boxer, "rootfs")
    t.join()
    assert result["r"]["exit_code"] == 0


def test_gc_under_a_small_budget(registry, make_stack):
    a, b, c = (unique_image(f"gc-{x}") for x in "abc")
    for name, img in (("a", a), ("b", b), ("c", c)):
        registry.push_image(f"boxer/gc-{name}", "1", img)
    ref = {x: f"{registry.host}/boxer/gc-{x}:1" for x in "abc"}
    one_image = 2 * 1024 * 1024 + 100 * 1024
    s = make_stack(insecure(registry.host, images_budget_bytes=int(one_image * 1.5)),
                   images=False, workers=2).start()

    # A run holds a; pulling b goes over the budget, but a is in use and b
    # is what was asked for: both stay.
    result = {}
    t = threading.Thread(target=lambda: result.update(r=run(s, ref["a"], "sleep", "4")))
    t.start()
    deadline = time.monotonic() + 30
    while ref["a"] not in images(s) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    status, _, _, raw = s.request("POST", "/images/pull", {"image": ref["b"]})
    assert status == 200, raw
    assert set(images(s)) == {ref["a"], ref["b"]}
    assert len(store(s, "rootfs")) == 2
    t.join()
    assert result["r"]["exit_code"] == 0

    # Now nothing holds a or b: pulling c leaves c alone.
    status, _, _, raw = s.request("POST", "/images/pull", {"image": ref["c"]})
    assert status == 200, raw
    assert set(images(s)) == {ref["c"]}
    assert store(s, "rootfs") == [c.manifest.digest[7:]]
    assert store(s, "tmp") == []
    # The collected ones come back on demand.
    assert run(s, ref["a"], "cat", "/etc/image")["stdout"] == "gc-a"


# --- the API's own errors -------------------------------------------------

def test_images_api_errors(boxer, registry):
    cases = [
        (b"not json", "application/json", 400, "not valid JSON"),
        (b"[]", "application/json", 400, "must be a JSON object"),
        (b"{}", "application/json", 400, "'image' is missing"),
        (b'{"image": 5}', "application/json", 400, "'image' must be a non-empty string"),
        (b'{"image": ""}', "application/json", 400, "'image' must be a non-empty string"),
        (b'{"image": "x", "tag": "y"}', "application/json", 400, "unknown field 'tag'"),
        (b'{"image": "Not A Reference"}', "application/json", 400, "invalid image reference"),
        (b'{"image": "x"}', "text/plain", 415, "JSON body"),
        (b'{"image": "' + b"a" * 9000 + b'"}', "application/json", 413, "over the limit"),
    ]
    for body, ctype, want, text in cases:
        status, resp, _, raw = boxer.request("POST", "/images/pull", body,
                                             {"Content-Type": ctype})
        assert status == want, (body[:40], raw[:200])
        assert text in resp["error"]["message"], resp
    status, code, _ = error(boxer, "GET", "/images/something")
    assert (status, code) == (405, "method_not_allowed")
    status, code, _ = error(boxer, "PUT", "/images")
    assert (status, code) == (405, "method_not_allowed")
