"""F11: page tokens that decode to values out of range, and request values the database driver cannot
encode, are INVALID_ARGUMENT naming the field, never INTERNAL with a traceback.

The forged tokens keep the listing of a real token (the part a client can read off any token it was given)
and change only the position: a time an hour away from year 1 or year 10000 once in UTC, a time without a
zone, a time before 1970, and a history position past what a 64-bit integer holds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any

import grpc
import pytest

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2, pipeline_service_pb2
from pipelinejobs_server.domain.errors import InvalidArgument
from pipelinejobs_server.domain.listing import JobFilter, JobOrder, Position
from pipelinejobs_server.storage.database import Database
from pipelinejobs_server.storage.jobs import JobStore
from pipelinejobs_server.storage.rejected import RejectedStore
from tests.api.jobs.helpers import refused
from tests.support import ADMIN, CLIENT, Stubs, create_job, register_pipeline

FORGED_MOMENTS = [
    pytest.param({"t": "0001-01-01T00:00:00+23:59", "id": "z"}, id="before-year-1-in-utc"),
    pytest.param({"t": "9999-12-31T23:59:59-23:59", "id": "z"}, id="after-year-9999-in-utc"),
    pytest.param({"t": "2024-05-01T12:00:00", "id": "z"}, id="no-zone"),
    pytest.param({"t": "1969-12-31T23:59:59+00:00", "id": "z"}, id="before-1970"),
    pytest.param({"t": "2024-05-01T12:00:00+00:00", "id": 7}, id="id-not-text"),
]
FORGED_SEQS = [
    pytest.param({"seq": 2**70}, id="seq-2**70"),
    pytest.param({"seq": 2**63}, id="seq-2**63"),
]


def forged(token: str, position: dict[str, Any]) -> str:
    """``token`` with its position replaced, as a client that edits a token it was given would."""
    document = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    document["p"] = position
    raw = json.dumps(document).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def refused_as_page_token(call: Callable[[], object], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pipelinejobs"):
        metadata = refused(call, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert metadata == {"field": "page_token"}
    assert "Traceback" not in caplog.text
    assert "code=INTERNAL" not in caplog.text


@pytest.fixture
def listings(api: Stubs) -> dict[str, tuple[Callable[[str], object], str]]:
    """For each moment-keyed listing: a call taking a page token, and a real token of that listing."""
    pipeline = register_pipeline(api)
    register_pipeline(api, name="second")
    one = create_job(api, pipeline, data={"n": 1})
    create_job(api, pipeline, data={"n": 2})
    for n in range(2):
        api.jobs.RejectEvent(
            job_service_pb2.RejectEventRequest(
                uuid=one.job.uuid,
                token=one.token,
                event="SUSPENDED",
                reason="UNMAPPED_STATUS",
                message=str(n),
            ),
            metadata=CLIENT,
        )

    def list_jobs(token: str, size: int = 0) -> Any:
        request = job_service_pb2.ListJobsRequest(
            states=[job_pb2.JOB_STATE_CREATED], page_size=size, page_token=token
        )
        return api.jobs.ListJobs(request, metadata=CLIENT)

    def list_pipelines(token: str, size: int = 0) -> Any:
        request = pipeline_service_pb2.ListPipelinesRequest(page_size=size, page_token=token)
        return api.pipelines.ListPipelines(request, metadata=CLIENT)

    def list_rejected(token: str, size: int = 0) -> Any:
        request = job_service_pb2.ListRejectedEventsRequest(page_size=size, page_token=token)
        return api.jobs.ListRejectedEvents(request, metadata=ADMIN)

    found: dict[str, tuple[Callable[[str], object], str]] = {}
    for name, call in (
        ("ListJobs", list_jobs),
        ("ListPipelines", list_pipelines),
        ("Rejected", list_rejected),
    ):
        token = call("", 1).next_page_token
        assert token, name
        found[name] = (call, token)
    return found


@pytest.mark.parametrize("listing", ["ListJobs", "ListPipelines", "Rejected"])
@pytest.mark.parametrize("position", FORGED_MOMENTS)
def test_forged_moment_tokens_are_invalid_arguments(
    listings: dict[str, tuple[Callable[[str], object], str]],
    listing: str,
    position: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """F11: ``{"t": "0001-01-01T00:00:00+23:59"}`` gave INTERNAL (OverflowError: date value out of range)."""
    call, token = listings[listing]
    refused_as_page_token(partial(call, forged(token, position)), caplog)
    call(token)  # the real token still pages on


@pytest.mark.parametrize("position", FORGED_SEQS)
def test_forged_seq_tokens_are_invalid_arguments(
    api: Stubs, position: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """F11: ``{"seq": 2**70}`` gave INTERNAL (OverflowError: MongoDB can only handle up to 8-byte ints).

    The bound is the database's 64-bit integer: a position just inside it is still a page (an empty one).
    """
    job = create_job(api, register_pipeline(api))
    first = api.jobs.ListJobEvents(
        job_service_pb2.ListJobEventsRequest(uuid=job.job.uuid, page_size=1), metadata=CLIENT
    )
    assert first.next_page_token

    def request(seq_position: dict[str, Any]) -> job_service_pb2.ListJobEventsRequest:
        token = forged(first.next_page_token, seq_position)
        return job_service_pb2.ListJobEventsRequest(uuid=job.job.uuid, page_token=token)

    refused_as_page_token(partial(api.jobs.ListJobEvents, request(position), metadata=CLIENT), caplog)
    last = api.jobs.ListJobEvents(request({"seq": 2**63 - 1}), metadata=CLIENT)
    assert (list(last.events), last.next_page_token) == ([], "")


# -- the one place driver errors are translated ------------------------------------------------------------


def test_values_the_driver_cannot_encode_are_invalid_arguments(mongodb_uri: str, database_name: str) -> None:
    """F11: a request value that reaches the driver out of its range is the caller's error, not a fault.

    The page-token checks keep such values from the driver; ``translate_errors`` is the net under them,
    so that a value a later check forgets still answers INVALID_ARGUMENT.
    """
    year_zero = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=23, minutes=59)))

    async def attempts() -> list[str]:
        database = Database(mongodb_uri, database_name)
        jobs, rejected = JobStore(database), RejectedStore(database)
        outcomes = []
        calls = (
            partial(jobs.entries_after, "0b0f6a1e-3c1d-5b7e-9a55-5a1f0d7f2c11", 2**70, 10),
            partial(jobs.page, JobFilter(), JobOrder.CREATE_TIME_DESC, Position(year_zero, "z"), 10),
            partial(rejected.page, None, (year_zero, "z"), 10),
            # In range, the same reads reach the database as ever.
            partial(jobs.entries_after, "0b0f6a1e-3c1d-5b7e-9a55-5a1f0d7f2c11", 2**63 - 1, 10),
            partial(rejected.page, None, (datetime(2024, 5, 1, tzinfo=UTC), "z"), 10),
        )
        try:
            for call in calls:
                try:
                    await call()
                except InvalidArgument as error:
                    outcomes.append(f"refused: {error.metadata}")
                else:
                    outcomes.append("accepted")
        finally:
            await database.close()
        return outcomes

    assert asyncio.run(attempts()) == ["refused: {'field': 'request'}"] * 3 + ["accepted"] * 2
