"""Every exception class the real stack can produce, through the SDK.
(Busy, a 500 and a non-API answer are in test_retries.py: this server
cannot be made to answer them on purpose.)"""

import os
import time

import httpx
import pytest

import boxer
from conftest import BUSYBOX, it, url_of

# Nothing listens here: a port of this suite's range that no stack uses.
DEAD_PORT = int(os.environ.get("BOXER_TEST_PORT", "18080")) + 19


async def test_bad_request_names_the_field(both):
    with pytest.raises(boxer.BadRequestError, match="limits.memory_mb must be between") as e:
        await both.run(BUSYBOX, ["true"], limits={"memory_mb": 999999})
    assert (e.value.status_code, e.value.code) == (400, "invalid_request")
    assert e.value.method == "POST" and e.value.path == "/run"
    with pytest.raises(boxer.BadRequestError, match="swap"):
        await both.run(BUSYBOX, ["true"], limits={"swap": 1})
    with pytest.raises(boxer.BadRequestError, match="reference"):
        await both.run("Not A Reference!", ["true"])


async def test_forbidden(both):
    with pytest.raises(boxer.ForbiddenError) as e:
        await both.run(BUSYBOX, ["true"], network="host")
    assert (e.value.status_code, e.value.code) == (403, "forbidden")


async def test_image_not_found(both):
    with pytest.raises(boxer.ImageNotFoundError, match="localhost:5000/nope/missing:1") as e:
        await both.run("localhost:5000/nope/missing:1", ["true"])
    assert isinstance(e.value, boxer.NotFoundError) and e.value.code == "image_not_found"


async def test_payload_too_large(both, api):
    with pytest.raises(boxer.PayloadTooLargeError) as e:
        await both.run(BUSYBOX, ["true"], stdin="x" * (api.config["upload_limit_bytes"] + 10))
    assert e.value.status_code == 413


async def test_not_found_for_a_base_url_that_is_not_boxer(url):
    async with boxer.AsyncBoxerClient(url + "/not-boxer") as c:
        with pytest.raises(boxer.NotFoundError) as e:
            await c.health()
    assert type(e.value) is boxer.NotFoundError and e.value.code == "not_found"
    assert e.value.path == "/health"


def rewriting(hook):
    """An httpx client that changes each request on its way out: the only
    way to make this SDK send what the server refuses with 405 and 415."""
    return httpx.Client(event_hooks={"request": [hook]})


def test_method_not_allowed(url):
    def as_get(request):
        request.method = "GET"
    with boxer.BoxerClient(url, http_client=rewriting(as_get)) as c:
        with pytest.raises(boxer.MethodNotAllowedError) as e:
            c.run(BUSYBOX, ["true"])
    assert (e.value.status_code, e.value.code) == (405, "method_not_allowed")
    assert e.value.headers["allow"] == "POST"


def test_unsupported_media_type(url):
    def as_text(request):
        request.headers["Content-Type"] = "text/plain"
    with boxer.BoxerClient(url, http_client=rewriting(as_text)) as c:
        with pytest.raises(boxer.UnsupportedMediaTypeError) as e:
            c.run(BUSYBOX, ["true"])
    assert (e.value.status_code, e.value.code) == (415, "unsupported_media_type")


async def test_connection_refused():
    with boxer.BoxerClient(f"http://127.0.0.1:{DEAD_PORT}", max_retries=1) as c:
        t0 = time.monotonic()
        with pytest.raises(boxer.BoxerConnectionError, match="cannot connect") as e:
            c.health()
        assert not isinstance(e.value, boxer.BoxerTimeoutError)
        assert isinstance(e.value.__cause__, httpx.ConnectError)
        assert time.monotonic() - t0 < 5
    async with boxer.AsyncBoxerClient(f"http://127.0.0.1:{DEAD_PORT}") as c:
        with pytest.raises(boxer.BoxerConnectionError, match=str(DEAD_PORT)):
            await c.run(BUSYBOX, ["true"])


async def test_timeout(both):
    with pytest.raises(boxer.BoxerTimeoutError):
        await both.run(BUSYBOX, ["sleep", "2"], timeout=0.5)


def test_runtime_unavailable(make_stack, tmp_path):
    """A server whose runsc stopped being executable answers health with 503."""
    runsc = tmp_path / "runsc"
    runsc.write_text(f'#!/bin/sh\nexec {it.runsc_path()} "$@"\n')
    runsc.chmod(0o755)
    s = make_stack(config={"runsc_path": str(runsc)}, images=False).start()
    try:
        with boxer.BoxerClient(url_of(s), max_retries=0) as c:
            assert c.health().status == "ok"
            runsc.chmod(0o644)
            with pytest.raises(boxer.RuntimeUnavailableError) as e:
                c.health()
            assert (e.value.status_code, e.value.code) == (503, "runtime_unavailable")
            assert isinstance(e.value, boxer.ServiceUnavailableError)
    finally:
        # The pool's shutdown sweep needs it.
        runsc.chmod(0o755)


def test_command_failed(client):
    r = client.run(BUSYBOX, ["false"])
    with pytest.raises(boxer.CommandFailedError) as e:
        r.check()
    assert e.value.result.exit_code == 1 and isinstance(e.value, boxer.BoxerError)


# --- waiting on the server side of issue 3 (images) -----------------------------


# A registry that is not there is a RegistryError (502 registry_error):
# test_images.py::test_pull_from_nowhere, on a stack that may pull and has
# the dead loopback port configured (the session stack pulls nothing).


# --- waiting on the server side of issue 4 (files, run records, outputs) ---------


async def test_run_not_found(both):
    with pytest.raises(boxer.RunNotFoundError) as e:
        await both.get_run("r_" + "0" * 32)
    assert e.value.code == "run_not_found"
    with pytest.raises(boxer.RunNotFoundError):
        await both.list_outputs("r_" + "0" * 32)


async def test_file_not_found(both):
    r = await both.run(BUSYBOX, ["true"])
    with pytest.raises(boxer.BoxerFileNotFoundError) as e:
        await both.download(r.id, "missing.txt")
    assert e.value.code == "file_not_found"
    bogus = boxer.UploadedFile(id="f_" + "0" * 32, name="x", size=1, sha256="0" * 64)
    with pytest.raises(boxer.BoxerFileNotFoundError):
        await both.run(BUSYBOX, ["cat", "/w/x"], files={"/w/x": bogus})


async def test_upload_too_large(both, api):
    big = b"x" * (api.config["upload_limit_bytes"] + 1)
    with pytest.raises(boxer.PayloadTooLargeError):
        await both.upload({"big.bin": big})
    with pytest.raises(boxer.PayloadTooLargeError):
        await both.run(BUSYBOX, ["true"], files={"/w/big.bin": big})
