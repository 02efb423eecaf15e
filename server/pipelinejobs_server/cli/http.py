"""Running one HTTP app alone until a signal: what ``shim`` and ``dashboard`` share."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette

from pipelinejobs_server.stopping import run_bounded
from pipelinejobs_server.web.connections import ConnectionLimits, budgeted
from pipelinejobs_server.web.failures import Misconfigured
from pipelinejobs_server.web.serving import bind, start_app

from . import options as common

log = logging.getLogger("pipelinejobs")

Check = Callable[[Starlette], Awaitable[None]]


async def _serve(
    app: Starlette,
    sock: socket.socket,
    name: str,
    banner: Callable[[str], str],
    check: Check | None,
    limits: ConnectionLimits,
) -> int:
    running = await start_app(app, sock, name, budgeted(limits))
    print(banner(running.url), flush=True)
    if check is not None:
        try:
            await check(app)
        except Misconfigured as error:
            print(f"error: {error.message}", file=sys.stderr)
            await running.stop(0)
            return 2
        except Exception as error:  # the server may come up later; the check runs again on first use
            log.warning("could not check the API key's role yet: %s", type(error).__name__)
    print("press Ctrl-C to stop", flush=True)
    await common.until_signalled()
    log.info("stopping: finishing in-flight requests (up to %.0f s)", common.GRACE_S)
    await running.stop(common.GRACE_S)
    return 0


def serve_app(
    app: Starlette,
    host: str,
    port: int,
    name: str,
    banner: Callable[[str], str],
    check: Check | None = None,
    limits: ConnectionLimits | None = None,
) -> int:
    """Serve ``app`` on ``host:port`` until SIGINT/SIGTERM, printing ``banner(url)`` once it listens;
    ``check`` runs then. Its connections are bounded by ``limits``, within the process's file budget."""
    try:
        sock = bind(host, port)
    except OSError as error:
        print(f"error: cannot listen on {host}:{port}: {error}", file=sys.stderr)
        return 1
    try:
        return run_bounded(_serve(app, sock, name, banner, check, limits or ConnectionLimits()))
    finally:
        sock.close()
