"""Who reads through the dashboard: an API key from a sign-in cookie, or one configured for everyone.

The key is the user's own client key, typed once into the sign-in form and kept in a cookie that page
scripts cannot read (HttpOnly), that no other site's page can send (SameSite=Strict) and that only the
dashboard's paths receive (Path=/ui). It never appears in a page, a script or a URL. The shim keeps no
session state: the cookie is the session, so any replica serves any request.

The dashboard refuses admin keys: it only reads, and an admin key in a browser cookie would be a
credential able to reset any job, kept where it is not needed.

One ``AsyncJobsClient`` (one gRPC channel) per key, kept in a small LRU pool, so a page view is a few calls
on an open channel rather than a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import OrderedDict

from starlette.requests import Request
from starlette.responses import Response

from pipelinejobs_client import AsyncJobsClient, RetryPolicy
from pipelinejobs_client import errors as client_errors
from pipelinejobs_server.domain import errors
from pipelinejobs_server.web.failures import Misconfigured

from .settings import DashboardSettings

COOKIE = "pipelinejobs_ui_key"
COOKIE_PATH = "/ui"
COOKIE_MAX_AGE_S = 12 * 3600  # a working day; then the user signs in again
POOL_SIZE = 32
# An evicted client may still serve a live stream (web/sse.py ends each after WATCH_S): close it after that.
EVICTED_CLOSE_AFTER_S = 330.0
# Reads are safe to retry; one quick retry covers a replica restarting, and a page still answers fast.
RETRY = RetryPolicy(attempts=2, initial_backoff_s=0.1, max_backoff_s=0.5)


class AdminKeyRefused(errors.PermissionDenied):
    """An admin key offered to the read-only dashboard."""

    reason = "ADMIN_KEY_REFUSED"


async def check_read_key(client: AsyncJobsClient) -> None:
    """Pass for a valid client key; raise ``Unauthenticated`` for an unknown one, ``AdminKeyRefused``
    for an admin key. Only an admin may list every job's rejected events, so that call tells them apart.
    """
    try:
        await client.list_rejected_events("", page_size=1)
    except client_errors.AdminRequired:
        return
    raise AdminKeyRefused("this is an admin key; the dashboard only reads: sign in with a client key")


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Readers:
    """The dashboard's gRPC clients, one per API key; the configured key is checked on first use."""

    def __init__(self, settings: DashboardSettings) -> None:
        self._settings = settings
        self._pool: OrderedDict[str, AsyncJobsClient] = OrderedDict()
        self._evicted: dict[asyncio.Task[None], AsyncJobsClient] = {}
        self._shared_checked = False

    @property
    def shared(self) -> bool:
        """Whether the operator configured a key for everyone (then there is no sign-in)."""
        return bool(self._settings.api_key)

    def key_of(self, request: Request) -> str | None:
        return self._settings.api_key or request.cookies.get(COOKIE) or None

    def client(self, key: str) -> AsyncJobsClient:
        fingerprint = _fingerprint(key)
        client = self._pool.pop(fingerprint, None)
        if client is None:
            client = AsyncJobsClient(
                self._settings.server,
                api_key=key,
                tls=self._settings.tls or False,
                timeout=self._settings.call_timeout_s,
                retry=RETRY,
            )
        self._pool[fingerprint] = client
        while len(self._pool) > POOL_SIZE:
            _, evicted = self._pool.popitem(last=False)
            task = asyncio.get_running_loop().create_task(self._close_later(evicted))
            self._evicted[task] = evicted
            task.add_done_callback(self._evicted.pop)
        return client

    async def reader(self, request: Request) -> AsyncJobsClient | None:
        """The client to read with for this request; None when the user has to sign in."""
        key = self.key_of(request)
        if key is None:
            return None
        client = self.client(key)
        if self.shared and not self._shared_checked:
            try:
                await check_read_key(client)
            except (AdminKeyRefused, client_errors.Unauthenticated) as error:
                raise Misconfigured(f"PIPELINEJOBS_UI_API_KEY is refused: {error.message}") from None
            self._shared_checked = True
        return client

    async def discard(self, key: str) -> None:
        """Drop the client of a key the server refused: an unknown key must not hold a channel open."""
        client = self._pool.pop(_fingerprint(key), None)
        if client is not None:
            await client.close()

    async def _close_later(self, client: AsyncJobsClient) -> None:
        await asyncio.sleep(EVICTED_CLOSE_AFTER_S)
        await client.close()

    async def close(self) -> None:
        for task, client in list(self._evicted.items()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await client.close()
        while self._pool:
            _, client = self._pool.popitem()
            await client.close()


def _secure(request: Request, settings: DashboardSettings) -> bool:
    return settings.secure_cookie or request.url.scheme == "https"


def remember(response: Response, request: Request, settings: DashboardSettings, key: str) -> None:
    """Set the sign-in cookie; Secure whenever the dashboard is reached over HTTPS, or always if so set."""
    response.set_cookie(
        COOKIE,
        key,
        max_age=COOKIE_MAX_AGE_S,
        path=COOKIE_PATH,
        secure=_secure(request, settings),
        httponly=True,
        samesite="strict",
    )


def forget(response: Response, request: Request, settings: DashboardSettings) -> None:
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, secure=_secure(request, settings), httponly=True, samesite="strict"
    )
