"""F15: every answer of the callback shim says ``nosniff``, and the dashboard's sign-in cookie can be
forced ``Secure`` when a TLS-terminating proxy stands in front of it.

A real shim and a real dashboard (uvicorn) in front of a real server.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from pipelinejobs_server.ui import DashboardSettings
from pipelinejobs_server.ui.access import COOKIE
from tests.servers import DashboardThread, ServerThread, ShimThread, start_grpc_server
from tests.shim.helpers import http_client
from tests.support import CLIENT_KEY


def test_every_shim_answer_says_nosniff(shim: ShimThread) -> None:
    """F15: ``/v1/*``, ``/healthz``, ``/metrics`` and ``/openapi.json`` sent no X-Content-Type-Options."""
    with http_client(shim.url) as http:
        answers = [
            http.get("/healthz"),
            http.get("/metrics"),
            http.get("/openapi.json"),
            http.get("/v1/callbacks/agave"),  # 400: no uuid
            http.post("/v1/events", content=b"not json"),  # 400
            http.get("/no/such/path"),  # 404
        ]
    for answer in answers:
        assert answer.headers.get("x-content-type-options") == "nosniff", (answer.url, answer.headers)


@pytest.fixture(scope="module")
def server(embedded: EmbeddedDatabase) -> Iterator[ServerThread]:
    thread = start_grpc_server(embedded)
    yield thread
    thread.stop()


def test_the_sign_in_cookie_can_be_forced_secure_behind_a_tls_proxy(server: ServerThread) -> None:
    """F15: behind a remote TLS proxy the dashboard sees plain HTTP, so the cookie went out without Secure."""
    dashboard = DashboardThread(DashboardSettings(server=server.address, secure_cookie=True)).start()
    try:
        with httpx.Client(base_url=dashboard.url, timeout=15) as session:
            answer = session.post("/ui/login", data={"api_key": CLIENT_KEY, "next": "/ui/"})
            assert answer.status_code == 303, answer.text
            assert COOKIE in answer.headers["set-cookie"]
            assert "Secure" in answer.headers["set-cookie"]
            out = session.post("/ui/logout")
            assert "Max-Age=0" in out.headers["set-cookie"]
            assert "Secure" in out.headers["set-cookie"]
    finally:
        dashboard.stop()
    assert DashboardSettings.from_environ({"PIPELINEJOBS_UI_SECURE_COOKIE": "1"}).secure_cookie
    assert not DashboardSettings.from_environ({}).secure_cookie
