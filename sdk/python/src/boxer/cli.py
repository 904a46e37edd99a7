"""The ``boxer`` command: Boxer from a shell, through :class:`~boxer.BoxerClient`.

::

    boxer run IMAGE [options] -- CMD...     run a program, its output streamed live
    boxer batch FILE.jsonl --image IMAGE    run one program per line, in one sandbox
    boxer images                            the server's cached images
    boxer health                            the server's health

``boxer run`` exits with the program's own exit status, so that it can
stand in for the program in scripts and makefiles; the statuses of its own
are those of ``env``, ``timeout`` and ``docker run``: 125 when Boxer
failed (the server refused or could not be reached, the message says
which), 2 for a mistake on the command line, 130 after Ctrl-C. The other
commands exit 0 when they succeeded.

Installed with the SDK as the ``boxer`` script; ``python -m boxer`` is the
same.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import IO, Any, Callable, Sequence

import httpx

from ._client import BoxerClient
from ._core import API_KEY_ENV, BASE_URL_ENV, BATCH_RUN_KEYS, DEFAULT_BASE_URL
from ._errors import BoxerConnectionError, BoxerError, UnauthorizedError
from ._types import Limits, ResultEvent, RunResult, StderrEvent, StdoutEvent
from ._version import __version__

__all__ = ["main"]

#: Exit statuses of the command's own, as ``docker run``'s: Boxer failed, and
#: the command line was wrong (argparse's). A program's own status passes through.
EXIT_BOXER = 125
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell shows for a program killed so

NETWORKS = ("none", "sandbox", "host")
LIMIT_KEYS = tuple(Limits.__dataclass_fields__)


class UsageError(Exception):
    """A mistake in the command line or its input, found after argparse."""


# --- parsing the command line --------------------------------------------------


def _key_value(example: str) -> Callable[[str], tuple[str, str]]:
    def parse(text: str) -> tuple[str, str]:
        key, eq, value = text.partition("=")
        if not eq or not key:
            raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. {example})")
        return key, value
    return parse


def _limit(text: str) -> tuple[str, int | float]:
    key, value = _key_value("memory_mb=256")(text)
    try:
        number: int | float = int(value)
    except ValueError:
        try:
            number = float(value)  # cpu_cores=0.5
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: {value!r} is not a number (e.g. memory_mb=256, cpu_cores=0.5; "
                f"the limits are {', '.join(LIMIT_KEYS)})") from None
    return key, number


def _file(text: str) -> tuple[str, str]:
    # The last colon: a local name may hold one (a time in a log's name),
    # and a path in the sandbox is chosen by the user.
    local, colon, dest = text.rpartition(":")
    if not colon or not local or not dest.startswith("/"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not LOCAL:DEST with DEST an absolute path in the sandbox "
            f"(e.g. main.py:/workspace/main.py)")
    return local, dest


def _wrap(text: str) -> str:
    # Descriptions are wrapped here: the help keeps the examples' lines as they are.
    return textwrap.fill(text, 79)


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    common = argparse.ArgumentParser(add_help=False)
    server = common.add_argument_group("server")
    server.add_argument("--url", metavar="URL",
                        help=f"the Boxer server (default: ${BASE_URL_ENV}, else "
                             f"{DEFAULT_BASE_URL})")
    server.add_argument("--api-key", metavar="KEY",
                        help=f"the API key, for a server that has keys (default: ${API_KEY_ENV}, "
                             f"which is better: a command line is visible to other users)")

    limits = argparse.ArgumentParser(add_help=False)
    limits.add_argument("--limit", metavar="KEY=VALUE", type=_limit, action="append", default=[],
                        help=f"a resource limit, repeatable: {', '.join(LIMIT_KEYS)} "
                             f"(e.g. --limit memory_mb=256 --limit wall_clock_secs=5); "
                             f"default: the server's")
    limits.add_argument("--network", choices=NETWORKS,
                        help="the sandbox's network (default: the server's, none); host only "
                             "where the operator allows it")
    limits.add_argument("--timeout", metavar="SECONDS", type=float,
                        help="how long to wait for the server (default: the wall-clock limit "
                             "plus 300 s)")

    parser = argparse.ArgumentParser(
        prog="boxer", description="Run programs in Boxer's gVisor sandboxes.",
        epilog="'boxer COMMAND --help' tells more about each command.")
    parser.add_argument("--version", action="version", version=f"boxer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run", parents=[limits, common], help="run a program and stream its output",
        description=_wrap("Run CMD in a fresh sandbox of IMAGE. Its stdout and stderr are "
                          "streamed to boxer's own as the program writes them, and boxer exits "
                          "with the program's exit status (128+N when a signal N killed it; 125 "
                          "when Boxer itself failed, 130 after Ctrl-C, which stops the run)."),
        epilog="examples:\n"
               "  boxer run python:3.12-slim -- python3 -c 'print(42)'\n"
               "  boxer run python:3.12-slim --file main.py:/w/main.py --workdir /w "
               "--limit wall_clock_secs=5 -- python3 main.py\n"
               "  echo 'print(1)' | boxer run python:3.12-slim --stdin -- python3 -",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("image", metavar="IMAGE", help="an image reference, pulled on first use")
    run.add_argument("cmd", metavar="CMD", nargs="*",
                     help="the command and its arguments, after '--' (default: the image's)")
    run.add_argument("--file", metavar="LOCAL:DEST", type=_file, action="append", default=[],
                     help="upload the local file LOCAL to DEST in the sandbox (read-only), "
                          "repeatable")
    run.add_argument("--env", metavar="KEY=VALUE", type=_key_value("LANG=C.UTF-8"),
                     action="append", default=[], help="an environment variable, repeatable")
    run.add_argument("--workdir", metavar="DIR",
                     help="the working directory (default: the image's)")
    run.add_argument("--stdin", action="store_true",
                     help="send boxer's standard input (read to its end first, UTF-8 text) "
                          "to the program; without it the program's is empty")
    run.add_argument("--json", action="store_true",
                     help="print the run's result as JSON at the end instead of streaming its "
                          "output")
    run.set_defaults(func=_cmd_run)

    batch = sub.add_parser(
        "batch", parents=[limits, common], help="run one program per line of a JSONL file",
        description=_wrap("Run the runs of FILE (one JSON object per line: cmd, stdin, env, "
                          "workdir, limits, files) as one batch in one sandbox of IMAGE, and "
                          "print each run's result as one JSON line, in the order of the file. "
                          "Exits 0 when the batch ran, whatever its programs' exit statuses."),
        epilog="example:\n"
               "  printf '%s\\n' '{\"cmd\": [\"python3\", \"-c\", \"print(1)\"]}' \\\n"
               "      '{\"cmd\": [\"python3\", \"-\"], \"stdin\": \"print(2)\"}' |\n"
               "      boxer batch - --image python:3.12-slim --parallelism 2\n\n"
               + _wrap("A line's files are {\"/path/in/sandbox\": \"its content\"}; its limits "
                       "are wall_clock_secs and memory_mb, while the --limit options are the "
                       "whole sandbox's."),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    batch.add_argument("file", metavar="FILE",
                       help="the runs, one JSON object per line; - for stdin")
    batch.add_argument("--image", required=True, help="the image every run uses")
    batch.add_argument("--parallelism", metavar="N", type=int,
                       help="how many runs at once (default: 1)")
    batch.set_defaults(func=_cmd_batch)

    images = sub.add_parser("images", parents=[common], help="list the server's cached images",
                            description="List the images in the server's cache, one per line: "
                                        "reference and digest.")
    images.set_defaults(func=_cmd_images)
    health = sub.add_parser("health", parents=[common], help="show the server's health",
                            description="Print the server's GET /health answer as JSON.")
    health.set_defaults(func=_cmd_health)
    return parser, {"run": run, "batch": batch, "images": images, "health": health}


# --- output ----------------------------------------------------------------------


def _write(stream: IO[str], text: str) -> None:
    """Write text now, as UTF-8 whatever the locale (the server's text is
    Unicode: a C locale must not turn a program's output into a traceback)."""
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(text)
    else:
        stream.flush()
        buffer.write(text.encode("utf-8", "replace"))
        buffer.flush()
    stream.flush()


def _say(text: str) -> None:
    _write(sys.stderr, f"boxer: {text}\n")


def _exit_status(result: RunResult) -> int:
    code = result.exit_code
    return code if 0 <= code <= 255 else EXIT_BOXER


def _notes(result: RunResult) -> list[str]:
    """What the exit status alone does not tell."""
    notes = []
    if result.timed_out:
        notes.append("the program timed out (its wall-clock limit; raise it with "
                     "--limit wall_clock_secs=N)")
    elif result.oom_killed:
        notes.append("the program ran out of memory (raise its limit with --limit memory_mb=N)")
    elif result.signal is not None:
        notes.append(f"the program was killed by signal {result.signal}")
    for name, cut in (("stdout", result.stdout_truncated), ("stderr", result.stderr_truncated)):
        if cut:
            notes.append(f"the program's {name} was truncated: the server keeps at most its "
                         f"output_limit_bytes of each stream")
    return notes


# --- the commands ---------------------------------------------------------------


def _read_files(specs: Sequence[tuple[str, str]]) -> dict[str, bytes]:
    files = {}
    for local, dest in specs:
        try:
            files[dest] = Path(local).read_bytes()
        except OSError as exc:
            raise UsageError(f"--file {local}:{dest}: cannot read {local}: "
                             f"{exc.strerror or exc}") from None
    return files


def _read_stdin() -> str:
    data: bytes | str = (sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin).read()
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"--stdin: standard input is not UTF-8 text (byte {exc.start}); a "
                         f"program's stdin is text in Boxer's API: send binary data as a "
                         f"--file instead") from None


