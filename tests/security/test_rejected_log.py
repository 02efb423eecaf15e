"""F10: the rejected-events log grew without bound for anyone holding a job's token.

The review sent 150 calls of about 60 KiB each with a valid token (unmapped statuses, refused
transitions, late duplicates): 149 rows and 6 MB more in the log of one job. Now the log of a job keeps
its newest rows (``PIPELINEJOBS_MAX_REJECTED_PER_JOB``, 100), counts the ones it drops on a summary row,
and keeps at most ``PIPELINEJOBS_MAX_REJECTED_DATA_BYTES`` (4 KiB) of a rejection's data.
"""

from __future__ import annotations

from typing import Any

import bson
import grpc
import pytest
from google.protobuf import json_format
from pymongo.database import Database

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from pipelinejobs_server.domain.canonical import canonical_json
from tests.support import CLIENT, Stubs, create_job, register_pipeline, send

CALLS = 150
# The documented defaults (README, "Configuration"), written out: the test replays the review against the
# server as shipped.
KEPT = 100
DATA_BYTES = 4 * 1024
PAYLOAD = {"blob": "x" * 60 * 1024}  # about 60 KiB, under the 64 KiB limit of event data


def rejected(api: Stubs, job: str) -> list[job_pb2.RejectedEvent]:
    events: list[job_pb2.RejectedEvent] = []
    token = ""
    while True:
        reply = api.jobs.ListRejectedEvents(
            job_service_pb2.ListRejectedEventsRequest(job_uuid=job, page_size=1000, page_token=token),
            metadata=CLIENT,
        )
        events += reply.events
        token = reply.next_page_token
        if not token:
            return events


def flood(api: Stubs, job: str, token: str) -> None:
    """The review's mix: unmapped statuses, refused transitions and late duplicates, all with the token."""
    send(api, job, "run", token=token, key="run-once")
    for call in range(CALLS):
        kind = call % 3
        if kind == 0:
            request = job_service_pb2.RejectEventRequest(
                uuid=job, token=token, event=f"SUSPENDED-{call}", reason="UNMAPPED_STATUS"
            )
            request.data.update(PAYLOAD)
            api.jobs.RejectEvent(request, metadata=CLIENT)
        elif kind == 1:
            with pytest.raises(grpc.RpcError):
                send(api, job, "index", token=token, data=PAYLOAD)  # RUNNING refuses index
        else:
            send(api, job, "run", token=token, key="run-once")  # a late duplicate


@pytest.fixture
def flooded(api: Stubs) -> str:
    created = create_job(api, register_pipeline(api))
    flood(api, created.job.uuid, created.token)
    return created.job.uuid


def stored_bytes(db: Database[dict[str, Any]], job: str) -> int:
    return sum(len(bson.encode(document)) for document in db.rejected_events.find({"job_uuid": job}))


def test_the_log_of_one_job_stays_within_its_bound(flooded: str, db: Database[dict[str, Any]]) -> None:
    """F10: 150 rejections with a token made 149 rows and 6 MB; now at most the bound, in bytes too."""
    assert db.rejected_events.count_documents({"job_uuid": flooded}) == KEPT
    assert stored_bytes(db, flooded) < KEPT * (DATA_BYTES + 1024)


def test_the_dropped_rejections_are_counted(flooded: str, api: Stubs) -> None:
    """F10: the oldest rows go, and a listing says how many went: one summary row, first, with the count."""
    events = rejected(api, flooded)
    assert len(events) == KEPT
    summary = events[0]
    assert summary.reason == "DROPPED"
    dropped = CALLS - (KEPT - 1)  # the summary row takes one place of the bound
    assert json_format.MessageToDict(summary.data) == {"dropped": dropped}
    assert f"{dropped} older rejected events" in summary.message
    assert [e.reason for e in events[1:]].count("DROPPED") == 0
    # The newest are the ones kept: the last call (a duplicate, call 149) is there.
    assert events[-1].reason == "DUPLICATE"


def test_a_rejections_data_is_truncated(api: Stubs, db: Database[dict[str, Any]]) -> None:
    """F10: each rejection kept its whole payload (up to 64 KiB); now 4 KiB of it at most, with its size and
    hash so it can still be told apart."""
    created = create_job(api, register_pipeline(api))
    with pytest.raises(grpc.RpcError):
        send(api, created.job.uuid, "finish", token=created.token, data=PAYLOAD)  # CREATED refuses finish
    (event,) = rejected(api, created.job.uuid)
    data = json_format.MessageToDict(event.data)
    assert data["truncated"] is True
    assert data["bytes"] == len(canonical_json(PAYLOAD).encode())
    assert canonical_json(PAYLOAD).startswith(data["head"])
    (document,) = db.rejected_events.find({"job_uuid": created.job.uuid})
    assert len(document["data_json"].encode()) <= DATA_BYTES
