"""The ``pipelinejobs`` command.

Client commands (``pipelines``, ``jobs``, ``fsm``) are built only on the public ``JobsClient``, so they
work wherever the client is installed. Every other command (``up``, ``serve``, ``health``, …) belongs to
the server and is handed, arguments unchanged, to ``pipelinejobs_server.cli``, which needs the server
extra. Exit codes (docs/cli.md): 0 done, 1 the service refused or failed, 2 usage, 3 unavailable.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata

from pipelinejobs_client.errors import DeadlineExceeded, PipelineJobsError, ServiceUnavailable

from . import common, fsm, history, jobs, output, pipelines

EXIT_OK = 0
EXIT_SERVICE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_BROKEN_PIPE = 141  # what a shell reports for a writer killed by SIGPIPE (`... | head`)
EXIT_INTERRUPTED = 130

CLIENT_COMMANDS = ("pipelines", "jobs", "fsm")
# Shown in --help, and recognized to explain what to install, when the server extra is missing.
KNOWN_SERVER_COMMANDS = {
    "up": "start the embedded database and the gRPC server in the foreground",
    "serve": "run the gRPC server against an existing MongoDB",
    "health": "ask a server's standard gRPC health service; exit 0 if SERVING",
    "shim": "run the HTTP callback shim in front of a gRPC server",
}
SERVER_EXTRA = "pip install 'pipelinejobs[server,embedded]'"

ServerMain = Callable[[Sequence[str]], int]


def _server_main() -> tuple[ServerMain | None, str]:
    """The server's ``main``, or None and why not (an ImportError means the extra is not installed)."""
    try:
        from pipelinejobs_server.cli import main as server_main
    except ImportError as error:
        return None, str(error)
    return server_main, ""


def _discover_server_commands() -> dict[str, str] | None:
    """The server's commands and their help, read from its own parser so that new ones show up here.

    None when the server is not installed or its parser cannot be read.
    """
    try:
        from pipelinejobs_server.cli import build_parser

        parser = build_parser()
    except Exception:  # only listing depends on it: main() then hands every unknown command over
        return None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {choice.dest: choice.help or "" for choice in action._choices_actions}
    return None


def _version() -> str:
    """The installed distribution's version, for ``--version``."""
    try:
        return metadata.version("pipelinejobs")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser(server_help: Mapping[str, str] | None = None) -> common.Parser:
    """The client commands; ``server_help`` lists the server's commands too, for ``--help`` only."""
    parser = common.Parser(
        prog="pipelinejobs",
        description="Operate a PipelineJobs service: pipelines, jobs, their events and history.",
        epilog="Exit codes: 0 done, 1 the service refused or failed, 2 usage error, 3 service unavailable. "
        "Run 'pipelinejobs COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"pipelinejobs {_version()}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=common.Parser
    )
    pipelines.add_commands(commands)
    jobs.add_commands(commands)
    fsm.add_commands(commands)
    # Listed only: main() hands these to the server before this parser sees them.
    for name, text in (server_help or {}).items():
        commands.add_parser(name, help=f"{text} (server)", add_help=False)
    return parser


def run(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run a parsed client command and turn its failure into one line on stderr and an exit code."""
    try:
        return int(options.handler(options, environ))
    except common.UsageError as error:
        output.error(str(error))
        return EXIT_USAGE
    except (ServiceUnavailable, DeadlineExceeded) as error:
        output.error(f"{error} (server {common.server(options, environ)})")
        return EXIT_UNAVAILABLE
    except (PipelineJobsError, history.HistoryInvalid) as error:
        output.error(str(error))
        return EXIT_SERVICE
    except BrokenPipeError:
        # The reader left (`| head`). Point stdout at /dev/null so the flush at exit does not fail again.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _exit_code(stop: SystemExit) -> int:
    """The exit code an argparse ``SystemExit`` carries (None means success)."""
    if isinstance(stop.code, int):
        return stop.code
    return EXIT_USAGE if stop.code else EXIT_OK


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None) -> int:
    """Run ``pipelinejobs ARGS``; returns the exit code (also for ``--help`` and usage errors)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    environ = os.environ if environ is None else environ
    first = arguments[0] if arguments else ""
    listed: Mapping[str, str] = {}
    if first not in CLIENT_COMMANDS:
        # Only now import the server: it is slow to import, and client commands never need it.
        server_main, why = _server_main()
        discovered = _discover_server_commands() if server_main is not None else None
        named = bool(first) and not first.startswith("-")
        if server_main is not None and named and (discovered is None or first in discovered):
            try:
                return server_main(arguments)
            except SystemExit as stop:  # its argparse exits on --help and usage errors
                return _exit_code(stop)
        if server_main is None and first in KNOWN_SERVER_COMMANDS:
            output.error(f"'{first}' is a server command and needs the server extra ({SERVER_EXTRA}): {why}")
            return EXIT_USAGE
        # Help, or a typo: the client's parser answers, listing the server's commands with its own.
        listed = discovered or KNOWN_SERVER_COMMANDS
    parser = build_parser(listed)
    try:
        options = parser.parse_args(common.attach_opaque_values(arguments))
    except SystemExit as stop:  # --help, --version and usage errors: return the code, do not exit
        return _exit_code(stop)
    try:
        return run(options, environ)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
