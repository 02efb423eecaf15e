"""CancelJob: a job that never ran is deleted with its history and can be created afresh; one that ran
is refused, even to an admin; wrong tokens and unknown jobs."""

from __future__ import annotations

from functools import partial

import grpc
from pymongo.database import Database

from pipelinejobs_client.api.v1 import job_service_pb2
from tests.api.jobs.helpers import (
    UNKNOWN_JOB,
    Document,
    event_label,
    get_job,
    refused,
    rejected,
    snapshot,
    verify,
)
from tests.support import ADMIN, CLIENT, Stubs, create_job, history, send, state_name


def test_cancel_deletes_a_created_job_and_it_can_be_created_afresh(
    api: Stubs, pipeline: str, db: Database[Document]
) -> None:
    job = create_job(api, pipeline, data={"cancel": "me"})
    uuid = job.job.uuid
    send(api, uuid, "update", token=job.token, data={"before": "cancel"})
    refused(
        lambda: send(api, uuid, "finish", token=job.token),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_TRANSITION",
    )
    assert len(rejected(api, uuid)) == 1

    api.jobs.CancelJob(job_service_pb2.CancelJobRequest(uuid=uuid, token=job.token), metadata=CLIENT)

    refused(lambda: get_job(api, uuid), grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
    refused(lambda: history(api, uuid), grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
    refused(lambda: verify(api, uuid), grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
    refused(
        lambda: send(api, uuid, "run", token=job.token, metadata=CLIENT),
        grpc.StatusCode.NOT_FOUND,
        "JOB_NOT_FOUND",
    )
    # With no API key, a deleted job answers as any job does to a token that does not open it.
    refused(lambda: send(api, uuid, "run", token=job.token), grpc.StatusCode.UNAUTHENTICATED, "INVALID_TOKEN")
    assert db.jobs.count_documents({"_id": uuid}) == 0
    assert db.job_events.count_documents({"job_uuid": uuid}) == 0
    assert rejected(api, uuid) == []

    again = create_job(api, pipeline, data={"cancel": "me"})
    assert again.created is True
    assert again.job.uuid == uuid
    assert again.job.seq == 1
    assert state_name(again.job.state) == "CREATED"
    assert [event_label(e.name) for e in history(api, uuid)] == ["create"]
    # The cancelled job's token died with it.
    refused(lambda: send(api, uuid, "run", token=job.token), grpc.StatusCode.UNAUTHENTICATED, "INVALID_TOKEN")
    assert send(api, uuid, "run", token=again.token).event.seq == 2


def test_cancel_after_run_is_refused_and_the_job_is_intact(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    send(api, uuid, "run", token=job.token)
    send(api, uuid, "fail", token=job.token)
    before = snapshot(api, uuid)
    metadata = refused(
        lambda: api.jobs.CancelJob(
            job_service_pb2.CancelJobRequest(uuid=uuid, token=job.token), metadata=CLIENT
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "CANCEL_NOT_ALLOWED",
    )
    assert metadata["state"] == "FAILED"
    # Not even an admin may delete a job that has run.
    refused(
        lambda: api.jobs.CancelJob(job_service_pb2.CancelJobRequest(uuid=uuid), metadata=ADMIN),
        grpc.StatusCode.FAILED_PRECONDITION,
        "CANCEL_NOT_ALLOWED",
    )
    assert snapshot(api, uuid) == before
    assert verify(api, uuid).valid


def test_cancel_with_a_wrong_or_missing_token_is_unauthenticated(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline, data={"n": 1})
    other = create_job(api, pipeline, data={"n": 2})
    uuid = job.job.uuid
    before = snapshot(api, uuid)
    for token, reason in (("", "TOKEN_REQUIRED"), ("wrong", "INVALID_TOKEN"), (other.token, "INVALID_TOKEN")):
        request = job_service_pb2.CancelJobRequest(uuid=uuid, token=token)
        refused(
            partial(api.jobs.CancelJob, request, metadata=CLIENT),
            grpc.StatusCode.UNAUTHENTICATED,
            reason,
        )
    assert snapshot(api, uuid) == before


def test_cancel_an_unknown_job_is_not_found(api: Stubs) -> None:
    refused(
        lambda: api.jobs.CancelJob(
            job_service_pb2.CancelJobRequest(uuid=UNKNOWN_JOB, token="whatever"), metadata=CLIENT
        ),
        grpc.StatusCode.NOT_FOUND,
        "JOB_NOT_FOUND",
    )
