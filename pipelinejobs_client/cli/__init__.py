"""The ``pipelinejobs`` command.

Client commands (``pipelines``, ``jobs``, ``fsm``, ``health``) are built only on the public client, so
they work wherever the client is installed. Other packages contribute more commands through the
``pipelinejobs.commands`` entry points (plugins.py): the server package adds ``up``, ``serve``, ``shim``,
``dashboard`` and ``doctor``, which need its extras. This package never imports the server: a command
it does not know is looked up among the entry points, and loaded only when it is the one being run (or
for ``--help``). Exit codes (docs/cli.md): 0 done, 1 the service refused or failed, 2 usage, 3 unavailable.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata

from pipelinejobs_client.errors import DeadlineExceeded, PipelineJobsError, ServiceUnavailable

from . import common, events, fsm, health, history, jobs, output, pipelines, plugins

EXIT_OK = 0
EXIT_SERVICE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_BROKEN_PIPE = 141  # what a shell reports for a writer killed by SIGPIPE (`... | head`)
EXIT_INTERRUPTED = 130

CLIENT_COMMANDS = ("pipelines", "jobs", "fsm", "health")


def _version() -> str:
    """The installed distribution's version, for ``--version``."""
    try:
        return metadata.version("pipelinejobs")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser(contributed: Mapping[str, plugins.Command | str] | None = None) -> common.Parser:
    """The client commands, and the ``contributed`` ones: a ``Command`` is added with its arguments;
    a string (why it cannot be loaded) is listed in ``--help`` only."""
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
    events.add_commands(commands)
    fsm.add_commands(commands)
    health.add_commands(commands)
    for name, command in (contributed or {}).items():
        if isinstance(command, plugins.Command):
            sub = commands.add_parser(name, help=command.help, description=command.description or None)
            command.add_arguments(sub)
            sub.set_defaults(handler=command.run)
        else:
            commands.add_parser(name, help=command, add_help=False)
    return parser


def _contributed(first: str) -> Mapping[str, plugins.Command | str]:
    """The contributed commands to add for a command line starting with ``first``.

    Only the command being run is loaded (importing the server is slow, and the other commands are not
    needed); for help or an unknown word, every one is, so the help lists them all.
    """
    entries = plugins.discover()
    chosen = {first: entries[first]} if first in entries else entries
    found: dict[str, plugins.Command | str] = {}
    for name, entry in chosen.items():
        try:
            found[name] = plugins.load(entry)
        except plugins.NotInstalled:
            if name == first:
                raise
            found[name] = f"(not installed: {plugins.install_hint(entry)})"
    return found


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
    try:
        contributed = {} if first in CLIENT_COMMANDS else _contributed(first)
    except plugins.NotInstalled as error:
        output.error(str(error))
        return EXIT_USAGE
    parser = build_parser(contributed)
    try:
        options = parser.parse_args(common.attach_opaque_values(arguments))
    except SystemExit as stop:  # --help, --version and usage errors: return the code, do not exit
        return _exit_code(stop)
    try:
        return run(options, environ)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
