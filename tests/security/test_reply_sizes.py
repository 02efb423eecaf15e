"""F3: list replies are bounded in bytes as well as rows, so big jobs or events cannot break a listing (or the
dashboard) for everyone.

The finding, replayed at the server's default limits: 18 jobs with 250 KiB of parameters made the default
``ListJobs`` page (and the dashboard's table) fail with RESOURCE_EXHAUSTED "Sent message larger than max",
and 70 events of 64 KiB did the same to ``ListJobEvents`` and the job page. Now such a page ends early with
a token, and following the tokens reaches every item exactly once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from pipelinejobs_client.api.v1 import job_service_pb2, pipeline_pb2, pipeline_service_pb2
from pipelinejobs_server.settings import Limits
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from pipelinejobs_server.ui import DashboardSettings
from tests.servers import DashboardThread, ServerThread, test_settings
from tests.support import ADMIN, CLIENT, CLIENT_KEY, Stubs, create_job, register_pipeline, send, stubs

BIG_JOBS = 18
BIG_EVENTS = 70
JOB_PAD = "P" * 250 * 1024
EVENT_PAD = "E" * 64_000
LIMIT = Limits().max_message_bytes
COUNT = re.compile(r'data-state="([A-Z]+)"[^>]*>\s*<span[^>]*>[A-Z]+</span>\s*<strong>([1-9]\d*\+?)</strong>')
ROW = re.compile(r'<tr data-uuid="([0-9a-f-]{36})">')
ENTRY = re.compile(r'<li class="entry" data-seq="(\d+)">')
NEXT = re.compile(r'<a [^>]*href="(\?[^"]*)"[^>]*>\s*(?:Next|Older)')


@pytest.fixture(scope="module")
def database() -> str:
    return f"test_sizes_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def server(embedded: EmbeddedDatabase, database: str) -> Iterator[ServerThread]:
    # Rejections keep their whole data here (by default the log truncates it to 4 KiB, F10), so that
    # rejected events are as big as events and their listing must be cut by size too.
    limits = Limits(max_rejected_data_bytes=Limits.max_event_data_bytes)
    thread = ServerThread(test_settings(embedded.uri, database, limits=limits)).start()
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def api(server: ServerThread) -> Iterator[Stubs]:
    with stubs(server.address) as s:
        yield s


@pytest.fixture(scope="module")
def big_pipeline(api: Stubs) -> str:
    return register_pipeline(api)


@pytest.fixture(scope="module")
def big_jobs(api: Stubs, big_pipeline: str) -> list[str]:
    """The finding's jobs: together over the reply limit, each far under it."""
    made = [create_job(api, big_pipeline, data={"pad": JOB_PAD, "n": n}).job.uuid for n in range(BIG_JOBS)]
    assert BIG_JOBS * len(JOB_PAD) > LIMIT
    return made


@pytest.fixture(scope="module")
def big_history(api: Stubs, big_jobs: list[str]) -> str:
    """A job whose history is over the reply limit: its creation, then the finding's 70 updates."""
    created = create_job(api, register_pipeline(api, name="history"), data={"history": True})
    for n in range(BIG_EVENTS):
        send(api, created.job.uuid, "update", token=created.token, data={"pad": EVENT_PAD, "n": n})
    return created.job.uuid


def follow(call: Callable[[str], Any], items: Callable[[Any], Sequence[Any]]) -> list[list[Any]]:
    """Every page of a listing, from the first, by its tokens."""
    pages: list[list[Any]] = []
    token = ""
    while True:
        reply = call(token)
        assert reply.ByteSize() <= LIMIT
        pages.append(list(items(reply)))
        token = reply.next_page_token
        if not token:
            return pages
        assert len(pages) < 100, "paging does not end"


def test_list_jobs_pages_end_early_and_reach_every_job_once(
    api: Stubs, big_jobs: list[str], big_history: str, mongo: MongoClient[dict[str, Any]], database: str
) -> None:
    """F3: the default ListJobs page over 18 jobs of 250 KiB failed for everyone (RESOURCE_EXHAUSTED)."""
    first = api.jobs.ListJobs(job_service_pb2.ListJobsRequest(), metadata=CLIENT)
    assert 0 < len(first.jobs) < BIG_JOBS
    assert first.next_page_token

    pages = follow(
        lambda token: api.jobs.ListJobs(job_service_pb2.ListJobsRequest(page_token=token), metadata=CLIENT),
        lambda reply: [job.uuid for job in reply.jobs],
    )
    listed = [uuid for page in pages for uuid in page]
    assert len(listed) == len(set(listed))
    assert set(listed) == {document["_id"] for document in mongo[database].jobs.find({}, {"_id": 1})}
    assert set(big_jobs) <= set(listed)
    # A small page size is still the first bound: the byte bound only ever cuts a page shorter.
    two = api.jobs.ListJobs(job_service_pb2.ListJobsRequest(page_size=2), metadata=CLIENT)
    assert [job.uuid for job in two.jobs] == listed[:2]


def test_list_job_events_pages_end_early_and_reach_every_entry_once(api: Stubs, big_history: str) -> None:
    """F3: the default ListJobEvents page over 70 entries of 64 KiB failed the same way."""
    first = api.jobs.ListJobEvents(job_service_pb2.ListJobEventsRequest(uuid=big_history), metadata=CLIENT)
    assert 0 < len(first.events) < BIG_EVENTS
    assert first.next_page_token

    pages = follow(
        lambda token: api.jobs.ListJobEvents(
            job_service_pb2.ListJobEventsRequest(uuid=big_history, page_size=1000, page_token=token),
            metadata=CLIENT,
        ),
        lambda reply: [event.seq for event in reply.events],
    )
    assert len(pages) > 1
    assert [seq for page in pages for seq in page] == list(range(1, BIG_EVENTS + 2))


