"""F12: the dashboard's sign-in and sign-out refuse cross-site POSTs.

A real dashboard (uvicorn) in front of a real server; httpx plays the browser and sends the headers a
browser would send for a form posted from another site (``Origin``, ``Sec-Fetch-Site``).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from pipelinejobs_server.ui import DashboardSettings
from pipelinejobs_server.ui.access import COOKIE
from tests.servers import DashboardThread, ServerThread, start_grpc_server
from tests.support import CLIENT_KEY


@pytest.fixture(scope="module")
def dashboard(embedded: EmbeddedDatabase) -> Iterator[DashboardThread]:
    server: ServerThread = start_grpc_server(embedded)
    thread = DashboardThread(DashboardSettings(server=server.address)).start()
    yield thread
    thread.stop()
    server.stop()


def browser(dashboard: DashboardThread) -> httpx.Client:
    return httpx.Client(base_url=dashboard.url, timeout=15, follow_redirects=False)


CROSS_SITE = [
    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},  # what the finding sent
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another origin
    {"Origin": "https://evil.example"},  # a browser that sends no Sec-Fetch-Site
    {"Origin": "null"},  # a sandboxed frame or a data: URL
]


@pytest.mark.parametrize("headers", CROSS_SITE, ids=lambda headers: " ".join(headers.values()))
def test_a_cross_site_sign_in_is_refused(dashboard: DashboardThread, headers: dict[str, str]) -> None:
    """F12 (login CSRF): another site's form signed the victim into the attacker's key."""
    with browser(dashboard) as session:
        answer = session.post("/ui/login", data={"api_key": CLIENT_KEY, "next": "/ui/"}, headers=headers)
    assert answer.status_code == 403, answer.text
    assert "set-cookie" not in answer.headers
    assert "CROSS_SITE_REQUEST" in answer.text
    assert CLIENT_KEY not in answer.text


@pytest.mark.parametrize("headers", CROSS_SITE, ids=lambda headers: " ".join(headers.values()))
def test_a_cross_site_sign_out_is_refused(dashboard: DashboardThread, headers: dict[str, str]) -> None:
    """F12 (logout CSRF): another site's form deleted the victim's sign-in cookie."""
    with browser(dashboard) as session:
        session.cookies.set(COOKIE, CLIENT_KEY, path="/ui")
        answer = session.post("/ui/logout", headers=headers)
    assert answer.status_code == 403, answer.text
    assert "set-cookie" not in answer.headers


def test_same_origin_posts_and_clients_without_either_header_pass(dashboard: DashboardThread) -> None:
    """F12: the check refuses only what a browser marks as coming from elsewhere."""
    host = dashboard.url.removeprefix("http://")
    for headers in (
        {"Origin": dashboard.url, "Sec-Fetch-Site": "same-origin"},
        {"Origin": dashboard.url},  # an older browser: its Origin names this dashboard
        {"Origin": f"https://{host}"},  # the same host behind a TLS-terminating proxy
        {"Sec-Fetch-Site": "none"},  # typed or bookmarked by the user: no other site involved
        {},  # curl, scripts: no browser, so no cookie a forged form could ride on
    ):
        with browser(dashboard) as session:
            answer = session.post("/ui/login", data={"api_key": CLIENT_KEY, "next": "/ui/"}, headers=headers)
            assert answer.status_code == 303, (headers, answer.text)
            assert COOKIE in answer.headers["set-cookie"]
            out = session.post("/ui/logout", headers=headers)
            assert out.status_code == 303, (headers, out.text)
            assert "Max-Age=0" in out.headers["set-cookie"]
