"""schemathesis hooks for test_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

The fuzzed stack has the test images loaded and no registry: it lives in a
network namespace with only loopback. So that generated runs actually run,
every image a POST /run, /batch or /sessions names is swapped for a loaded one; the rest of the
request (cmd, env, limits, files, ...) is left as generated. The server
may pull only from BOXER_FUZZ_REGISTRY, a configured registry on loopback
where nothing listens (docker.io, of the document's examples, is mirrored
there); POST /images/pull moves every reference the document allows to
that registry (elsewhere it would be refused with 403 before any lookup),
where it gets 502 registry_error: the right answer there, not a server
error. DELETE /images/{reference}
never removes a loaded image, which later runs need.

Identifiers the document cannot give (which runs, sessions and images
exist) come from the test, as schemathesis advises: a share of the
generated session ids (never for DELETE) is the id of a session that lives
through the run (BOXER_FUZZ_SESSION), a share of the generated run ids,
chosen by their value, is replaced by the id of a real run that left
outputs (BOXER_FUZZ_RUN), a share of those output paths by its real
outputs, and a share of DELETE /images references by references that are
(re)loaded just before the request (BOXER_FUZZ_DELETABLE, the document's
own example among them). So each of those operations also reaches its
success path, and not only its 404.
"""

import hashlib
import json
import os
import re
import subprocess
from urllib.parse import quote, unquote

import schemathesis
import yaml

from contract import DOCUMENT

LOADED = json.loads(os.environ["BOXER_FUZZ_IMAGES"])
ABSENT = "localhost:5000/boxer/fuzz-absent:1"
REGISTRY = os.environ.get("BOXER_FUZZ_REGISTRY")
RUN = json.loads(os.environ.get("BOXER_FUZZ_RUN", "null"))
# {"id": a session that lives through the run, "files": paths in it}
SESSION = json.loads(os.environ.get("BOXER_FUZZ_SESSION", "null"))
# {"references": [...], "load": argv that loads an image, the reference appended}
DELETABLE = json.loads(os.environ.get("BOXER_FUZZ_DELETABLE", '{"references": [], "load": []}'))


_doc = yaml.safe_load(DOCUMENT.read_text())
# The document's patterns of the parameters swapped below: only values the
# document accepts are swapped, so a negative case stays negative.
VALID = {
    "reference": _doc["paths"]["/images/{reference}"]["parameters"][0]["schema"]["pattern"],
    "id": _doc["components"]["parameters"]["RunId"]["schema"]["pattern"],
    "session": _doc["components"]["parameters"]["SessionId"]["schema"]["pattern"],
    "path": _doc["paths"]["/runs/{id}/outputs/{path}"]["parameters"][1]["schema"]["pattern"],
}


def valid(params, name, pattern=None):
    """Path parameters arrive percent-encoded."""
    value = params.get(name)
    return isinstance(value, str) and re.search(VALID[pattern or name], unquote(value)) is not None


def pick(value, choices, salt=""):
    """One of choices, chosen by the generated value so shrinking is stable."""
    digest = hashlib.sha256((salt + repr(value)).encode()).digest()
    return choices[digest[0] % len(choices)]


def loaded_for(value):
    return pick(value, LOADED)


def swap_image(request):
    """Only a valid image: a negative case whose flaw is its image keeps it."""
    image = request.get("image") if isinstance(request, dict) else None
    if isinstance(image, str) and 1 <= len(image) <= 512:
        request["image"] = loaded_for(image)


# The fuzzed server's max_limits, below the document's (the default
# config's): a batch's limits appear at two levels, and as generated most
# batches would ask for more than that server allows.
MAX_LIMITS = json.loads(os.environ.get("BOXER_FUZZ_MAX_LIMITS", "{}"))
_LIMITS = _doc["components"]["schemas"]["Limits"]["properties"]


def clamp_limits(limits):
    """Lower to the server's maximum each limit the document accepts
    (a negative case stays negative)."""
    if not isinstance(limits, dict):
        return
    for name, most in MAX_LIMITS.items():
        value = limits.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and _LIMITS[name]["minimum"] <= value <= _LIMITS[name]["maximum"] \
                and (isinstance(value, float) or _LIMITS[name]["type"] == "integer"):
            limits[name] = type(value)(min(value, most))


# The longest a fuzzed session lives.
SESSION_SECS = 5


def clamp_batch(body):
    if not isinstance(body, dict):
        return
    clamp_limits(body.get("limits"))
    for run in body.get("runs") if isinstance(body.get("runs"), list) else []:
        if isinstance(run, dict):
            clamp_limits(run.get("limits"))


