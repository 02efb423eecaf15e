"""Commands other packages add to ``pipelinejobs``, through the ``pipelinejobs.commands`` entry points.

The server package contributes ``up``, ``serve``, ``shim``, ``dashboard`` and ``doctor`` this way
(pyproject.toml, ``[project.entry-points."pipelinejobs.commands"]``), so this package never names it:
what is installed is what is offered. Each entry point names a ``Command`` and the extras it needs
(``"pipelinejobs_server.cli.up:COMMAND [server,embedded]"``); when loading it fails because those extras
are not installed, the user is told what to install instead of "invalid choice".
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata

GROUP = "pipelinejobs.commands"


@dataclass(frozen=True)
class Command:
    """A contributed command: its one-line help, its arguments, and what it does (returning an exit code)."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Mapping[str, str]], int]
    description: str = ""


class NotInstalled(Exception):
    """A contributed command whose extra is not installed; the message says what to install."""


def discover() -> dict[str, metadata.EntryPoint]:
    """The contributed commands by name, read from installed metadata only (nothing is imported)."""
    return {entry.name: entry for entry in metadata.entry_points(group=GROUP)}


def install_hint(entry: metadata.EntryPoint) -> str:
    extras = ",".join(entry.extras)
    return f"pip install 'pipelinejobs[{extras}]'" if extras else "reinstall pipelinejobs"


def load(entry: metadata.EntryPoint) -> Command:
    """The command an entry point names; ``NotInstalled`` when its package cannot be imported."""
    try:
        command = entry.load()
    except ImportError as error:
        raise NotInstalled(
            f"'{entry.name}' is a server command and needs {install_hint(entry)}: {error}"
        ) from None
    if not isinstance(command, Command):
        raise TypeError(f"entry point {entry.value!r} is not a pipelinejobs Command")
    return command
