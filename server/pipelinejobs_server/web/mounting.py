"""Several HTTP apps behind one port: ``pipelinejobs up`` serves the callback shim and the dashboard
together, and ``pipelinejobs dashboard`` serves the dashboard alone under the same /ui prefix.

Starlette runs the lifespan of the outermost app only, so the apps' own start-up and shut-down (the
shim's gRPC channels, the dashboard's pool of clients) are entered here, in order, and left in reverse.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

from starlette.applications import Starlette
from starlette.routing import Mount


def mounted(apps: Mapping[str, Starlette]) -> Starlette:
    """One app routing each prefix ("/ui", or "" for the rest) to its app, with all their lifespans."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for inner in apps.values():
                await stack.enter_async_context(inner.router.lifespan_context(inner))
            yield

    # Longest prefix first: "" would otherwise catch every path. Each app answers its own unknown paths
    # (both answer them in the JSON error shape, web/failures.py).
    routes = [Mount(prefix, app=apps[prefix]) for prefix in sorted(apps, key=len, reverse=True)]
    return Starlette(routes=routes, lifespan=lifespan)
