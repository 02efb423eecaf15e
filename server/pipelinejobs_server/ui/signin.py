"""Signing in to the dashboard with an API key, and out again.

The key arrives in a POSTed form body (never a URL), is checked against the server (a valid client key;
admin keys are refused, see access.py), and is kept in the HttpOnly sign-in cookie. Nothing else is stored.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pipelinejobs_client import AsyncJobsClient
from pipelinejobs_client import errors as client_errors
from pipelinejobs_server.domain.errors import PipelineJobsError
from pipelinejobs_server.web.body import read_limited

from . import access
from .dashboard import Dashboard, base

MAX_FORM_BYTES = 4096
MAX_KEY_LENGTH = 512


def _next(request: Request, raw: str) -> str:
    """Where to go after signing in: a dashboard path only, so the form cannot redirect off-site."""
    home = f"{base(request)}/"
    if raw.startswith(f"{base(request)}/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return home


async def login_form(dashboard: Dashboard, request: Request) -> Response:
    if dashboard.readers.shared:
        return RedirectResponse(f"{base(request)}/", status_code=303)
    notice = "Your key is no longer accepted; sign in again." if request.query_params.get("expired") else ""
    return _form(dashboard, request, _next(request, request.query_params.get("next", "")), notice=notice)


def _form(
    dashboard: Dashboard,
    request: Request,
    target: str,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    context = {"next": target, "notice": notice, "error": error}
    return dashboard.render(request, "login.html", context, status=status)


async def login(dashboard: Dashboard, request: Request) -> Response:
    try:
        form = parse_qs((await read_limited(request, MAX_FORM_BYTES)).decode("utf-8", "replace"))
    except PipelineJobsError as error:
        return dashboard.failed(request, error)
    key = (form.get("api_key") or [""])[0].strip()
    target = _next(request, (form.get("next") or [""])[0])
    if not key or len(key) > MAX_KEY_LENGTH:
        return _form(dashboard, request, target, error="Enter your API key.", status=400)
    # A client of its own: a mistyped key must not take a place in the pool.
    async with AsyncJobsClient(
        dashboard.settings.server, api_key=key, timeout=dashboard.settings.call_timeout_s, retry=access.RETRY
    ) as client:
        try:
            await access.check_read_key(client)
        except client_errors.Unauthenticated:
            return _form(
                dashboard, request, target, error="This API key is not valid on the server.", status=401
            )
        except access.AdminKeyRefused as refused:
            return _form(dashboard, request, target, error=refused.message, status=403)
        except client_errors.PipelineJobsError as error:
            return dashboard.failed(request, error)
    response = RedirectResponse(target, status_code=303)
    access.remember(response, request, key)
    return response


async def logout(dashboard: Dashboard, request: Request) -> Response:
    response = RedirectResponse(f"{base(request)}/login", status_code=303)
    access.forget(response, request)
    return response