def test_list_rejected_events_pages_end_early_and_reach_every_record_once(
    api: Stubs, big_jobs: list[str]
) -> None:
    """F3: rejected events carry data too: the admin's listing of all jobs' records is bounded the same way.

    Spread over several jobs, ten each, so that a bound on the log per job does not change the test.
    """
    kept: set[str] = set()
    pipeline = register_pipeline(api, name="rejections")
    for job in range(7):
        created = create_job(api, pipeline, data={"rejections": job})
        for n in range(10):
            request = job_service_pb2.RejectEventRequest(
                uuid=created.job.uuid, token=created.token, event="SUSPENDED", reason="UNMAPPED_STATUS"
            )
            request.data.update({"pad": EVENT_PAD, "n": n})
            kept.add(api.jobs.RejectEvent(request, metadata=CLIENT).event.uuid)

    first = api.jobs.ListRejectedEvents(job_service_pb2.ListRejectedEventsRequest(), metadata=ADMIN)
    assert 0 < len(first.events) < len(kept)
    assert first.next_page_token
    pages = follow(
        lambda token: api.jobs.ListRejectedEvents(
            job_service_pb2.ListRejectedEventsRequest(page_token=token), metadata=ADMIN
        ),
        lambda reply: [record.uuid for record in reply.events],
    )
    listed = [uuid for page in pages for uuid in page]
    assert len(listed) == len(set(listed)) == len(kept)
    assert set(listed) == kept


def test_list_pipelines_pages_end_early_and_reach_every_pipeline_once(api: Stubs) -> None:
    """F3: pipelines carry options of up to 256 KiB: the default ListPipelines page is bounded alike."""
    made = set()
    for n in range(BIG_JOBS):
        request = pipeline_service_pb2.RegisterPipelineRequest(
            name=f"big-{n}", components=[pipeline_pb2.PipelineComponent(id=f"big-{n}")]
        )
        request.options.update({"pad": JOB_PAD})
        made.add(api.pipelines.RegisterPipeline(request, metadata=CLIENT).pipeline.uuid)

    def list_pipelines(token: str) -> pipeline_service_pb2.ListPipelinesResponse:
        request = pipeline_service_pb2.ListPipelinesRequest(page_token=token)
        reply: pipeline_service_pb2.ListPipelinesResponse = api.pipelines.ListPipelines(
            request, metadata=CLIENT
        )
        return reply

    first = list_pipelines("")
    assert first.next_page_token
    pages = follow(list_pipelines, lambda reply: [pipeline.uuid for pipeline in reply.pipelines])
    listed = [uuid for page in pages for uuid in page]
    assert len(listed) == len(set(listed))
    assert made <= set(listed)


# -- the dashboard -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard(server: ServerThread) -> Iterator[DashboardThread]:
    thread = DashboardThread(DashboardSettings(server=server.address)).start()
    yield thread
    thread.stop()


@pytest.fixture
def session(dashboard: DashboardThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dashboard.url, timeout=60, follow_redirects=False) as browser:
        answer = browser.post("/ui/login", data={"api_key": CLIENT_KEY, "next": "/ui/"})
        assert answer.status_code == 303, answer.text
        yield browser


def test_the_jobs_table_shows_big_jobs_page_by_page(
    session: httpx.Client, big_pipeline: str, big_jobs: list[str]
) -> None:
    """F3: with 18 jobs of 250 KiB the table (/ui/) answered 413 for every user."""
    seen: list[str] = []
    href = f"/ui/?pipeline={big_pipeline}"
    for _ in range(BIG_JOBS):
        page = session.get(href)
        assert page.status_code == 200, page.text[:500]
        seen += ROW.findall(page.text)
        # The counts stay exact, though one reply of ListJobs holds only some of the jobs.
        assert COUNT.findall(page.text) == [("CREATED", str(BIG_JOBS))]
        more = NEXT.search(page.text)
        if more is None:
            break
        href = "/ui/" + more.group(1).replace("&amp;", "&")
    assert len(seen) == len(set(seen))
    assert set(seen) == set(big_jobs)


def test_the_job_page_shows_a_big_history_page_by_page(session: httpx.Client, big_history: str) -> None:
    """F3: the job page of a job with 70 entries of 64 KiB failed (it read up to 1,000 entries in one reply).

    Now it shows the newest entries and links to older ones; every entry is on exactly one page.
    """
    seen: list[int] = []
    href = f"/ui/jobs/{big_history}"
    for _ in range(BIG_EVENTS + 1):
        page = session.get(href)
        assert page.status_code == 200, page.text[:500]
        assert len(page.content) < 4 * 1024 * 1024
        shown = [int(seq) for seq in ENTRY.findall(page.text)]
        assert shown == sorted(shown, reverse=True)
        seen += shown
        older = NEXT.search(page.text)
        if older is None:
            break
        href = f"/ui/jobs/{big_history}" + older.group(1).replace("&amp;", "&")
    assert seen == list(range(BIG_EVENTS + 1, 0, -1))