def _cmd_run(args: argparse.Namespace, client: BoxerClient) -> int:
    kw: dict[str, Any] = dict(
        files=_read_files(args.file) or None,
        limits=dict(args.limit) or None,
        network=args.network,
        env=dict(args.env) or None,
        workdir=args.workdir,
        stdin=_read_stdin() if args.stdin else None,
        timeout=args.timeout,
    )
    cmd = args.cmd or None
    if args.json:
        result = client.run(args.image, cmd, **kw)
        _write(sys.stdout, json.dumps(result.raw, indent=2, ensure_ascii=False) + "\n")
        return _exit_status(result)
    final: RunResult | None = None
    line_open = False  # the last output did not end a line
    with client.stream(args.image, cmd, **kw) as events:
        for event in events:
            if isinstance(event, StdoutEvent):
                _write(sys.stdout, event.data)
                line_open = not event.data.endswith("\n")
            elif isinstance(event, StderrEvent):
                _write(sys.stderr, event.data)
                line_open = not event.data.endswith("\n")
            elif isinstance(event, ResultEvent):
                final = event.result
    if final is None:  # the SDK raises rather than end a stream without its result
        raise BoxerConnectionError("the event stream ended without the run's result")
    notes = _notes(final)
    if notes and line_open:
        _write(sys.stderr, "\n")
    for note in notes:
        _say(note)
    return _exit_status(final)


