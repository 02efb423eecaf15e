"""Several HTTP apps behind one port: ``pipelinejobs up`` serves the callback shim and the dashboard
together, and ``pipelinejobs dashboard`` serves the dashboard alone under the same /ui prefix.

The root of the port, ``/``, sends a browser to the dashboard wherever one is mounted: the banner's
address is what people open first, and a JSON 404 there tells them nothing.

Starlette runs the lifespan of the outermost app only, so the apps' own start-up and shut-down (the
shim's gRPC channels, the dashboard's pool of clients) are entered here, in order, and left in reverse.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route


def mounted(apps: Mapping[str, Starlette], *, home: str | None = None) -> Starlette:
    """One app routing each prefix ("/ui", or "" for the rest) to its app, with all their lifespans;
    ``GET /`` redirects to the prefix ``home`` when given (any other method on ``/`` goes to the apps)."""
    if home is not None and home not in apps:
        raise ValueError(f"home {home!r} is not one of the mounted prefixes {sorted(apps)}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for inner in apps.values():
                await stack.enter_async_context(inner.router.lifespan_context(inner))
            yield

    # Longest prefix first: "" would otherwise catch every path. Each app answers its own unknown paths
    # (both answer them in the JSON error shape, web/failures.py).
    routes: list[BaseRoute] = [
        Mount(prefix, app=apps[prefix]) for prefix in sorted(apps, key=len, reverse=True)
    ]
    if home is not None:
        target = f"{home}/"

        async def redirect(request: Request) -> Response:
            return RedirectResponse(request.scope.get("root_path", "") + target, status_code=302)

        # First, so that the app mounted at "" does not answer it; a POST to "/" still reaches that app.
        routes.insert(0, Route("/", redirect, methods=["GET", "HEAD"]))
    return Starlette(routes=routes, lifespan=lifespan)
