"""A property-based fuzz run of the API generated from openapi.yaml by
schemathesis, against the real stack, bounded in time: every response
conforms to the document, none is a server error (5xx), the server stays
up, and no sandbox is left behind.

The stack lives in a network namespace with only loopback (IsolatedStack),
so no generated request can reach beyond this machine, and runs are held
to a few seconds by its config.

By default the run is deterministic: a fixed seed, schemathesis's
deterministic generation (hypothesis derandomized) and a fixed number of
examples per operation (BOXER_FUZZ_EXAMPLES, default 40), with no time
budget that could cut it at a different point on a slower machine; the same
code gets the same requests every time, so the suite's verdict does not
depend on luck. BOXER_FUZZ_RANDOM=1 (what `contrib/fuzz.sh --api` sets)
fuzzes with a fresh random seed instead, for BOXER_FUZZ_SECONDS (default
600) at most; the seed is printed so a failure can be replayed with
BOXER_FUZZ_SEED.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import BUILD, BUSYBOX, NOCMD, PYTHON, ROOT, need
from contract import DOCUMENT

HERE = Path(__file__).resolve().parent
RANDOM = os.environ.get("BOXER_FUZZ_RANDOM") == "1"
SECONDS = int(os.environ.get("BOXER_FUZZ_SECONDS", "600"))
EXAMPLES = int(os.environ.get("BOXER_FUZZ_EXAMPLES", "1000" if RANDOM else "40"))
SEED = int(os.environ.get("BOXER_FUZZ_SEED", "20241101"))
DEAD_REGISTRY = "127.0.0.1:9"

OUTPUTS = ["results/summary.json", "dir/sub/data.bin", ".hidden", "with space %?#.txt"]
OUTPUTS_SCRIPT = ("mkdir -p /output/dir/sub /output/results; echo '{}' > /output/results/summary.json; "
                  "head -c 1000 /dev/zero > /output/dir/sub/data.bin; echo h > /output/.hidden; "
                  "echo s > '/output/with space %?#.txt'")
EXTRA_ARGS = os.environ.get("BOXER_FUZZ_ARGS", "").split()

# Checks that do not fit this API, and why:
# - positive_data_acceptance: a request valid by the document may still be
#   refused by the server's config (limits above its max_limits, a cmd the
#   image lacks, a file id never uploaded) with a documented 4xx.
# - use_after_free, ensure_resource_availability: need links between
#   operations, which the document does not declare.
# - ignored_auth, object_level_authorization: there is no authentication.
EXCLUDED_CHECKS = ["positive_data_acceptance", "use_after_free",
                   "ensure_resource_availability", "ignored_auth",
                   "object_level_authorization"]


def test_fuzz_the_api(isolated_stack, tmp_path):
    need(subprocess.run([sys.executable, "-c", "import schemathesis"],
                        capture_output=True).returncode == 0,
         "schemathesis is needed: run the tests with the python of contrib/python-env.sh")
    # Runs of a few seconds at most, so that a generated `sleep` cannot eat
    # the time budget.
    # Pulls are allowed (pull_policy "never" would answer every generated
    # pull 403 before it is looked at), but only from DEAD_REGISTRY, a
    # configured registry on the namespace's loopback where nothing
    # listens, and from docker.io (the document's examples), mirrored
    # there: every other reference is refused before any lookup, so no
    # host name is ever resolved.
    max_limits = {"memory_mb": 512, "wall_clock_secs": 3, "cpu_cores": 1, "pids_limit": 128,
                  "nofile": 1024}
    s = isolated_stack({"pull_policy": "if-not-present", "registry_timeout_secs": 2,
                        "registries": {DEAD_REGISTRY: {"insecure": True},
                                       "docker.io": {"mirror": f"http://{DEAD_REGISTRY}",
                                                     "insecure": True}},
                        "allowed_registries": [],
                        "defaults": {"wall_clock_secs": 3, "memory_mb": 64},
                        "max_limits": max_limits}, workers=2).start()
    # A run with outputs, and images that DELETE /images may remove: real
    # identifiers for the hooks (fuzz_hooks.py) to use now and then.
    made = s.run(["curl", "-sS", "-H", "Content-Type: application/json", "--data-binary",
                  json.dumps({"image": BUSYBOX, "cmd": ["sh", "-c", OUTPUTS_SCRIPT]}),
                  f"{s.url}/run"], capture_output=True, text=True, timeout=120, check=True)
    run_id = json.loads(made.stdout)["id"]
    # A session that outlives the fuzz run, with a file in it: generated
    # execs and file requests reach it now and then, not only 404s.
    made = s.run(["curl", "-sS", "-H", "Content-Type: application/json", "--data-binary",
                  json.dumps({"image": BUSYBOX, "idle_timeout_secs": 3600}),
                  f"{s.url}/sessions"], capture_output=True, text=True, timeout=120, check=True)
    session_id = json.loads(made.stdout)["id"]
    s.run(["curl", "-sS", "-X", "PUT", "--data-binary", "x",
           f"{s.url}/sessions/{session_id}/files/workspace/in.txt"],
          capture_output=True, timeout=120, check=True)
    layouts = subprocess.run([str(ROOT / "contrib/images/build-images.sh")], check=True,
                             capture_output=True, text=True).stdout.split()
    busybox_layout = dict(zip(layouts[0::2], layouts[1::2]))["busybox"]
    # The document's example reference among them, so that the examples
    # and coverage phases delete an image that exists too.
    deletable = {"references": ["localhost:5000/boxer/old-tool:1.0", "python:3.12-slim",
                                "fuzz-deletable", "localhost:5001/a/b__c:d.1"],
                 "load": [str(BUILD / "boxer-image"), "--config", str(s.config_path),
                          "load", busybox_layout]}
    env = dict(os.environ, SCHEMATHESIS_HOOKS="fuzz_hooks",
               PYTHONPATH=str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               BOXER_FUZZ_IMAGES=json.dumps([BUSYBOX, PYTHON, NOCMD]),
               BOXER_FUZZ_REGISTRY=DEAD_REGISTRY,
               BOXER_FUZZ_RUN=json.dumps({"id": run_id, "outputs": OUTPUTS}),
               BOXER_FUZZ_SESSION=json.dumps({"id": session_id, "files": ["workspace/in.txt"]}),
               BOXER_FUZZ_MAX_LIMITS=json.dumps(max_limits),
               BOXER_FUZZ_DELETABLE=json.dumps(deletable))
    cmd = [str(Path(sys.executable).parent / "schemathesis"),
           "--config-file", str(HERE / "schemathesis.toml"), "run", str(DOCUMENT),
           "--url", s.url, "--workers", "1",
           "--max-examples", str(EXAMPLES),
           "--request-timeout", "30", "--max-redirects", "0",
           "--checks", "all", "--exclude-checks", ",".join(EXCLUDED_CHECKS),
           "--no-color", *EXTRA_ARGS]
    if RANDOM:
        seed = int(os.environ.get("BOXER_FUZZ_SEED") or int.from_bytes(os.urandom(4), "little"))
        print(f"schemathesis seed {seed} (BOXER_FUZZ_SEED={seed} with BOXER_FUZZ_RANDOM=1 replays it)")
        cmd += ["--seed", str(seed), "--max-time", str(SECONDS), "--generation-database", "none"]
    else:
        cmd += ["--seed", str(SEED), "--generation-deterministic"]
    p = s.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
              timeout=(SECONDS if RANDOM else 1800) + 120)
    # All of it on failure (pytest shows the captured output), its summary in
    # the assertion.
    print(p.stdout, p.stderr[-3000:])
    summary = p.stdout[p.stdout.rfind("SUMMARY"):]
    assert p.returncode == 0, f"schemathesis found problems (its report is above):\n{summary}"
    assert "Tested: " in summary and " generated" in summary, summary
    # Warnings say that generated data did not reach the server's logic (the
    # document's constraints do not match its validation, or identifiers
    # are missing): a fuzz run that tested less than it claims.
    assert "WARNINGS" not in p.stdout and "Warnings:" not in summary, \
        f"schemathesis warned (its report is above):\n{summary}"

    # Still up and answering after all that.
    health = s.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"{s.url}/health"],
                   capture_output=True, text=True, timeout=30)
    assert health.stdout == "200", health
    # isolated_stack's teardown fails the test if any sandbox, cgroup, run
    # state or the namespace is left.