def _read_runs(name: str) -> list[dict[str, Any]]:
    """The runs of a JSONL file, checked line by line so that a mistake is
    reported with its line number."""
    try:
        if name == "-":
            text = sys.stdin.read()
        else:
            text = Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {name}: {getattr(exc, 'strerror', None) or exc}") from None
    where = "stdin" if name == "-" else name
    runs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            run = json.loads(line)
        except ValueError as exc:
            raise UsageError(f"{where}:{n}: not JSON ({exc})") from None
        if not isinstance(run, dict):
            raise UsageError(f"{where}:{n}: a run is a JSON object, e.g. "
                             f"{{\"cmd\": [\"python3\", \"-c\", \"print(1)\"]}}")
        unknown = sorted(set(run) - set(BATCH_RUN_KEYS))
        if unknown:
            raise UsageError(f"{where}:{n}: unknown key {unknown[0]!r}; a run has "
                             f"{', '.join(BATCH_RUN_KEYS)} (the image, network and the "
                             f"sandbox's limits are options of boxer batch)")
        runs.append(run)
    if not runs:
        raise UsageError(f"{where} holds no runs: write one JSON object per line")
    return runs


def _cmd_batch(args: argparse.Namespace, client: BoxerClient) -> int:
    runs = _read_runs(args.file)
    result = client.batch(args.image, runs, network=args.network,
                          limits=dict(args.limit) or None, parallelism=args.parallelism,
                          timeout=args.timeout)
    for r in result:
        _write(sys.stdout, json.dumps(r.raw, ensure_ascii=False) + "\n")
    return 0


