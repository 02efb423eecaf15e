"""``pipelinejobs serve``: the gRPC server against an existing MongoDB (``MONGODB_URI``), until SIGTERM.

``serve_until_signalled`` is also what ``up`` runs, with the HTTP apps beside the server on the same loop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp

from pipelinejobs_client.cli.plugins import Command
from pipelinejobs_server.app import start_server
from pipelinejobs_server.settings import Settings
from pipelinejobs_server.stopping import run_bounded
from pipelinejobs_server.web.connections import ConnectionLimits, budgeted
from pipelinejobs_server.web.serving import RunningApp, host_port, start_app

from . import options as common

log = logging.getLogger("pipelinejobs")


@dataclass
class HttpPlan:
    """The HTTP apps ``up`` serves beside the server: the socket is bound before the server starts (so
    the callback URLs can name its port), the app is built once the server's address is known."""

    sock: socket.socket
    build: Callable[[str], ASGIApp]
    """The app, given the gRPC server's host:port (the apps reach the server only over gRPC)."""
    banner: Callable[[str], Sequence[str]]
    """What to print once it listens, given its URL."""
    limits: ConnectionLimits
    """Deadlines and the cap on its connections (kept within this process's file budget)."""
    check: Callable[[str], Awaitable[None]]
    """Run once it serves, given the server's host:port; a SettingsError stops everything."""


async def serve_until_signalled(
    settings: Settings, banner: Sequence[str] = (), http: HttpPlan | None = None
) -> None:
    running = await start_server(settings)
    scheme = "TLS" if settings.tls.enabled else "plaintext"
    print(f"gRPC server listening on {settings.host}:{running.port} ({scheme})", flush=True)
    if running.metrics_http is not None:
        print(f"metrics on http://{host_port(settings.host, running.metrics_http.port)}/metrics", flush=True)
    served: RunningApp | None = None
    if http is not None:
        # Same process, same loop; the apps still reach the server only through gRPC.
        try:
            target = host_port(settings.host, running.port)
            served = await start_app(http.build(target), http.sock, "http", budgeted(http.limits))
        except BaseException:
            await running.stop(0)
            raise
        try:
            await http.check(target)
        except BaseException:
            await served.stop(0)
            await running.stop(0)
            raise
        for line in http.banner(served.url):
            print(line, flush=True)
    for line in banner:
        print(line, flush=True)
    await common.until_signalled()
    log.info("stopping: finishing in-flight calls (up to %.0f s)", common.GRACE_S)
    # One grace period for both: the HTTP apps' requests in flight are the server's calls in flight.
    deadline = asyncio.get_running_loop().time() + common.GRACE_S
    if served is not None:
        await served.stop(common.GRACE_S)  # first, so no callback arrives at a server that is going away
    await running.stop(max(0.0, deadline - asyncio.get_running_loop().time()))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mongodb-uri", default=None, help="MongoDB connection string (env MONGODB_URI)")
    common.add_server_arguments(parser)


def run(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    settings = common.settings_from(options, environ)
    if not settings.mongodb_uri:
        print(
            "error: set MONGODB_URI or --mongodb-uri (or use `pipelinejobs up` for the embedded database)",
            file=sys.stderr,
        )
        return 2
    if not settings.admin_keys and not settings.client_keys:
        log.warning(
            "no API keys configured (PIPELINEJOBS_ADMIN_KEY, PIPELINEJOBS_CLIENT_KEYS): only job tokens work"
        )
    run_bounded(serve_until_signalled(settings))
    return 0


COMMAND = Command(
    help="run the gRPC server against an existing MongoDB",
    add_arguments=add_arguments,
    run=common.guarded(run),
)
