"""The dashboard's app: its routes, templates, security headers, and one error path.

``create_app`` builds it as an ASGI app of its own, mounted under /ui by ``pipelinejobs up`` (beside the
callback shim, on one port) and by ``pipelinejobs dashboard`` (alone): the public callback endpoint and
the internal dashboard can be deployed apart.


Every page and feed resolves its reader (access.py) and maps errors the same way, in ``page`` and
``feed``: a user without a key is sent to sign in (pages) or answered 401 (feeds); a key the server no
longer accepts is forgotten; any other error is the shared table's status (failures.py), shown as a page
or as the shim's JSON error.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipelinejobs_client import AsyncJobsClient
from pipelinejobs_client import errors as client_errors
from pipelinejobs_client.api.v1 import job_service_pb2
from pipelinejobs_server.domain import errors
from pipelinejobs_server.web.failures import Failure, Misconfigured, failure, http_error
from pipelinejobs_server.web.logs import AccessLog, install_redaction

from . import access
from .settings import DashboardSettings

MACHINE_TTL_S = 300.0  # the machine changes only with a server release; re-read it now and then
# Pages only load their own script and style, talk only to their own origin, and are never framed.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
_ERRORS = (errors.PipelineJobsError, client_errors.PipelineJobsError)

Handler = Callable[["Dashboard", Request, AsyncJobsClient], Awaitable[Response]]
Endpoint = Callable[["Dashboard", Request], Awaitable[Response]]


class SecurityHeaders:
    """Adds SECURITY_HEADERS (and no-store, unless the route set its own caching) to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = dict(SECURITY_HEADERS)
                if b"cache-control" not in present:
                    extra["cache-control"] = "no-store"  # job data is not for shared caches
                headers += [(k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def base(request: Request) -> str:
    """The dashboard's path prefix as this request reached it (``/ui``, or behind a proxy's prefix)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


class Dashboard:
    def __init__(self, settings: DashboardSettings) -> None:
        self.settings = settings
        self.readers = access.Readers(settings)
        environment = jinja2.Environment(
            loader=jinja2.PackageLoader("pipelinejobs_server.ui", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,  # a misspelt name fails a test instead of rendering blank
        )
        # JSON in pages as job.js writes it (compact), so server-rendered and live entries look alike.
        environment.policies["json.dumps_kwargs"] = {"sort_keys": True, "separators": (",", ":")}
        self.templates = Jinja2Templates(env=environment)
        self._machine: tuple[float, job_service_pb2.GetStateMachineResponse] | None = None

    async def machine(self, client: AsyncJobsClient) -> job_service_pb2.GetStateMachineResponse:
        now = time.monotonic()
        if self._machine is None or now - self._machine[0] > MACHINE_TTL_S:
            self._machine = (now, await client.get_state_machine())
        return self._machine[1]

    def render(self, request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        context = {"base": base(request), "signed_in": self.signed_in(request), **context}
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    def signed_in(self, request: Request) -> bool:
        """Whether to offer "sign out": only to users who signed in (not under a configured key)."""
        return not self.readers.shared and access.COOKIE in request.cookies

    def failed(self, request: Request, error: Exception) -> Response:
        answer = failure(error)
        return self.render(request, "error.html", {"failure": answer}, status=answer.status)

    def routes(self) -> list[BaseRoute]:
        from . import activity, pages, signin  # the handlers import this module for its types

        def bind(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
            return functools.partial(endpoint, self)

        return [
            Route("/", bind(pages.jobs_table), methods=["GET"], name="ui-jobs"),
            Route("/login", bind(signin.login_form), methods=["GET"]),
            Route("/login", bind(signin.login), methods=["POST"]),
            Route("/logout", bind(signin.logout), methods=["POST"]),
            Route("/activity", bind(activity.activity_page), methods=["GET"], name="ui-activity"),
            Route("/activity/events", bind(activity.activity_events), methods=["GET"]),
            Route("/jobs/{uuid}", bind(pages.job_page), methods=["GET"]),
            Route("/jobs/{uuid}/events", bind(pages.job_events), methods=["GET"]),
            Route("/jobs/{uuid}/provenance.json", bind(pages.provenance), methods=["GET"]),
            Mount(
                "/static",
                StaticFiles(packages=[("pipelinejobs_server.ui", "static")]),
                name="ui-static",
            ),
        ]

    async def close(self) -> None:
        await self.readers.close()


def page(handler: Handler) -> Endpoint:
    """An HTML page: sign in first if there is no key; errors as an error page."""

    @functools.wraps(handler)
    async def endpoint(dashboard: Dashboard, request: Request) -> Response:
        try:
            client = await dashboard.readers.reader(request)
            if client is None:
                return sign_in(request)
            return await handler(dashboard, request, client)
        except client_errors.Unauthenticated:
            await dashboard.readers.discard(dashboard.readers.key_of(request) or "")
            if dashboard.readers.shared:  # the operator's key: nothing the user can fix by signing in
                refused = Misconfigured("PIPELINEJOBS_UI_API_KEY is not valid on the server")
                return dashboard.failed(request, refused)
            response = sign_in(request, expired=True)
            access.forget(response, request, dashboard.settings)
            return response
        except _ERRORS as error:
            return dashboard.failed(request, error)

    return endpoint


def feed(handler: Handler) -> Endpoint:
    """A machine-readable answer (JSON, SSE): errors as the shim's JSON errors, never a redirect."""

    @functools.wraps(handler)
    async def endpoint(dashboard: Dashboard, request: Request) -> Response:
        try:
            client = await dashboard.readers.reader(request)
            if client is None:
                return Failure(401, "SIGN_IN_REQUIRED", "sign in to the dashboard first", {}).response()
            return await handler(dashboard, request, client)
        except _ERRORS as error:
            if isinstance(error, client_errors.Unauthenticated):
                await dashboard.readers.discard(dashboard.readers.key_of(request) or "")
            return failure(error).response()

    return endpoint


def sign_in(request: Request, *, expired: bool = False) -> Response:
    """Redirect to the sign-in form, coming back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    notice = "&expired=1" if expired else ""
    return RedirectResponse(f"{base(request)}/login?next={quote(target, safe='')}{notice}", status_code=303)


PREFIX = "/ui"
"""Where the dashboard is served: its cookie is scoped to this path (access.COOKIE_PATH)."""


def create_app(settings: DashboardSettings) -> Starlette:
    """The dashboard as an ASGI app; serve it under ``PREFIX`` (web/mounting.py)."""
    install_redaction()
    dashboard = Dashboard(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await dashboard.close()

    app = Starlette(
        routes=dashboard.routes(),
        middleware=[Middleware(AccessLog, logger="pipelinejobs.ui.access"), Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.dashboard = dashboard  # for tests and embedding; it keeps no job state
    return app