def swap_session(case):
    """A share of the valid session ids (never DELETE's: it would end it)
    is the living session's; of a GET of its files, a share of the paths
    its real files."""
    params = case.path_parameters or {}
    if SESSION and valid(params, "id", "session") and pick(params["id"], [True, False], "session"):
        params["id"] = SESSION["id"]
        if case.operation.method.upper() == "GET" and valid(params, "path") \
                and pick(params["path"], [True, False], "session-path"):
            params["path"] = quote(pick(params["path"], SESSION["files"]), safe="")


@schemathesis.hook
def map_case(context, case):
    op = (case.operation.method.upper(), case.operation.path)
    if op == ("POST", "/batch"):
        swap_image(case.body)
        clamp_batch(case.body)
    elif op == ("POST", "/sessions"):
        swap_image(case.body)
        if isinstance(case.body, dict):
            clamp_limits(case.body.get("limits"))
            # Sessions it opens end within seconds: each holds a sandbox.
            for name in ("idle_timeout_secs", "ttl_secs"):
                value = case.body.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and value > SESSION_SECS:
                    case.body[name] = SESSION_SECS
    elif op == ("POST", "/run"):
        body = case.body
        if isinstance(body, dict) and isinstance(body.get("request"), dict):
            body = body["request"]          # multipart: the request part
        swap_image(body)
        if isinstance(body, dict):
            clamp_limits(body.get("limits"))
    elif op == ("POST", "/images/pull") and REGISTRY:
        body = case.body
        image = body.get("image") if isinstance(body, dict) else None
        # Any reference the document allows (a string of 1 to 512
        # characters, as swap_image): one the server can parse would
        # otherwise be refused with 403 before any lookup.
        if isinstance(image, str) and 1 <= len(image) <= 512:
            body["image"] = f"{REGISTRY}/fuzz/{pick(image, ['a', 'b/c', 'd-e'])}:1"
    elif op == ("DELETE", "/images/{reference}"):
        params = case.path_parameters or {}
        if unquote(str(params.get("reference"))) in LOADED:
            params["reference"] = quote(ABSENT, safe="")
        elif DELETABLE["references"] and valid(params, "reference") \
                and unquote(params["reference"]) not in DELETABLE["references"] \
                and pick(params["reference"], [True, False, False], "delete"):
            params["reference"] = quote(pick(params["reference"], DELETABLE["references"]), safe="")
    elif op == ("POST", "/sessions/{id}/exec"):
        swap_session(case)
        if isinstance(case.body, dict):
            limits = {"wall_clock_secs": case.body.get("timeout_secs")}
            clamp_limits(limits)
            if "timeout_secs" in case.body:
                case.body["timeout_secs"] = limits["wall_clock_secs"]
    elif op[1].startswith("/sessions/{id}") and op[0] != "DELETE":
        swap_session(case)
    elif op[1].startswith("/runs/{id}") and RUN:

        params = case.path_parameters or {}
        if valid(params, "id") and pick(params["id"], [True, False], "run"):
            params["id"] = RUN["id"]
            if valid(params, "path") and pick(params["path"], [True, False], "path"):
                params["path"] = quote(pick(params["path"], RUN["outputs"]), safe="")
    return case


@schemathesis.hook
def before_call(context, case, kwargs):
    """A deletable reference exists when it is deleted, however often."""
    if (case.operation.method.upper(), case.operation.path) == ("DELETE", "/images/{reference}"):
        ref = unquote(str((case.path_parameters or {}).get("reference")))
        if ref in DELETABLE["references"]:
            subprocess.run(DELETABLE["load"] + [ref], check=True, capture_output=True)


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keep every failure but three that are right:
    - a pull's 502 registry_error, with no registry to reach (POST
      /images/pull, or POST /run or /batch of an image not loaded);
    - DELETE in the Allow header of /images/pull: `DELETE /images/pull`
      removes the image named `pull` (DELETE /images/{reference}), as
      openapi.yaml says, but schemathesis reads the path as /images/pull
      alone;
    - POST /sessions's 503 busy while max_sessions generated sessions are
      open."""
    path = case.operation.path
    if (case.operation.method.upper(), path) in (("POST", "/images/pull"), ("POST", "/run"),
                                                 ("POST", "/batch"), ("POST", "/sessions")) \
            and response.status_code == 502:
        try:
            return response.json()["error"]["code"] != "registry_error"
        except (ValueError, KeyError, TypeError):
            return True
    # max_sessions open (the generated ones end within SESSION_SECS): the
    # documented 503 busy is the right answer.
    if (case.operation.method.upper(), path) == ("POST", "/sessions") \
            and response.status_code == 503:
        try:
            return response.json()["error"]["code"] != "busy"
        except (ValueError, KeyError, TypeError):
            return True
    if failure.code == "ST205" and path == "/images/pull" \
            and response.headers.get("allow") in (["POST, DELETE"], "POST, DELETE"):
        return False
    return True
