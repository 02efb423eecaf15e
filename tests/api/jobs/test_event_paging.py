"""ListJobEvents pages through a whole history; bad page tokens and sizes are invalid arguments."""

from __future__ import annotations

from functools import partial

import grpc

from pipelinejobs_client.api.v1 import job_service_pb2
from tests.api.jobs.helpers import refused
from tests.support import CLIENT, Stubs, create_job, send


def test_list_job_events_pages_through_the_whole_history(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    for n in range(24):
        send(api, uuid, "update", token=job.token, data={"n": n})

    pages: list[list[int]] = []
    token = ""
    while True:
        reply = api.jobs.ListJobEvents(
            job_service_pb2.ListJobEventsRequest(uuid=uuid, page_size=10, page_token=token), metadata=CLIENT
        )
        pages.append([event.seq for event in reply.events])
        token = reply.next_page_token
        if not token:
            break
        assert len(pages) < 10, "paging does not end"

    assert [len(page) for page in pages] == [10, 10, 5]
    assert [seq for page in pages for seq in page] == list(range(1, 26))


def test_bad_page_token_or_size_is_invalid_argument(api: Stubs, pipeline: str) -> None:
    one = create_job(api, pipeline, data={"n": 1})
    two = create_job(api, pipeline, data={"n": 2})
    for n in range(3):
        send(api, one.job.uuid, "update", token=one.token, data={"n": n})
    reply = api.jobs.ListJobEvents(
        job_service_pb2.ListJobEventsRequest(uuid=one.job.uuid, page_size=2), metadata=CLIENT
    )
    assert reply.next_page_token

    for request in (
        job_service_pb2.ListJobEventsRequest(uuid=one.job.uuid, page_token="not a token!"),
        job_service_pb2.ListJobEventsRequest(uuid=one.job.uuid, page_token="e30"),  # base64url of "{}"
        # A token from another job's listing.
        job_service_pb2.ListJobEventsRequest(uuid=two.job.uuid, page_token=reply.next_page_token),
        job_service_pb2.ListJobEventsRequest(uuid=one.job.uuid, page_size=-1),
    ):
        refused(
            partial(api.jobs.ListJobEvents, request, metadata=CLIENT),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        )
