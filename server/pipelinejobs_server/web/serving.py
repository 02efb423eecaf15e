"""Serving an HTTP app with uvicorn on the running event loop, as one task among others.

The socket is bound first, by us: the caller learns the real port (for port 0) before anything is
served — ``up`` needs it to build the public callback URL the gRPC server hands out — and a busy port
is an ``OSError`` to report, not uvicorn's ``sys.exit`` inside someone else's loop. Signals belong to
the owning program (the CLI), so uvicorn's own signal capture is turned off. Every connection is
bounded in time and number (connections.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from .connections import LISTEN_BACKLOG, ConnectionLimits, GuardedConfig

STARTUP_TIMEOUT_S = 30.0
# Past its grace, what uvicorn's stop takes: its 0.1 s pause before waiting for requests, then the
# app's shutdown (closing its gRPC channels). A stop that overruns it is abandoned, not awaited.
STOP_MARGIN_S = 1.0

log = logging.getLogger("pipelinejobs.http")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this. Without it (asyncio sets it only on sockets it creates
        # itself), uvicorn's separate header and body writes meet the client's delayed ACK: measured
        # 44 ms per request instead of 0.7 ms on loopback.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def connectable(host: str) -> str:
    """The address a client on this machine connects to: a wildcard address is not one."""
    wildcards = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - naming, not binding
    return wildcards.get(host, host)


def host_port(host: str, port: int) -> str:
    host = connectable(host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def url_for(host: str, port: int) -> str:
    return f"http://{host_port(host, port)}"


@dataclass
class RunningApp:
    url: str
    port: int
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting, let in-flight requests finish (up to ``grace_s``), run the app's shutdown.

        Returns within ``max(1, grace_s) + STOP_MARGIN_S`` (uvicorn counts its grace in whole seconds).
        """
        grace = int(max(1, grace_s))
        self.server.config.timeout_graceful_shutdown = grace
        self.server.should_exit = True
        limit = grace + STOP_MARGIN_S
        done, _ = await asyncio.wait({self.task}, timeout=limit)
        if not done:
            self.server.force_exit = True
            log.warning("stop: the %s app still running after %.1f s; abandoned", self.task.get_name(), limit)
            return
        await self.task  # its outcome: an error in the shim's shutdown is raised here, as before


async def start_app(
    app: ASGIApp, sock: socket.socket, name: str = "http", limits: ConnectionLimits | None = None
) -> RunningApp:
    """Serve ``app`` on ``sock`` from the current loop; returns once it accepts connections."""
    config = GuardedConfig(
        app,
        limits or ConnectionLimits(),
        lifespan="on",
        log_config=None,  # the program's logging, with the redacting filters (logs.py)
        access_log=False,  # uvicorn's access line prints the raw query string, token included
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=name)
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_S
    while not server.started:
        if task.done():
            await task  # raises what stopped it
            raise RuntimeError(f"the {name} app stopped during start-up")
        if asyncio.get_running_loop().time() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the {name} app did not start in time")
        await asyncio.sleep(0.01)
    # asyncio listened with the small accept batch as the kernel's queue too; a listening socket
    # takes a new backlog from another listen() (connections.accept_batch).
    sock.listen(LISTEN_BACKLOG)
    host, port = sock.getsockname()[:2]
    return RunningApp(url_for(host, port), port, server, task)
