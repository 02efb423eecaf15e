"""List replies cut to the message size (api/replies.py) over pages cut by rows (service/paging.py), and the
claim they rest on: one item always fits in a reply."""

from __future__ import annotations

from google.protobuf import struct_pb2

from pipelinejobs_client.api.v1 import job_service_pb2
from pipelinejobs_server.api.replies import FIELD_OVERHEAD_BYTES, RESERVED_BYTES, fitted
from pipelinejobs_server.service.paging import Page
from pipelinejobs_server.settings import Limits
from tests.support import CLIENT, Stubs, create_job, register_pipeline, send


def row(size: int) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update({"pad": "x" * size})
    return message


def page(sizes: list[int], *, more: bool) -> Page[int]:
    return Page(list(range(len(sizes))), lambda n: f"after-{n}", more=more)


def test_a_page_that_fits_is_sent_whole_with_its_own_token() -> None:
    sizes = [100, 100, 100]
    assert fitted(page(sizes, more=True), lambda n: row(sizes[n]), 100_000) == (
        [row(100)] * 3,
        "after-2",
    )
    assert fitted(page(sizes, more=False), lambda n: row(sizes[n]), 100_000)[1] == ""


def test_a_page_stops_before_the_row_that_would_pass_the_limit() -> None:
    sizes = [1000] * 10
    one = row(1000).ByteSize() + FIELD_OVERHEAD_BYTES
    limit = RESERVED_BYTES + 3 * one + one // 2
    kept, token = fitted(page(sizes, more=False), lambda n: row(sizes[n]), limit)
    assert len(kept) == 3
    assert token == "after-2"  # the rest of the page is the next one, though the service had no more


def test_a_page_always_holds_its_first_row_so_paging_advances() -> None:
    kept, token = fitted(page([5000, 10], more=False), lambda n: row([5000, 10][n]), RESERVED_BYTES + 100)
    assert len(kept) == 1
    assert token == "after-0"


def test_an_empty_page_has_no_token() -> None:
    assert fitted(page([], more=True), row, 1000) == ([], "")


def test_the_biggest_job_and_entry_fit_in_one_reply(api: Stubs) -> None:
    """Parameters at the data limit, in the shape whose protobuf encoding is largest for its JSON size (small
    numbers: 2 bytes of JSON, 11 of protobuf), read back by GetJob, ListJobs and ListJobEvents."""
    limits = Limits()
    numbers = [0] * ((limits.max_job_data_bytes - 16) // 2)
    created = create_job(api, register_pipeline(api), data={"n": numbers})
    assert created.job.ByteSize() > 5 * limits.max_job_data_bytes
    got = api.jobs.GetJob(job_service_pb2.GetJobRequest(uuid=created.job.uuid), metadata=CLIENT)
    assert got.job.ByteSize() == created.job.ByteSize()
    send(api, created.job.uuid, "update", token=created.token, data={"n": [0] * 32_000})
    listed = api.jobs.ListJobs(job_service_pb2.ListJobsRequest(page_size=1), metadata=CLIENT)
    assert [job.uuid for job in listed.jobs] == [created.job.uuid]
    events = api.jobs.ListJobEvents(
        job_service_pb2.ListJobEventsRequest(uuid=created.job.uuid), metadata=CLIENT
    )
    assert [event.seq for event in events.events] == [1, 2]