def _cmd_images(args: argparse.Namespace, client: BoxerClient) -> int:
    images = client.images.list()
    width = max((len(i.reference) for i in images), default=0)
    _write(sys.stdout, "".join(f"{i.reference:<{width}}  {i.digest}\n" for i in images))
    return 0


def _cmd_health(args: argparse.Namespace, client: BoxerClient) -> int:
    health = client.health()
    _write(sys.stdout, json.dumps(health.raw, indent=2, ensure_ascii=False) + "\n")
    return 0


# --- main -------------------------------------------------------------------------


def _connection_message(exc: BoxerConnectionError, base_url: str) -> str:
    if isinstance(exc.__cause__, (httpx.ConnectError, httpx.ConnectTimeout)):
        return (f"cannot connect to the Boxer server at {base_url} ({exc.__cause__}); check "
                f"that it is running there, or give its address with --url URL (or "
                f"${BASE_URL_ENV})")
    return (f"{exc}\nboxer: check the Boxer server at {base_url} (is it running, and is "
            f"--url or ${BASE_URL_ENV} its address?)")


def _silence_stdout() -> None:
    # After a broken pipe, Python's own flush of stdout at exit would fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``boxer`` command with ``argv`` (default ``sys.argv[1:]``)
    and return its exit status; the ``boxer`` script exits with it."""
    parser, commands = _parser()
    words = list(sys.argv[1:] if argv is None else argv)
    # The command after "--" is split off here, not by argparse: with an
    # option between IMAGE and "--", argparse (before 3.12) rejects it.
    tail: list[str] | None = None
    if "--" in words:
        at = words.index("--")
        words, tail = words[:at], words[at + 1:]
    args = parser.parse_args(words)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if tail is not None:
        if args.command != "run":
            commands[args.command].error("only 'boxer run' takes a command after '--'")
        args.cmd = [*args.cmd, *tail]
    try:
        client = BoxerClient(args.url, api_key=args.api_key)
    except ValueError as exc:
        commands[args.command].error(str(exc))
    try:
        with client:
            status: int = args.func(args, client)
            return status
    except KeyboardInterrupt:
        # The stream is closed by now, so the server stops the run.
        _say("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read our stdout stopped (`boxer run ... | head`): the run is stopped too.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except UsageError as exc:
        _say(str(exc))
        return EXIT_USAGE
    except BoxerConnectionError as exc:
        _say(_connection_message(exc, client.base_url))
        return EXIT_BOXER
    except UnauthorizedError as exc:
        _say(f"{exc}\nboxer: the server needs an API key it knows: set ${API_KEY_ENV} "
             f"(or pass --api-key)")
        return EXIT_BOXER
    except BoxerError as exc:
        _say(str(exc))
        return EXIT_BOXER
    except (TypeError, ValueError) as exc:
        # The SDK's checks of its arguments, before anything is sent.
        _say(str(exc))
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
