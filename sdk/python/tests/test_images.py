"""The image cache through the SDK: list, pull (from Debian's docker-registry
on loopback, the integration suite's Registry), delete.

Ports: the registry on BOXER_TEST_PORT+10, its stack from make_stack
(BOXER_TEST_PORT+1..); nothing listens on BOXER_TEST_PORT+19."""

import os
import shutil
import subprocess

import pytest

import boxer
from conftest import BUSYBOX, PYTHON, ROOT, integration_module, need, url_of

BASE = int(os.environ.get("BOXER_TEST_PORT", "18080"))
DEAD_PORT = BASE + 19


async def test_list(both):
    images = await both.images.list()
    by_ref = {i.reference: i for i in images}
    assert {BUSYBOX, PYTHON} <= set(by_ref)
    py = by_ref[PYTHON]
    assert py.digest.startswith("sha256:") and len(py.digest) == 71 and py.size > 0
    r = await both.run(PYTHON, ["true"])
    assert r.image_digest == py.digest
    assert isinstance(by_ref[PYTHON], boxer.ImageInfo)


@pytest.fixture
def registry():
    rf = integration_module("registry_fixtures", "boxer_integration_registry_fixtures")
    need(os.path.exists(rf.REGISTRY_BIN), "docker-registry is needed (contrib/install-deps.sh)")
    need(shutil.which("skopeo"), "skopeo is needed (contrib/install-deps.sh)")
    reg = rf.Registry(BASE + 10)
    try:
        layout = subprocess.run([str(ROOT / "contrib/images/build-images.sh"), "busybox"],
                                check=True, capture_output=True, text=True).stdout.split()[1]
        reg.push_layout(layout, "sdk/busybox:1")
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def pulling(registry, make_stack):
    """A stack of its own, empty, that pulls from the registry over plain HTTP."""
    # DEAD_PORT, where nothing listens, is configured too: a registry on
    # loopback is contacted only if it is.
    return make_stack({"pull_policy": "if-not-present", "registry_timeout_secs": 5,
                       "registries": {registry.host: {"insecure": True},
                                      f"127.0.0.1:{DEAD_PORT}": {"insecure": True}}},
                      images=False).start()


def test_pull_run_delete(registry, pulling):
    ref = f"{registry.host}/sdk/busybox:1"
    with boxer.BoxerClient(url_of(pulling)) as c:
        assert c.images.list() == ()
        img = c.images.pull(ref)
        assert img.reference == ref and img.digest.startswith("sha256:") and img.size > 0
        assert [i.reference for i in c.images.list()] == [ref]
        r = c.run(ref, ["echo", "pulled"])
        assert r.stdout == "pulled\n" and r.image_digest == img.digest
        assert c.images.delete(ref) is None
        assert c.images.list() == ()
        with pytest.raises(boxer.ImageNotFoundError):
            c.images.delete(ref)
        with pytest.raises(boxer.ImageNotFoundError):
            c.images.pull(f"{registry.host}/sdk/nosuchrepo:1")


async def test_async_pull_and_delete(registry, pulling):
    ref = f"{registry.host}/sdk/busybox:1"
    async with boxer.AsyncBoxerClient(url_of(pulling)) as c:
        img = await c.images.pull(ref, timeout=120)
        assert [i.digest for i in await c.images.list()] == [img.digest]
        await c.images.delete(ref)
        assert await c.images.list() == ()


async def test_delete_unknown(both):
    with pytest.raises(boxer.ImageNotFoundError):
        await both.images.delete("localhost:5000/nope/never-loaded:1")


async def test_pull_under_never_and_bad_reference(both):
    # The session stack's pull_policy is "never": no registry is asked.
    with pytest.raises(boxer.ForbiddenError):
        await both.images.pull(f"127.0.0.1:{DEAD_PORT}/nope/missing:1", timeout=60)
    with pytest.raises(boxer.BadRequestError):
        await both.images.pull("Not A Reference!")


async def test_pull_from_nowhere(pulling):
    async with boxer.AsyncBoxerClient(url_of(pulling)) as c:
        with pytest.raises(boxer.RegistryError) as e:
            await c.images.pull(f"127.0.0.1:{DEAD_PORT}/nope/missing:1", timeout=60)
        assert (e.value.status_code, e.value.code) == (502, "registry_error")
    with boxer.BoxerClient(url_of(pulling)) as c:
        with pytest.raises(boxer.RegistryError) as e:
            c.images.pull(f"127.0.0.1:{DEAD_PORT}/nope/missing:1", timeout=60)
        assert (e.value.status_code, e.value.code) == (502, "registry_error")
