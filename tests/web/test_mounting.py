"""Several HTTP apps on one port (web/mounting.py), as ``pipelinejobs up`` serves the shim and the
dashboard: each prefix reaches its own app, and every app's start-up and shut-down run. Served for real by
uvicorn on a free port (web/serving.py), asked over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipelinejobs_server.web.mounting import mounted
from pipelinejobs_server.web.serving import bind, start_app


def app_named(name: str, events: list[str]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append(f"{name} up")
        yield
        events.append(f"{name} down")

    async def where(request: Request) -> Response:
        root_path = request.scope.get("root_path", "")
        return JSONResponse({"app": name, "root_path": root_path, "path": request.url.path})

    return Starlette(routes=[Route("/here", where)], lifespan=lifespan)


def test_each_prefix_reaches_its_app_and_every_lifespan_runs() -> None:
    events: list[str] = []

    async def scenario() -> list[dict[str, str]]:
        app = mounted({"/ui": app_named("ui", events), "": app_named("shim", events)})
        running = await start_app(app, bind("127.0.0.1", 0), "test")
        try:
            assert events == ["ui up", "shim up"]
            async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
                answers = [(await http.get(path)).json() for path in ("/ui/here", "/here")]
                assert (await http.get("/ui/nowhere")).status_code == 404  # the ui app's own answer
                return answers
        finally:
            await running.stop(1.0)

    ui, shim = asyncio.run(scenario())
    # The dashboard builds its links from root_path: under /ui it must see /ui.
    assert ui == {"app": "ui", "root_path": "/ui", "path": "/ui/here"}
    assert shim == {"app": "shim", "root_path": "", "path": "/here"}
    assert events == ["ui up", "shim up", "shim down", "ui down"]


def test_the_root_redirects_to_the_home_prefix_and_other_methods_reach_the_apps() -> None:
    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        app = mounted({"/ui": app_named("ui", []), "": app_named("shim", [])}, home="/ui")
        running = await start_app(app, bind("127.0.0.1", 0), "test")
        try:
            async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
                return await http.get("/"), await http.head("/"), await http.post("/")
        finally:
            await running.stop(1.0)

    get, head, post = asyncio.run(scenario())
    assert (get.status_code, get.headers["location"]) == (302, "/ui/")
    assert (head.status_code, head.headers["location"]) == (302, "/ui/")
    assert post.status_code in (404, 405), "only a browser's GET is redirected"


def test_without_a_home_the_root_is_the_apps_own() -> None:
    async def scenario() -> httpx.Response:
        running = await start_app(mounted({"": app_named("shim", [])}), bind("127.0.0.1", 0), "test")
        try:
            async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
                return await http.get("/")
        finally:
            await running.stop(1.0)

    assert asyncio.run(scenario()).status_code == 404
    with pytest.raises(ValueError, match="not one of the mounted prefixes"):
        mounted({"": app_named("shim", [])}, home="/ui")
