"""The helpers both clients share, against a real server: paged iterators and the watch stream's errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from pipelinejobs_client import AsyncJobsClient, JobNotFound, JobsClient
from pipelinejobs_client.api.v1 import job_pb2
from pipelinejobs_client.errors import DeadlineExceeded, TooManyWatches, WatchResume
from pipelinejobs_client.names import event_name
from pipelinejobs_server.settings import Streams
from tests.servers import ServerThread, test_settings
from tests.support import ADMIN_KEY, CLIENT_KEY

UNKNOWN_JOB = "0badc0de-0000-5000-8000-00000000abcd"


@pytest.fixture
def client(server: ServerThread) -> Iterator[JobsClient]:
    with JobsClient(server.address, api_key=CLIENT_KEY) as jobs:
        yield jobs


@pytest.fixture
def jobs(client: JobsClient) -> list[str]:
    """Three jobs of one pipeline, one with two rejected events."""
    pipeline = client.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
    created = [client.create_job(pipeline, lab="L", sample=f"S{n}") for n in range(3)]
    first = created[0]
    for status in ("SUSPENDED", "PAUSED"):
        client.reject_event(first.job.uuid, status, reason="UNMAPPED_STATUS", token=first.token)
    return [reply.job.uuid for reply in created]


def test_both_clients_page_through_jobs_pipelines_and_rejected_events(
    server: ServerThread, client: JobsClient, jobs: list[str]
) -> None:
    blocking = (
        [job.uuid for job in client.iter_jobs(lab="L", page_size=1)],
        [pipeline.name for pipeline in client.iter_pipelines(page_size=1)],
        [record.event for record in client.iter_rejected_events(jobs[0], page_size=1)],
    )

    async def main() -> tuple[list[str], list[str], list[str]]:
        async with AsyncJobsClient(server.address, api_key=CLIENT_KEY) as aio:
            return (
                [job.uuid async for job in aio.iter_jobs(lab="L", page_size=1)],
                [pipeline.name async for pipeline in aio.iter_pipelines(page_size=1)],
                [record.event async for record in aio.iter_rejected_events(jobs[0], page_size=1)],
            )

    assert sorted(blocking[0]) == sorted(jobs)
    assert blocking == asyncio.run(main())
    assert blocking[1:] == (["fcs-etl"], ["SUSPENDED", "PAUSED"])


def test_watching_an_unknown_job_raises_the_typed_error_on_both_clients(
    server: ServerThread, client: JobsClient
) -> None:
    with pytest.raises(JobNotFound):
        list(client.watch_job(UNKNOWN_JOB, timeout=5))

    async def main() -> None:
        async with AsyncJobsClient(server.address, api_key=CLIENT_KEY) as aio:
            async for _ in aio.watch_job(UNKNOWN_JOB, timeout=5):
                pass

    with pytest.raises(JobNotFound):
        asyncio.run(main())


def _names(events: Iterator[job_pb2.HistoryEvent], into: list[str]) -> None:
    into.extend(event_name(event.name) for event in events)


async def _names_async(events: AsyncIterator[job_pb2.HistoryEvent], into: list[str]) -> None:
    async for event in events:
        into.append(event_name(event.name))


def test_a_watch_past_its_deadline_raises_deadline_exceeded_on_both_clients(
    server: ServerThread, client: JobsClient, jobs: list[str]
) -> None:
    seen: list[str] = []
    with pytest.raises(DeadlineExceeded):
        _names(client.watch_job(jobs[1], timeout=0.5), seen)
    assert seen == ["create"]

    async def main() -> None:
        async with AsyncJobsClient(server.address, api_key=ADMIN_KEY) as aio:
            await _names_async(aio.watch_job(jobs[1], timeout=0.5), seen)

    with pytest.raises(DeadlineExceeded):
        asyncio.run(main())
    assert seen == ["create", "create"]


def test_without_resume_both_clients_raise_the_servers_end_of_a_watch(
    mongodb_uri: str, database_name: str
) -> None:
    server = ServerThread(test_settings(mongodb_uri, database_name, streams=Streams(max_watch_s=0.5))).start()
    seen: list[str] = []
    try:
        with JobsClient(server.address, api_key=CLIENT_KEY) as client:
            pipeline = client.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
            job = client.create_job(pipeline, lab="L").job.uuid
            with pytest.raises(WatchResume) as ended:
                _names(client.watch_job(job, resume=False, timeout=10), seen)
        assert (ended.value.reason, ended.value.after_seq, seen) == ("WATCH_RESUME", 1, ["create"])

        async def main() -> None:
            async with AsyncJobsClient(server.address, api_key=CLIENT_KEY) as aio:
                await _names_async(aio.watch_job(job, after_seq=1, resume=False, timeout=10), seen)

        with pytest.raises(WatchResume) as ended:
            asyncio.run(main())
        assert (ended.value.after_seq, seen) == (1, ["create"])
    finally:
        server.stop()


def test_a_watch_past_the_keys_cap_raises_too_many_watches_at_once(
    mongodb_uri: str, database_name: str
) -> None:
    server = ServerThread(
        test_settings(mongodb_uri, database_name, streams=Streams(max_watches_per_key=1))
    ).start()
    try:
        with JobsClient(server.address, api_key=CLIENT_KEY) as client:
            pipeline = client.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
            job = client.create_job(pipeline, lab="L").job.uuid
            held = client.watch_job(job, timeout=30)
            assert next(held).seq == 1
            started = time.monotonic()
            with pytest.raises(TooManyWatches) as refused:
                next(client.watch_job(job, timeout=30))
            assert time.monotonic() - started < 1, "refused at once, not retried"
            assert (refused.value.reason, refused.value.limit) == ("TOO_MANY_WATCHES_FOR_KEY", 1)
    finally:
        server.stop()
