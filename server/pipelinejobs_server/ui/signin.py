"""Signing in to the dashboard with an API key, and out again.

The key arrives in a POSTed form body (never a URL), is checked against the server (a valid client key;
admin keys are refused, see access.py), and is kept in the HttpOnly sign-in cookie. Nothing else is stored.

Both forms refuse a POST that a browser marks as sent from another site (``same_origin``): a forged
form could otherwise sign the victim into the attacker's key, or out of their own.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pipelinejobs_client import AsyncJobsClient
from pipelinejobs_client import errors as client_errors
from pipelinejobs_server.domain.errors import PermissionDenied, PipelineJobsError
from pipelinejobs_server.web.body import read_limited

from . import access
from .dashboard import Dashboard, base

MAX_FORM_BYTES = 4096
MAX_KEY_LENGTH = 512
# "none": the user typed, bookmarked or reloaded it; no other site is involved.
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})


class CrossSiteRequest(PermissionDenied):
    """A sign-in or sign-out posted from another site's page."""

    reason = "CROSS_SITE_REQUEST"


def same_origin(request: Request) -> bool:
    """Whether a browser says this POST comes from the dashboard's own pages.

    ``Sec-Fetch-Site`` is the browser's own verdict and survives proxies, so it decides when present.
    Older browsers send only ``Origin``: its host must be the one the request was sent to (the scheme
    is not compared: behind a TLS-terminating proxy the dashboard itself is reached over HTTP). A
    request with neither comes from no browser (curl, a script), so no victim's cookie rides on it.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site.strip().lower() in ALLOWED_FETCH_SITES
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin.strip() != "null" and bool(host) and urlsplit(origin.strip()).netloc.lower() == host.lower()


def _refuse(dashboard: Dashboard, request: Request) -> Response:
    refused = CrossSiteRequest("the dashboard accepts sign-in and sign-out only from its own pages")
    return dashboard.failed(request, refused)


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
    if not same_origin(request):
        return _refuse(dashboard, request)
    try:
        form = parse_qs((await read_limited(request, MAX_FORM_BYTES)).decode("utf-8", "replace"))
    except PipelineJobsError as error:
        return dashboard.failed(request, error)
    key = (form.get("api_key") or [""])[0].strip()
    target = _next(request, (form.get("next") or [""])[0])
    if not key or len(key) > MAX_KEY_LENGTH:
        return _form(dashboard, request, target, error="Enter your API key.", status=400)
    # A client of its own: a mistyped key must not take a place in the pool.
    settings = dashboard.settings
    async with AsyncJobsClient(
        settings.server,
        api_key=key,
        tls=settings.tls or False,
        timeout=settings.call_timeout_s,
        retry=access.RETRY,
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
    access.remember(response, request, dashboard.settings, key)
    return response


async def logout(dashboard: Dashboard, request: Request) -> Response:
    if not same_origin(request):
        return _refuse(dashboard, request)
    response = RedirectResponse(f"{base(request)}/login", status_code=303)
    access.forget(response, request, dashboard.settings)
    return response
