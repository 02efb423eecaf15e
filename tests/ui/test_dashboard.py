"""The dashboard over HTTP (no browser): signing in, what the cookie is, that no key reaches a page, the
table's filters, counts and pages, the job page, the live event stream and the provenance document.

A real gRPC server on the real embedded database and the real dashboard (uvicorn) on free ports; httpx
plays the browser. tests/system/test_ui_browser.py drives Chromium through the same pages.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prov.model import ProvDocument

from pipelinejobs_client import JobsClient
from pipelinejobs_client.api.v1 import job_service_pb2
from pipelinejobs_server.settings import Streams
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from pipelinejobs_server.ui import DashboardSettings, history
from pipelinejobs_server.ui.access import COOKIE
from pipelinejobs_server.ui.filters import STATES
from tests.servers import DashboardThread, ServerThread, start_grpc_server
from tests.support import ADMIN_KEY, CLIENT_KEY

STATE_COUNT = re.compile(
    r'data-state="([A-Z]+)"[^>]*>\s*<span[^>]*>[A-Z]+</span>\s*<strong>(\d+\+?)</strong>'
)
ROW = re.compile(r'<tr data-uuid="([0-9a-f-]{36})">')


@pytest.fixture(scope="module")
def server(embedded: EmbeddedDatabase) -> Iterator[ServerThread]:
    thread = start_grpc_server(embedded)
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def dashboard(server: ServerThread) -> Iterator[DashboardThread]:
    thread = DashboardThread(DashboardSettings(server=server.address)).start()
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def client(server: ServerThread) -> Iterator[JobsClient]:
    with JobsClient(server.address, api_key=CLIENT_KEY) as jobs:
        yield jobs


@pytest.fixture(scope="module")
def pipeline(client: JobsClient) -> str:
    return client.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid


def browser(dashboard: DashboardThread) -> httpx.Client:
    return httpx.Client(base_url=dashboard.url, timeout=15, follow_redirects=False)


@contextmanager
def signed_in(dashboard: DashboardThread, key: str = CLIENT_KEY) -> Iterator[httpx.Client]:
    with browser(dashboard) as session:
        answer = session.post("/ui/login", data={"api_key": key, "next": "/ui/"})
        assert answer.status_code == 303, answer.text
        yield session


def make_job(
    client: JobsClient, pipeline: str, experiment: str, *events: str
) -> job_service_pb2.CreateJobResponse:
    created = client.create_job(pipeline, experiment=experiment, sample=uuid.uuid4().hex, agent="reactor-7")
    for event in events:
        client.send_event(created.job.uuid, event, token=created.token)
    return created


def counts(html: str) -> dict[str, str]:
    return dict(STATE_COUNT.findall(html))


# -- signing in --------------------------------------------------------------------------------------------


def test_pages_ask_for_a_sign_in_and_feeds_answer_401(dashboard: DashboardThread) -> None:
    with browser(dashboard) as session:
        answer = session.get("/ui/", params={"state": "RUNNING"})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/login?next=%2Fui%2F%3Fstate%3DRUNNING"
        form = session.get("/ui/login", params={"next": "/ui/?state=RUNNING"})
        assert form.status_code == 200
        assert 'name="api_key"' in form.text
        job = str(uuid.uuid4())
        for path in (f"/ui/jobs/{job}/events", f"/ui/jobs/{job}/provenance.json"):
            refused = session.get(path)
            assert refused.status_code == 401
            assert refused.json()["error"]["reason"] == "SIGN_IN_REQUIRED"


def test_signing_in_sets_a_strict_http_only_cookie_and_no_page_shows_the_key(
    dashboard: DashboardThread, client: JobsClient, pipeline: str
) -> None:
    created = make_job(client, pipeline, "cookie", "run")
    with browser(dashboard) as session:
        answer = session.post("/ui/login", data={"api_key": CLIENT_KEY, "next": "/ui/?state=RUNNING"})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/?state=RUNNING"
        cookie = answer.headers["set-cookie"]
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/ui", "Max-Age=43200"):
            assert attribute in cookie
        assert "Secure" not in cookie  # plain HTTP here; set whenever the dashboard is reached over HTTPS
        pages = [
            session.get("/ui/"),
            session.get(f"/ui/jobs/{created.job.uuid}"),
            session.get("/ui/static/job.js"),
            session.get(f"/ui/jobs/{created.job.uuid}/provenance.json"),
        ]
        for page in pages:
            assert page.status_code == 200, page.text
            assert CLIENT_KEY not in page.text
            assert created.token not in page.text
        assert "script-src 'self'" in pages[0].headers["content-security-policy"]
        assert pages[0].headers["cache-control"] == "no-store"
        assert "Sign out" in pages[0].text


@pytest.mark.parametrize(
    ("key", "status", "message"),
    [
        ("not-a-key-of-this-server", 401, "not valid on the server"),
        (ADMIN_KEY, 403, "admin key"),
        ("", 400, "Enter your API key"),
    ],
    ids=["unknown", "admin", "empty"],
)
def test_a_wrong_or_admin_key_is_refused_and_nothing_is_kept(
    dashboard: DashboardThread, key: str, status: int, message: str
) -> None:
    with browser(dashboard) as session:
        answer = session.post("/ui/login", data={"api_key": key})
        assert answer.status_code == status
        assert message in answer.text
        assert "set-cookie" not in answer.headers
        assert key not in answer.text or not key


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/ui/", "/elsewhere", "/ui\\..\\x"]
)
def test_after_signing_in_the_dashboard_never_redirects_elsewhere(
    dashboard: DashboardThread, target: str
) -> None:
    with browser(dashboard) as session:
        answer = session.post("/ui/login", data={"api_key": CLIENT_KEY, "next": target})
        assert answer.headers["location"] == "/ui/"


def test_signing_out_forgets_the_key_and_a_revoked_one_sends_back_to_sign_in(
    dashboard: DashboardThread,
) -> None:
    with signed_in(dashboard) as session:
        out = session.post("/ui/logout")
        assert out.status_code == 303
        assert out.headers["location"] == "/ui/login"
        assert f'{COOKIE}=""' in out.headers["set-cookie"]
        assert "Max-Age=0" in out.headers["set-cookie"]
    with browser(dashboard) as session:
        session.cookies.set(COOKIE, "a-key-the-server-no-longer-has", path="/ui")
        answer = session.get("/ui/")
        assert answer.status_code == 303
        assert answer.headers["location"].endswith("&expired=1")
        assert "Max-Age=0" in answer.headers["set-cookie"]
    # Nor does the refused key keep a gRPC channel in the dashboard.
    readers = dashboard.dashboard.readers
    assert hashlib.sha256(b"a-key-the-server-no-longer-has").hexdigest() not in readers._pool


def test_a_configured_read_key_needs_no_sign_in_and_an_admin_one_is_refused(
    dashboard: DashboardThread, client: JobsClient, pipeline: str
) -> None:
    make_job(client, pipeline, "shared")
    shared = DashboardThread(replace(dashboard.settings, api_key=CLIENT_KEY)).start()
    try:
        with browser(shared) as session:
            page = session.get("/ui/", params={"experiment": "shared"})
            assert page.status_code == 200
            assert len(ROW.findall(page.text)) == 1
            assert CLIENT_KEY not in page.text
            assert "Sign out" not in page.text
            assert session.get("/ui/login").status_code == 303
    finally:
        shared.stop()
    admin = DashboardThread(replace(dashboard.settings, api_key=ADMIN_KEY)).start()
    try:
        with browser(admin) as session:
            page = session.get("/ui/")
            assert page.status_code == 500
            assert "SHIM_MISCONFIGURED" in page.text
            assert ADMIN_KEY not in page.text
    finally:
        admin.stop()


# -- the jobs table ----------------------------------------------------------------------------------------


def test_the_table_filters_counts_and_pages(
    dashboard: DashboardThread, client: JobsClient, pipeline: str
) -> None:
    experiment = f"table-{uuid.uuid4().hex[:8]}"
    running = [make_job(client, pipeline, experiment, "run") for _ in range(11)]
    failed = make_job(client, pipeline, experiment, "run", "fail")
    created = make_job(client, pipeline, experiment)
    other = client.register_pipeline("align", ["bwa@0.7.17"]).pipeline.uuid
    aligned = make_job(client, other, experiment, "run", "finish")
    with signed_in(dashboard) as session:
        page = session.get("/ui/", params={"experiment": experiment})
        expected = {
            **dict.fromkeys(STATES, "0"),
            "RUNNING": "11",
            "FAILED": "1",
            "CREATED": "1",
            "FINISHED": "1",
        }
        assert counts(page.text) == expected
        assert len(ROW.findall(page.text)) == 14

        # Pages of 10, newest first, forward and back with the service's own page tokens.
        first = session.get("/ui/", params={"experiment": experiment, "state": "RUNNING", "size": "10"})
        rows = ROW.findall(first.text)
        assert rows == [job.job.uuid for job in reversed(running)][:10]
        assert counts(first.text)["RUNNING"] == "11"  # counts ignore the state filter
        next_href = re.search(r'href="(\?[^"]+)" id="next-page"', first.text)
        assert next_href is not None
        assert 'id="previous-page"' not in first.text
        second = session.get("/ui/" + next_href.group(1).replace("&amp;", "&"))
        assert ROW.findall(second.text) == [running[0].job.uuid]
        assert 'id="next-page"' not in second.text
        assert "page 2" in second.text
        back = re.search(r'href="(\?[^"]+)" id="previous-page"', second.text)
        assert back is not None
        assert ROW.findall(session.get("/ui/" + back.group(1).replace("&amp;", "&")).text) == rows

        by_pipeline = session.get("/ui/", params={"experiment": experiment, "pipeline": other})
        assert ROW.findall(by_pipeline.text) == [aligned.job.uuid]
        by_state = session.get("/ui/", params={"experiment": experiment, "state": "FAILED"})
        assert ROW.findall(by_state.text) == [failed.job.uuid]
        later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        future = session.get("/ui/", params={"experiment": experiment, "from": later})
        assert ROW.findall(future.text) == []
        assert 'id="no-jobs"' in future.text
        window = session.get("/ui/", params={"experiment": experiment, "to": later, "state": "CREATED"})
        assert ROW.findall(window.text) == [created.job.uuid]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"state": "SLEEPING"}, "state"), ({"from": "yesterday"}, "from"), ({"size": "7"}, "size")],
)
def test_a_bad_filter_is_a_400_page_that_names_it(
    dashboard: DashboardThread, params: dict[str, str], field: str
) -> None:
    with signed_in(dashboard) as session:
        page = session.get("/ui/", params=params)
        assert page.status_code == 400
        assert "INVALID_ARGUMENT" in page.text
        assert field in page.text


# -- one job -----------------------------------------------------------------------------------------------


def test_the_job_page_has_fields_diagram_path_and_history(
    dashboard: DashboardThread, client: JobsClient, pipeline: str
) -> None:
    created = make_job(client, pipeline, "job-page", "run", "update", "finish")
    with signed_in(dashboard) as session:
        page = session.get(f"/ui/jobs/{created.job.uuid}")
    assert page.status_code == 200
    html = page.text
    assert created.job.archive_path in html
    assert "reactor-7" in html
    assert re.search(r'class="node state-FINISHED visited current" data-state="FINISHED"', html)
    taken = re.findall(r'class="edge[^"]* taken[^"]*"\s+data-source="(\w*)" data-target="(\w+)"', html)
    assert set(taken) == {
        ("", "CREATED"),
        ("CREATED", "RUNNING"),
        ("RUNNING", "RUNNING"),
        ("RUNNING", "FINISHED"),
    }
    assert re.findall(r'<li class="entry" data-seq="(\d+)">', html) == ["4", "3", "2", "1"]
    assert f'href="/ui/jobs/{created.job.uuid}/provenance.json"' in html
    assert 'src="/ui/static/job.js"' in html
    assert "<script>" not in html  # no inline script: the CSP allows none


def test_an_unknown_or_malformed_job_is_an_error_page(dashboard: DashboardThread) -> None:
    with signed_in(dashboard) as session:
        missing = session.get(f"/ui/jobs/{uuid.uuid4()}")
        assert missing.status_code == 404
        assert "JOB_NOT_FOUND" in missing.text
        malformed = session.get("/ui/jobs/not-a-uuid")
        assert malformed.status_code == 400


def read_entries(lines: Iterator[str], count: int) -> list[dict[str, Any]]:
    """The next ``count`` SSE ``entry`` messages, each with its id."""
    entries: list[dict[str, Any]] = []
    message: dict[str, str] = {}
    for line in lines:
        if line:
            name, _, value = line.partition(": ")
            message[name] = value
            continue
        if message.get("event") == "entry":
            entries.append({"id": int(message["id"]), **json.loads(message["data"])})
            if len(entries) == count:
                return entries
        message = {}
    raise AssertionError(f"the stream ended after {entries}")


def test_the_event_stream_resumes_after_the_last_event_id_then_goes_live(
    dashboard: DashboardThread, client: JobsClient, pipeline: str
) -> None:
    created = make_job(client, pipeline, "stream", "run", "update")
    with signed_in(dashboard) as session:
        url = f"/ui/jobs/{created.job.uuid}/events"
        # The browser reconnects with Last-Event-ID: it wins over the page's ?after=.
        with session.stream("GET", url, params={"after": "0"}, headers={"last-event-id": "2"}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == "retry: 2000"
            (backlog,) = read_entries(lines, 1)
            assert (backlog["id"], backlog["event"], backlog["from_state"]) == (3, "update", "RUNNING")
            client.send_event(created.job.uuid, "finish", token=created.token, data={"size": 3})
            (live,) = read_entries(lines, 1)
            assert live == {**live, "id": 4, "seq": 4, "event": "finish", "to_state": "FINISHED"}
            assert live["data"] == {"size": 3}
        assert session.get(f"/ui/jobs/{uuid.uuid4()}/events").status_code == 404


def test_the_event_stream_ends_quietly_when_the_server_ends_the_watch(embedded: EmbeddedDatabase) -> None:
    # WATCH_RESUME (the watch's maximum duration, a server stopping) is a normal end: no "failure"
    # message; the browser reconnects with the last id, as after the dashboard's own WATCH_S.
    server = start_grpc_server(embedded, streams=Streams(max_watch_s=1.0))
    dashboard = DashboardThread(DashboardSettings(server=server.address)).start()
    try:
        with JobsClient(server.address, api_key=CLIENT_KEY) as jobs:
            pipeline = jobs.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
            created = make_job(jobs, pipeline, "resume", "run")
        with signed_in(dashboard) as session:
            url = f"/ui/jobs/{created.job.uuid}/events"
            # Heartbeats come every 15 s: a stream still open after 5 s of silence fails the read.
            with session.stream("GET", url, timeout=5) as stream:
                lines = list(stream.iter_lines())
    finally:
        dashboard.stop()
        server.stop()
    assert lines[0] == "retry: 2000"
    assert [line for line in lines if line.startswith("id: ")] == ["id: 1", "id: 2"]
    assert not [line for line in lines if line.startswith("event: ") and line != "event: entry"], lines


def test_the_provenance_link_serves_the_prov_json_of_the_job(
    dashboard: DashboardThread, client: JobsClient, pipeline: str
) -> None:
    created = make_job(client, pipeline, "prov", "run", "finish")
    with signed_in(dashboard) as session:
        answer = session.get(f"/ui/jobs/{created.job.uuid}/provenance.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert f"job-{created.job.uuid}.prov.json" in answer.headers["content-disposition"]
    document = ProvDocument.deserialize(content=answer.text, format="json")
    assert document == ProvDocument.deserialize(
        content=client.export_provenance(created.job.uuid), format="json"
    )


def test_a_long_history_is_shown_a_page_at_a_time_newest_first(
    dashboard: DashboardThread, client: JobsClient, pipeline: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "PAGE", 3)
    created = make_job(client, pipeline, "long", "run", "update", "update", "update", "finish")
    path = f"/ui/jobs/{created.job.uuid}"
    with signed_in(dashboard) as session:
        newest = session.get(path).text
        older = session.get(path, params={"before": "4"}).text
        refused = session.get(path, params={"before": "1"})
    assert re.findall(r'<li class="entry" data-seq="(\d+)">', newest) == ["6", "5", "4"]
    assert "Showing entries #4 to #6 of 6." in newest
    assert 'href="?before=4" id="older-entries"' in newest
    assert (
        f'data-events="/ui/jobs/{created.job.uuid}/events"' in newest
    )  # the newest entries follow the job live
    assert re.findall(r'<li class="entry" data-seq="(\d+)">', older) == ["3", "2", "1"]
    assert "older-entries" not in older
    assert f'href="/ui/jobs/{created.job.uuid}" id="newest-entries"' in older
    assert '/events"' not in older  # a page of older entries stays as it is
    assert refused.status_code == 400


def test_a_page_of_history_holds_about_a_megabyte_of_data_at_most(
    dashboard: DashboardThread, client: JobsClient, pipeline: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "DATA_BYTES", 10_000)
    created = make_job(client, pipeline, "heavy", "run")
    for n in range(4):
        client.send_event(created.job.uuid, "update", token=created.token, data={"pad": "x" * 4000, "n": n})
    with signed_in(dashboard) as session:
        html = session.get(f"/ui/jobs/{created.job.uuid}").text
    # Two 4 KB entries fit in 10 KB; the third would not, so it starts the page of older ones.
    assert re.findall(r'<li class="entry" data-seq="(\d+)">', html) == ["6", "5"]
    assert 'href="?before=5" id="older-entries"' in html
