"""Rejected events: refusals by the state machine are listed with reason and state (all jobs' only for
admins), and RejectEvent keeps what an executor sent that could not be applied."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from tests.api.jobs.helpers import get_job, refused, rejected, snapshot
from tests.support import ADMIN, CLIENT, Stubs, create_job, send, state_name


def test_refused_events_are_listed_with_reason_and_state(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline, data={"n": 1})
    other = create_job(api, pipeline, data={"n": 2})
    uuid = job.job.uuid
    send(api, uuid, "run", token=job.token)
    before = snapshot(api, uuid)
    metadata = refused(
        lambda: send(api, uuid, "validate", token=job.token, data={"note": "too early"}),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_TRANSITION",
    )
    assert metadata == {"state": "RUNNING", "event": "validate"}
    refused(
        lambda: send(api, other.job.uuid, "finalize", token=other.token),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_TRANSITION",
    )
    assert snapshot(api, uuid) == before

    (record,) = rejected(api, uuid)
    assert record.job_uuid == uuid
    assert record.event == "validate"
    assert record.reason == "INVALID_TRANSITION"
    assert state_name(record.state) == "RUNNING"
    assert dict(record.data) == {"note": "too early"}
    assert "validate" in record.message
    assert "RUNNING" in record.message
    assert record.timestamp.ToDatetime(tzinfo=UTC) <= datetime.now(UTC)

    everything = rejected(api, "", metadata=ADMIN)
    assert sorted((r.job_uuid, r.event) for r in everything) == sorted(
        [(uuid, "validate"), (other.job.uuid, "finalize")]
    )


def test_listing_all_rejected_events_needs_admin(api: Stubs) -> None:
    refused(lambda: rejected(api, "", metadata=CLIENT), grpc.StatusCode.PERMISSION_DENIED, "ADMIN_REQUIRED")
    refused(lambda: rejected(api, "", metadata=()), grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REQUIRED")
    assert rejected(api, "", metadata=ADMIN) == []


def test_reject_event_keeps_what_could_not_be_applied(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline, {"test": "reject-event"})
    request = job_service_pb2.RejectEventRequest(
        uuid=job.job.uuid,
        token=job.token,
        event="${STATUS}",
        reason="UNMAPPED_STATUS",
        message="the executor sent an unresolved placeholder",
        source=job_pb2.EVENT_SOURCE_CALLBACK,
    )
    record = api.jobs.RejectEvent(request).event
    assert (record.event, record.reason, state_name(record.state)) == (
        "${STATUS}",
        "UNMAPPED_STATUS",
        "CREATED",
    )
    assert [r.uuid for r in rejected(api, job.job.uuid)] == [record.uuid]
    assert get_job(api, job.job.uuid).seq == 1, "a rejection never touches the history"

    bad_reason = job_service_pb2.RejectEventRequest(
        uuid=job.job.uuid, token=job.token, event="X", reason="lower"
    )
    refused(lambda: api.jobs.RejectEvent(bad_reason), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    wrong_token = job_service_pb2.RejectEventRequest(uuid=job.job.uuid, token="nope", event="X", reason="R")
    refused(lambda: api.jobs.RejectEvent(wrong_token), grpc.StatusCode.UNAUTHENTICATED, "INVALID_TOKEN")
    assert len(rejected(api, job.job.uuid)) == 1


def test_the_reason_of_the_logs_own_count_is_reserved(api: Stubs, pipeline: str) -> None:
    """A row with reason DROPPED is the bounded log's count of what it dropped (docs/operations.md): a token
    holder must not plant one that looks like it."""
    job = create_job(api, pipeline, {"test": "reserved-reason"})
    forged = job_service_pb2.RejectEventRequest(
        uuid=job.job.uuid, token=job.token, event="X", reason="DROPPED"
    )
    forged.data.update({"dropped": 1000})
    refused(lambda: api.jobs.RejectEvent(forged), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert rejected(api, job.job.uuid) == []
